"""`authsome log`: reading and following the audit log."""

from __future__ import annotations

import json
import os
import subprocess

from authsome import audit
from tests.conftest import AUTHSOME


def _record(i: int) -> dict:
    return {"ts": f"2026-11-28T10:00:0{i}.000+00:00", "event": "request", "method": "GET", "scheme": "https",
            "host": "api.twitter.com", "port": 443, "path": f"/2/item/{i}", "status": 200, "provider": "x",
            "connection": "default", "injected": ["header:authorization"], "refreshed": False, "retried": False}


def test_log_shows_the_last_records(cli, home):
    home.mkdir(parents=True)
    for i in range(5):
        audit.append(_record(i), home)
    r = cli(["log", "-n", "2"])
    assert r.code == 0 and r.out.count("\n") == 2 and "/2/item/4" in r.out and "/2/item/2" not in r.out
    lines = cli(["log", "-n", "0", "--json"]).out.splitlines()
    assert [json.loads(line)["path"] for line in lines] == [f"/2/item/{i}" for i in range(5)]
    assert oct((home / "audit.log").stat().st_mode & 0o777) == "0o600"
    assert cli(["log", "-n", "-1"]).code == 2


def test_log_follow_prints_new_records(home):
    home.mkdir(parents=True)
    audit.append(_record(0), home)
    proc = subprocess.Popen([*AUTHSOME, "log", "-n", "1", "--follow"], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        assert "/2/item/0" in proc.stdout.readline()
        audit.append(_record(1), home)
        assert "/2/item/1" in proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait()


def test_lines_that_are_not_records_are_skipped(cli, home):
    home.mkdir(parents=True)
    (home / "audit.log").write_text('[1]\n"text"\n{"ts": 5, "host": 7}\nnot json\n' + json.dumps(_record(1)) + "\n")
    r = cli(["log", "-n", "0"])
    assert r.code == 0 and "internal error" not in r.err and "/2/item/1" in r.out


def test_a_log_in_a_shared_directory_is_not_read(cli, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "audit.log").write_text(json.dumps({**_record(1), "path": "/planted"}) + "\n")
    shared.chmod(0o1777)
    r = cli(["log"], env={"AUTHSOME_HOME": str(shared)})
    assert r.code == 1 and "shared directory" in r.err and "/planted" not in r.out

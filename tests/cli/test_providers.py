"""`list`, `inspect`, `register`, `remove` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _shell(script: str, env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=full, timeout=60)


def test_seed_override_flow_in_the_default_home(tmp_path):
    """The seed's lines, verbatim, with HOME pointing at an empty directory."""
    env = {"HOME": str(tmp_path), "AUTHSOME_HOME": "",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    script = (
        "unset AUTHSOME_HOME\n"
        "set -e\n"
        "authsome get x --field status || echo \"status=$?\"\n"  # not connected yet: exit 4
        "authsome inspect x > ~/.authsome/providers/x.json\n"
        "authsome list\n"
    )
    r = _shell(script, env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["not_connected", "status=4"]
    row = next(line for line in lines if line.startswith("x "))
    assert row.split()[1] == "custom"
    home = tmp_path / ".authsome"
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    assert json.loads((home / "providers" / "x.json").read_text())["name"] == "x"


def test_inspect_output_round_trips_through_register(cli, tmp_path):
    r = cli(["inspect", "x"])
    assert r.code == 0
    raw = json.loads(r.out)
    raw["name"] = "x2"
    raw["export"] = {"access_token": "X2_ACCESS_TOKEN"}
    f = tmp_path / "x2.json"
    f.write_text(json.dumps(raw))
    r = cli(["register", str(f)])
    assert r.code == 0, r.err
    assert "registered x2" in r.out
    listed = json.loads(cli(["list", "--json"]).out)
    sources = {p["name"]: p["source"] for p in listed["providers"]}
    assert sources["x2"] == "custom" and sources["x"] == "bundled"
    assert cli(["register", str(f)]).code == 2
    assert cli(["register", str(f), "--force"]).code == 0
    assert cli(["remove", "x2"]).code == 0
    assert "x2" not in {p["name"] for p in json.loads(cli(["list", "--json"]).out)["providers"]}


def test_register_from_stdin_overrides_bundled_and_remove_restores_it(cli):
    raw = json.loads(cli(["inspect", "x"]).out)
    raw["oauth"]["scopes"] = ["tweet.read"]
    r = cli(["register", "-"], input=json.dumps(raw))
    assert r.code == 0
    assert "overrides the bundled" in r.err
    assert json.loads(cli(["inspect", "x"]).out)["oauth"]["scopes"] == ["tweet.read"]
    r = cli(["remove", "x"])
    assert r.code == 0 and "bundled definition of 'x' is in effect again" in r.err
    assert cli(["remove", "x"]).code == 3


def test_register_rejects_invalid_file_naming_field(cli, tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"name": "bad", "display_name": "Bad", "auth_type": "api_key", "flow": "api_key",
                             "api_key": {}, "api_url": "regex:(", "export": {"api_key": "BAD_KEY"}}))
    r = cli(["register", str(f)])
    assert r.code == 3
    assert "at 'api_url': invalid regular expression" in r.err
    assert cli(["register", str(tmp_path / "missing.json")]).code == 2


def test_list_survives_malformed_files_and_reports_them(cli, home):
    cli(["list"])
    (home / "providers" / "broken.json").write_text("{not json")
    (home / "providers" / "x.json").write_text('{"name": "x"}')
    r = cli(["list"])
    assert r.code == 0
    assert "broken.json is invalid at '(file)'" in r.err
    assert "x.json is invalid at '(top level)'" in r.err
    row = next(line for line in r.out.splitlines() if line.startswith("x "))
    assert "custom (invalid)" in row
    data = json.loads(cli(["list", "--json"]).out)
    assert {p["field"] for p in data["problems"]} == {"(file)", "(top level)"}
    assert cli(["get", "x"]).code == 3

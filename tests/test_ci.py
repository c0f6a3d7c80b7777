"""CI jobs with no secret but a bundle: `authsome ci export`, then a simulated job (scripts/ci-job).

The bundle comes from a real login against the X stand-in (oidc-provider, which rotates refresh
tokens and revokes the whole grant when an old one is reused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from authsome.vault import Vault
from tests.conftest import X_HOSTS, run_cli
from tests.support.browser import oidc_login_and_consent
from tests.support.login import LoginProcess

REPO = Path(__file__).resolve().parent.parent
CI_JOB = REPO / "scripts" / "ci-job"
AUTHSOME_CMD = [sys.executable, "-m", "authsome"]


def login(x_env, browser, connection: str, account: str) -> None:
    proc = LoginProcess(["x", "--no-browser", "--connection", connection], {**x_env, "X_CLIENT_ID": "confidential-basic",
                                                                            "X_CLIENT_SECRET": "basic-secret"})
    browser.context.clear_cookies()
    browser.goto(proc.url())
    oidc_login_and_consent(browser, account)
    assert proc.finish().code == 0


def export(x_env, *args) -> dict[str, str]:
    r = run_cli(["ci", "export", *args], env=x_env)
    assert r.code == 0, r.err
    values = dict(line.split("=", 1) for line in r.out.splitlines())
    assert set(values) == {"AUTHSOME_BUNDLE", "AUTHSOME_MASTER_KEY"}
    return values


# What a workstation shell may hold that `compgen -e` does not list: none of it may reach the job.
STRANGERS = {"BASH_FUNC_leak%%": "() {  echo secret-in-a-function\n}", "odd-name": "secret-odd", "SHELLOPTS": "errexit"}


def job(values: dict[str, str], x_env: dict[str, str], command: list[str], *, tmpdir: Path, timeout: float = 90,
        piped: bool = False):
    """A CI job on a runner whose temporary directory is `tmpdir` (a fresh runner has a fresh one).

    The values come from the environment, or `piped` through --values as `ci export` printed them."""
    stand_in = {k: x_env[k] for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AUTHSOME_RESOLVE")}
    extra = [a for k, v in {**stand_in, "TMPDIR": str(tmpdir)}.items() for a in ("--env", f"{k}={v}")]
    if piped:
        text = "".join(f"{k}={v}\n" for k, v in values.items())
        return subprocess.run(["bash", str(CI_JOB), "--values", "/dev/stdin", *extra, "--", *command], input=text,
                              capture_output=True, text=True, timeout=timeout,
                              env={"PATH": os.environ["PATH"], **STRANGERS})
    return subprocess.run(["bash", str(CI_JOB), *extra, "--", *command], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": os.environ["PATH"], **values})


AGENT = textwrap.dedent('''
    import json, os, socket, sys, urllib.parse, requests
    out = {"me": requests.get("https://api.twitter.com/2/users/me", timeout=20).status_code}
    out["environ"] = open("/proc/self/environ", "rb").read().decode(errors="replace")
    out["env"] = dict(os.environ)
    for host in ("other.test", "allowed.test"):
        try:
            out[host] = requests.get(f"https://{host}/", timeout=20, verify=False).status_code
        except requests.exceptions.ProxyError as exc:
            out[host] = 403 if "403" in str(exc) else str(exc)
    p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
    import base64
    auth = base64.b64encode(f"{p.username}:{urllib.parse.unquote(p.password)}".encode()).decode()
    s = socket.create_connection((p.hostname, p.port))
    s.sendall(f"GET https://other.test/ HTTP/1.1\\r\\nHost: other.test\\r\\nProxy-Authorization: Basic {auth}\\r\\n\\r\\n".encode())
    out["absolute_form"] = s.recv(100).split(b"\\r\\n")[0].decode()
    print(json.dumps(out))
''')


@pytest.mark.slow
def test_a_job_with_only_the_two_values_runs_the_agent_and_the_workstation_keeps_working(
        oauth, browser, x_env, home, api, tmp_path):
    login(x_env, browser, "default", "alice")  # the workstation's own grant
    login(x_env, browser, "ci", "ci-bot")  # a grant for CI alone
    v = Vault.open()
    v.update_connection("x", "ci", lambda c: c.with_changes(expires_at=time.time() - 5))  # the job must refresh
    values = export(x_env, "x=ci")
    assert v.get_connection("x", "ci").exported_at is not None  # handed over

    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    runner = tmp_path / "runner-tmp"
    runner.mkdir()
    command = [*AUTHSOME_CMD, "run", "--deny-unmatched", "--allow-host", "allowed.test",
               "--resolve", f"other.test:443:127.0.0.1:{api.port}", "--resolve", f"allowed.test:443:127.0.0.1:{api.port}",
               "--", sys.executable, str(agent)]
    first = job(values, x_env, command, tmpdir=runner)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["me"] == 200
    assert (out["other.test"], out["allowed.test"]) == (403, 200)  # refused, and let through untouched
    assert " 403 " in out["absolute_form"]
    tokens = [c for c in (v.get_connection("x", "ci").access_token, v.get_connection("x", "ci").refresh_token)]
    for value in (values["AUTHSOME_BUNDLE"], values["AUTHSOME_MASTER_KEY"], *tokens):
        assert value not in out["environ"] and value not in json.dumps(out["env"])
    assert "rotated its refresh token in this job" in first.stderr, first.stderr[-3000:]
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1

    # The same runner again (a later step, or a self-hosted runner): it uses the rotated token.
    again = job(values, x_env, [*AUTHSOME_CMD, "get", "x", "--connection", "ci", "--field", "status"], tmpdir=runner)
    assert again.stdout.strip() == "connected", again.stderr

    # The workstation's own connection never forked: it still works, and the handed-over one is not used here.
    local = run_cli(["run", *[a for h in X_HOSTS for a in ("--resolve", f"{h}:443:127.0.0.1:{oauth.port}")], "--",
                     "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "https://api.twitter.com/2/users/me"], env=x_env)
    assert local.out == "200", local.err
    handed = run_cli(["export", "x", "--connection", "ci"], env=x_env)
    assert handed.code == 4 and "handed to CI" in handed.err

    # A fresh runner starts from the bundle, whose refresh token the first job spent: refused, and said why.
    fresh = tmp_path / "fresh-runner"
    fresh.mkdir()
    stale = job(values, x_env, [*AUTHSOME_CMD, "export", "x", "--connection", "ci"], tmpdir=fresh)
    assert stale.returncode != 0
    assert "the bundle's refresh token had already been used" in stale.stderr and "authsome ci export x=ci" in stale.stderr


def test_an_access_token_only_bundle_forks_nothing(oauth, connect_x, x_env, tmp_path):
    issued = connect_x()
    values = export(x_env, "x", "--access-token-only")
    assert Vault.open().get_connection("x").exported_at is None  # the workstation keeps using it
    r = job(values, x_env, [*AUTHSOME_CMD, "export", "x", "--format", "json"], tmpdir=tmp_path, piped=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["X_ACCESS_TOKEN"] == issued["access_token"]
    names = {line.split("=", 1)[0] for line in job(values, x_env, ["env"], tmpdir=tmp_path, piped=True).stdout.splitlines()}
    assert names == {"PATH", "HOME", "CI", "AUTHSOME_BUNDLE", "AUTHSOME_MASTER_KEY", "TMPDIR", "SSL_CERT_FILE",
                     "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AUTHSOME_RESOLVE"}  # all a job has: nothing of this shell
    assert issued["refresh_token"] not in r.stdout + r.stderr


@pytest.mark.parametrize("damage", ["tampered", "truncated", "wrong-key", "no-key"])
def test_a_damaged_bundle_or_a_wrong_key_is_a_clear_error(connect_x, x_env, tmp_path, damage):
    import base64

    connect_x()
    values = export(x_env, "x", "--access-token-only")
    bundle, key = values["AUTHSOME_BUNDLE"], values["AUTHSOME_MASTER_KEY"]
    values = {
        "tampered": {"AUTHSOME_BUNDLE": bundle[:-10] + ("A" if bundle[-10] != "A" else "B") + bundle[-9:], "AUTHSOME_MASTER_KEY": key},
        "truncated": {"AUTHSOME_BUNDLE": bundle[: len(bundle) // 2], "AUTHSOME_MASTER_KEY": key},
        "wrong-key": {"AUTHSOME_BUNDLE": bundle, "AUTHSOME_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()},
        "no-key": {"AUTHSOME_BUNDLE": bundle, "AUTHSOME_MASTER_KEY": " "},
    }[damage]
    r = subprocess.run([*AUTHSOME_CMD, "get", "x", "--field", "status"], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path), **values})
    assert r.returncode == 5 and "Traceback" not in r.stderr and "hint:" in r.stderr
    assert {"tampered": "damaged or truncated", "truncated": "damaged or truncated", "wrong-key": "another key",
            "no-key": "missing or empty"}[damage] in r.stderr


@pytest.mark.parametrize("argv", [["login", "x"], ["login", "openai"], ["revoke", "x"], ["trust", "x"], ["login", "x", "--reset-client"]])
def test_under_ci_nothing_waits_for_a_person(cli, connect_x, argv, home):
    connect_x()
    if argv[0] == "trust":  # a changed definition, for `trust` to have something to ask
        x = home / "providers" / "x.json"
        x.write_text(json.dumps({**json.loads(cli(["inspect", "x"]).out), "api_url": ["api.twitter.com"]}))
    proc = subprocess.run(["script", "-qec", " ".join([*AUTHSOME_CMD, *argv]), "/dev/null"], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "CI": "true"}, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0, proc.stdout  # on a terminal, and still no question: CI=true never waits
    assert "hint:" in proc.stdout + proc.stderr and "[y/N]" not in proc.stdout


def test_ci_export_refuses_inside_a_run_and_an_unknown_connection(cli, connect_x):
    connect_x()
    inside = cli(["run", "--", *AUTHSOME_CMD, "ci", "export", "x"])
    assert "refused inside `authsome run`" in inside.err and "AUTHSOME_BUNDLE=" not in inside.out
    assert cli(["ci", "export", "x=nope"]).code == 4


def test_github_format_passes_values_on_stdin_never_argv(cli, connect_x):
    connect_x()
    r = cli(["ci", "export", "x", "--access-token-only", "--format", "github"])
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0] == "gh secret set AUTHSOME_BUNDLE <<'AUTHSOME_EOF'" and lines[1].startswith("asb1.")
    assert lines[3] == "gh secret set AUTHSOME_MASTER_KEY <<'AUTHSOME_EOF'"
    assert all(not line.startswith("gh") or "asb1." not in line for line in lines)


def test_a_handed_over_connection_is_neither_exported_nor_shown_here(cli, connect_x):
    issued = connect_x()
    Vault.open().update_connection("x", "default", lambda c: c.with_changes(exported_at=time.time()))
    everything = cli(["export", "--format", "json"])  # no provider: every default connection
    assert everything.code == 0 and "X_ACCESS_TOKEN" not in everything.out
    for field in ("refresh_token", "access_token"):
        shown = cli(["get", "x", "--show-secret", "--field", field])
        assert shown.code == 4 and "handed to CI" in shown.err
        assert issued["refresh_token"] not in shown.both and issued["access_token"] not in shown.both
    assert "handed to CI" in cli(["get", "x", "--show-secret"]).err
    assert cli(["get", "x", "--field", "status"]).code == 0  # what is not secret still shows


def test_exporting_a_refresh_token_needs_named_connections(cli, connect_x):
    connect_x()
    r = cli(["ci", "export"])
    assert r.code == 2 and "Name the connections" in r.err and "AUTHSOME_BUNDLE" not in r.out
    assert Vault.open().get_connection("x").exported_at is None
    every = cli(["ci", "export", "--access-token-only"])  # every default connection; nothing handed over
    assert every.code == 0 and "exported x/default" in every.err
    assert Vault.open().get_connection("x").exported_at is None


def test_an_empty_or_truncated_bundle_is_a_clear_error(connect_x, x_env, tmp_path):
    connect_x()
    values = export(x_env, "x", "--access-token-only")
    bundle = values["AUTHSOME_BUNDLE"]
    prefix, kid, body = bundle.split(".")
    for given in ("", f"{prefix}.{kid}.{body[:4 * (len(body) // 8) + 1]}"):  # 4k+1 characters: not base64
        r = subprocess.run([*AUTHSOME_CMD, "get", "x", "--field", "status"], capture_output=True, text=True, timeout=30,
                           env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
                                "AUTHSOME_BUNDLE": given, "AUTHSOME_MASTER_KEY": values["AUTHSOME_MASTER_KEY"]})
        assert r.returncode == 5 and "Traceback" not in r.stderr and "hint:" in r.stderr, r.stderr


def test_every_command_zeroes_the_secrets_of_its_environment_at_once(x_env, tmp_path):
    """A process left behind by an earlier CI step reads /proc/PID/environ of what comes later."""
    import base64

    key = base64.b64encode(os.urandom(32)).decode()
    proc = LoginProcess(["x", "--no-browser"], {**x_env, "AUTHSOME_HOME": str(tmp_path / "h"), "AUTHSOME_MASTER_KEY": key,
                                                "X_CLIENT_ID": "confidential-basic", "X_CLIENT_SECRET": "basic-secret",
                                                "OPENAI_API_KEY": "sk-an-api-key-login-may-read"})
    try:
        proc.url()  # waiting for a person: long enough to look
        environ = Path(f"/proc/{proc.proc.pid}/environ").read_bytes()  # root here; others get EACCES (non-dumpable)
        assert key.encode() not in environ and b"basic-secret" not in environ and b"sk-an-api-key" not in environ
        assert b"X_CLIENT_ID=confidential-basic" in environ  # only the secrets
    finally:
        proc.proc.kill()
        proc.proc.wait()


def test_an_export_nobody_got_hands_nothing_over(cli, connect_x, x_env):
    connect_x()
    twice = cli(["ci", "export", "x", "x=default"])
    assert twice.code == 2 and "named twice" in twice.err
    with open("/dev/full", "w") as full:  # the values cannot be written: the job will never have them
        r = subprocess.run([*AUTHSOME_CMD, "ci", "export", "x"], stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=30, env={**os.environ, **x_env})
    assert r.returncode != 0 and "No space left" in r.stderr
    assert Vault.open().get_connection("x").exported_at is None
    assert cli(["export", "x"]).code == 0  # still this machine's
    values = export(x_env, "x")  # and exportable
    assert values["AUTHSOME_BUNDLE"].startswith("asb1.") and Vault.open().get_connection("x").exported_at is not None

"""Token refresh against the real authorization server: rotation, rejection, many processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from authsome.errors import ConnectionInvalid
from authsome.flows.refresh import refresh
from authsome.providers import Registry
from authsome.vault import Vault


@pytest.fixture
def x_provider(home):
    return Registry().get("x")


@pytest.fixture(autouse=True)
def _resolve(x_env, monkeypatch):
    from authsome import resolve

    for k, v in x_env.items():
        monkeypatch.setenv(k, v)
    resolve.install(resolve.from_env())


def test_refresh_rotates_and_stores_both_tokens(oauth, connect_x, x_provider):
    issued = connect_x(expires_in=-1)
    before = Vault.open().get_connection("x")
    after = refresh(Vault.open(), x_provider, "default")
    assert after.access_token != issued["access_token"]
    assert after.refresh_token != issued["refresh_token"]  # X rotates refresh tokens
    assert after.version == before.version + 1 and after.expires_at > before.expires_at
    assert Vault.open().get_connection("x") == after
    stats = oauth.stats()
    assert stats["grants"]["refresh_token"] == {"success": 1, "error": 0, "errors": {}}
    assert stats["token_requests"][-1]["client_auth"] == "client_secret_basic"


def test_fresh_token_is_not_refreshed(oauth, connect_x, x_provider):
    connect_x(expires_in=600)
    refresh(Vault.open(), x_provider, "default")
    assert "refresh_token" not in oauth.stats()["grants"]


@pytest.mark.invariant
def test_rejected_refresh_token_marks_the_connection_invalid(oauth, connect_x, x_provider, cli, x_env):
    issued = connect_x(expires_in=-1)
    with oauth.client() as c:  # someone else uses the refresh token first
        c.post("/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
               auth=("confidential-basic", "basic-secret")).raise_for_status()
    with pytest.raises(ConnectionInvalid) as info:
        refresh(Vault.open(), x_provider, "default")
    assert "authsome login x --force" in info.value.hint
    assert issued["refresh_token"] not in info.value.message
    assert Vault.open().get_connection("x").state == "invalid"
    assert cli(["get", "x", "--field", "status"], env=x_env).out == "invalid\n"


REFRESHER = textwrap.dedent('''
    import sys
    from authsome import resolve
    from authsome.flows.refresh import refresh
    from authsome.providers import Registry
    from authsome.vault import Vault
    resolve.install(resolve.from_env())
    vault = Vault.open()
    stale = vault.get_connection("x").version
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    conn = refresh(vault, Registry().get("x"), "default", stale_version=stale)
    print(conn.access_token)
''')


@pytest.mark.invariant
def test_ten_processes_refresh_once_and_agree(oauth, connect_x, tmp_path):
    """Each process saw a 401 with the same token; exactly one refresh reaches the server."""
    connect_x()
    script = tmp_path / "refresher.py"
    script.write_text(REFRESHER)
    procs = [subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(10)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    tokens = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(tokens) == 1
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1
    assert Vault.open().get_connection("x").access_token == tokens.pop()


def test_export_refreshes_a_dead_token_first(oauth, connect_x, cli, x_env):
    issued = connect_x(expires_in=-1)
    r = cli(["export", "x"], env=x_env)
    assert r.code == 0, r.err
    fresh = Vault.open().get_connection("x")
    assert r.out == f"export X_ACCESS_TOKEN={fresh.access_token}\n"
    assert fresh.access_token != issued["access_token"] and fresh.refresh_token not in r.out
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1

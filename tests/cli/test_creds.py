"""`get` and `export`: what leaves the vault, and what never does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from authsome.models import Connection
from authsome.vault import Vault

ACCESS = "acc-" + "A1b2C3" * 6
REFRESH = "ref-" + "Z9y8X7" * 6


@pytest.fixture
def connected(home):
    Vault.open().put_connection(Connection(
        provider="x", access_token=ACCESS, refresh_token=REFRESH, token_type="bearer",
        expires_at=time.time() + 3600, scopes=("tweet.read", "users.read"), account="alice"))


def test_fresh_home_status_is_not_connected(cli, home):
    r = cli(["get", "x", "--field", "status"])
    assert (r.code, r.out) == (4, "not_connected\n")  # scripts can test the status by its exit code
    assert oct(home.stat().st_mode & 0o777) == "0o700"


def test_get_redacts_secrets_unless_asked(cli, connected):
    r = cli(["get", "x"])
    assert r.code == 0
    assert ACCESS not in r.out and REFRESH not in r.out
    assert "<redacted>" in r.out and "tweet.read users.read" in r.out
    data = json.loads(cli(["get", "x", "--json"]).out)
    assert data["status"] == "connected" and data["access_token"] == "<redacted>"
    assert cli(["get", "x", "--field", "status"]).out == "connected\n"
    r = cli(["get", "x", "--field", "access_token"])
    assert r.code == 2 and ACCESS not in r.both and "--show-secret" in r.err
    assert cli(["get", "x", "--field", "access_token", "--show-secret"]).out == ACCESS + "\n"
    assert cli(["get", "x", "--field", "scopes"]).out == "tweet.read users.read\n"
    assert cli(["get", "x", "--field", "bogus"]).code == 2


def test_get_reports_expired_and_invalid(cli, home):
    v = Vault.open()
    v.put_connection(Connection(provider="x", access_token=ACCESS, expires_at=time.time() - 10))
    assert cli(["get", "x", "--field", "status"]).out == "expired\n"
    v.put_connection(Connection(provider="x", name="w", access_token=ACCESS, refresh_token=REFRESH,
                                state="invalid", state_reason="refresh token rejected"))
    assert cli(["get", "x", "-c", "w", "--field", "status"]).out == "invalid\n"


def test_missing_connection_field_is_a_credential_error(cli):
    r = cli(["get", "x", "--connection", "work", "--field", "access_token"])
    assert r.code == 4
    assert "hint: run `authsome login x --connection work`" in r.err


@pytest.mark.invariant
@pytest.mark.parametrize("fmt", ["env", "shell", "json"])
def test_export_never_prints_a_refresh_token(cli, connected, fmt):
    r = cli(["export", "x", "--format", fmt])
    assert r.code == 0
    assert ACCESS in r.out
    assert REFRESH not in r.both
    assert "X_REFRESH_TOKEN" not in r.out
    r = cli(["export", "--format", fmt])
    assert ACCESS in r.out and REFRESH not in r.both


def test_seed_eval_export_reaches_later_programs(connected, home):
    """`eval "$(authsome export x --format env)"` exports X_ACCESS_TOKEN to children."""
    bindir = os.path.dirname(sys.executable)
    script = 'eval "$(authsome export x --format env)"\npython -c "import os; print(os.environ[\'X_ACCESS_TOKEN\'])"\n'
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ACCESS


def test_export_quotes_values_for_the_shell(cli, home):
    nasty = "a'b $(touch pwned) `x`"
    Vault.open().put_connection(Connection(provider="x", access_token=nasty))
    r = cli(["export", "x", "--format", "env"])
    out = subprocess.run(["bash", "-c", r.out + '\nprintf %s "$X_ACCESS_TOKEN"'], capture_output=True,
                         text=True, cwd=home).stdout
    assert out == nasty
    assert not (home / "pwned").exists()


def test_export_refuses_dead_tokens(cli, home):
    Vault.open().put_connection(Connection(provider="x", access_token=ACCESS, expires_at=time.time() - 5))
    r = cli(["export", "x"])
    assert r.code == 4 and ACCESS not in r.both
    assert "authsome login x --force" in r.err


def test_export_of_missing_connection(cli):
    r = cli(["export", "x"])
    assert r.code == 4 and "authsome login x" in r.err

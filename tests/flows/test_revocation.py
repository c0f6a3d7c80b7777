"""`logout` / `revoke`: RFC 7009 revocation at the provider, then local deletion."""

from __future__ import annotations

from authsome.vault import Vault
from tests.conftest import run_cli


def _api_status(oauth, token: str) -> int:
    with oauth.client() as c:
        return c.get("/2/users/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_logout_revokes_both_tokens_then_deletes(oauth, connect_x, x_env):
    issued = connect_x()
    assert _api_status(oauth, issued["access_token"]) == 200
    r = run_cli(["logout", "x"], env=x_env)
    assert r.code == 0 and "logged out of x (default)" in r.out and "warning" not in r.err
    assert oauth.stats()["revocations"] == 2
    assert _api_status(oauth, issued["access_token"]) == 401  # dead at the provider
    assert Vault.open().get_connection("x") is None
    assert Vault.open().get_client("x") is not None  # logout keeps the client


def test_revoke_removes_every_connection_and_the_client(oauth, connect_x, x_env):
    connect_x()
    connect_x(name="work", account="bob")
    r = run_cli(["revoke", "x", "--yes", "--json"], env=x_env)
    assert r.code == 0
    assert oauth.stats()["revocations"] == 4
    v = Vault.open()
    assert v.connection_names("x") == [] and v.get_client("x") is None


def test_failed_remote_revocation_warns_and_still_deletes(oauth, connect_x, x_env):
    issued = connect_x()
    env = {**x_env, "AUTHSOME_RESOLVE": "api.twitter.com:443:127.0.0.1:9"}  # nothing listens there
    r = run_cli(["logout", "x"], env=env)
    assert r.code == 0 and "warning: revoking the refresh token failed" in r.err
    assert issued["refresh_token"] not in r.err and issued["access_token"] not in r.err
    assert Vault.open().get_connection("x") is None

"""`login` (API keys), `logout`, `revoke`, `whoami`."""

from __future__ import annotations

import json

import pytest

from authsome.models import ClientCredentials, Connection
from authsome.vault import Vault

KEY = "sk-test-" + "k" * 30


@pytest.fixture
def keyed(home, cli, tmp_path):
    """A custom API-key provider, registered through the CLI."""
    f = tmp_path / "acme.json"
    f.write_text(json.dumps({
        "name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
        "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "key_pattern": "^sk-test-[a-z]{20,}$",
                    "key_pattern_hint": "keys start with sk-test-", "env_var": "ACME_API_KEY"},
        "api_url": "api.acme.test", "export": {"api_key": "ACME_API_KEY"}}))
    assert cli(["register", str(f)]).code == 0


def test_api_key_login_from_stdin(cli, keyed):
    r = cli(["login", "acme"], input=KEY + "\n")
    assert r.code == 0, r.err
    assert KEY not in r.both
    assert cli(["get", "acme", "--field", "status"]).out == "connected\n"
    assert cli(["export", "acme"]).out == f"export ACME_API_KEY={KEY}\n"
    r = cli(["login", "acme"], input=KEY + "\n")
    assert r.code == 2 and "--force" in r.err
    assert cli(["login", "acme", "--force"], input=KEY + "\n").code == 0


def test_api_key_login_from_env_in_ci(cli, keyed):
    r = cli(["login", "acme", "-c", "ci"], env={"ACME_API_KEY": KEY, "CI": "true"})
    assert r.code == 0, r.err
    assert cli(["get", "acme", "-c", "ci", "--field", "status"]).out == "connected\n"


def test_api_key_pattern_is_checked_without_echoing_the_value(cli, keyed):
    bad = "totally-wrong-key-value"
    r = cli(["login", "acme"], input=bad + "\n")
    assert r.code == 6
    assert bad not in r.both
    assert "hint: keys start with sk-test-" in r.err


def test_scopes_do_not_apply_to_api_keys(cli, keyed):
    assert cli(["login", "acme", "--scopes", "a,b"], input=KEY).code == 2


@pytest.mark.parametrize("args, says", [
    (["x", "--base-url", "https://twitter.example"], "fixed endpoints"),
    (["gitlab", "--base-url", "http://gitlab.corp.test"], "is not an https:// URL"),
    (["gitlab", "--base-url", "https://gitlab.corp.test/?x=1"], "query"),
    (["acme", "--base-url", "https://acme.example"], "fixed endpoints"),
])
def test_bad_base_url_is_refused_before_anything_starts(cli, keyed, args, says):
    r = cli(["login", *args, "--no-browser"])
    assert r.code == 2 and says in r.err, r.err
    assert "Traceback" not in r.err


def test_logout_and_revoke_remove_local_records(cli, home):
    v = Vault.open()
    v.put_connection(Connection(provider="x", access_token="a"))
    v.put_connection(Connection(provider="x", name="work", access_token="b"))
    v.put_client(ClientCredentials(provider="x", client_id="cid", client_secret="s"))
    r = cli(["logout", "x", "--connection", "work"])
    assert r.code == 0 and "logged out of x (work)" in r.out
    assert v.connection_names("x") == ["default"]
    assert "nothing to do" in cli(["logout", "x", "--connection", "work"]).out
    data = json.loads(cli(["revoke", "x", "--yes", "--json"]).out)
    # api.twitter.com is unreachable here: remote revocation warns, local removal still happens.
    assert data.pop("warnings") and data == {"provider": "x", "connections_removed": ["default"], "client_removed": True}
    assert v.connection_names("x") == [] and v.get_client("x") is None


def test_whoami_shows_home_key_source_and_connections(cli, home):
    r = cli(["whoami"])
    assert r.code == 0 and str(home) in r.out and "not created yet" in r.out
    Vault.open().put_connection(Connection(provider="x", access_token="a", account="alice"))
    data = json.loads(cli(["whoami", "--json"]).out)
    assert data["master_key"]["source"] == "file"
    assert data["connections"] == [{"provider": "x", "connection": "default", "status": "connected", "account": "alice"}]


def test_wrong_key_exits_5_with_one_sentence(cli, home, master_key):
    import base64
    import os

    Vault.open().put_connection(Connection(provider="x", access_token="a"))
    r = cli(["get", "x"], env={"AUTHSOME_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()})
    assert r.code == 5
    assert r.err.startswith("error: Vault record ") and "Traceback" not in r.err


def test_corrupt_vault_exits_5_and_file_is_untouched(cli, home):
    Vault.open().put_connection(Connection(provider="x", access_token="a"))
    path = home / "vault" / "x" / "conn.default.json"
    path.write_bytes(b'{"format": "authsome-vault/1", "kid"')
    r = cli(["get", "x", "--field", "status"])
    assert r.code == 5 and "truncated or malformed" in r.err
    assert cli(["login", "x", "--force"]).code == 5
    assert path.read_bytes() == b'{"format": "authsome-vault/1", "kid"'


def test_doctor_reports_and_fails_on_problems(cli, home):
    r = cli(["doctor"])
    assert r.code == 0, r.out
    (home / "providers" / "broken.json").write_text("{")
    r = cli(["doctor", "--json"])
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["providers"]["ok"] is False and "broken.json" in checks["providers"]["detail"]

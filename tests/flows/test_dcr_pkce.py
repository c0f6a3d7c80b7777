"""`dcr_pkce`: dynamic client registration (RFC 7591) with discovery, then PKCE in a real browser."""

from __future__ import annotations

import json

from authsome.vault import Vault
from tests.support.browser import oidc_login_and_consent
from tests.support.login import LoginProcess


def test_registers_once_then_logs_in_with_pkce(home, oauth, browser, x_env, cli, tmp_path):
    definition = {
        "name": "mcp", "display_name": "MCP server", "auth_type": "oauth2", "flow": "dcr_pkce",
        # No registration_endpoint: found by discovery from the issuer.
        "oauth": {"authorization_url": "https://twitter.com/i/oauth2/authorize",
                  "token_url": "https://twitter.com/2/oauth2/token", "issuer": "https://twitter.com",
                  "scopes": ["users.read"], "supports_dcr": True, "client_auth": "none"},
        "api_url": "api.mcp.test", "export": {"access_token": "MCP_ACCESS_TOKEN"},
    }
    (tmp_path / "mcp.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "mcp.json")]).code == 0

    for username, extra in (("olivia", []), ("olivia", ["--force"])):
        login = LoginProcess(["mcp", "--no-browser", *extra], x_env)
        authorize = login.url()
        assert authorize.startswith("https://twitter.com/i/oauth2/authorize?")  # no form: registered
        browser.goto(authorize)
        oidc_login_and_consent(browser, username)
        done = login.finish()
        assert done.code == 0, done.err

    stats = oauth.stats()
    assert stats["registrations"] == 1  # the registered client is stored and reused
    assert stats["token_requests"][-1]["client_auth"] == "none"
    client = Vault.open().get_client("mcp")
    assert client.source == "dcr" and client.client_id
    assert cli(["get", "mcp", "--field", "status"]).out == "connected\n"


def test_discovery_without_registration_endpoint_is_a_clear_error(home, oauth, x_env, cli, tmp_path):
    definition = {
        "name": "nodcr", "display_name": "No DCR", "auth_type": "oauth2", "flow": "dcr_pkce",
        "oauth": {"authorization_url": "https://api.x.com/i/oauth2/authorize", "token_url": "https://api.x.com/2/oauth2/token",
                  "issuer": "https://api.x.com/tenant", "scopes": [], "supports_dcr": True},
        "api_url": "api.nodcr.test", "export": {"access_token": "NODCR_ACCESS_TOKEN"},
    }
    (tmp_path / "nodcr.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "nodcr.json")]).code == 0
    r = cli(["login", "nodcr", "--no-browser"], env=x_env)
    assert r.code == 6 and "publishes no registration endpoint" in r.err

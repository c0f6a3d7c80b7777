"""`authsome login x`: the PKCE browser flow against a real authorization server and a real browser."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import httpx
import pytest

from tests.conftest import AUTHSOME, run_cli
from tests.support.browser import oidc_deny_consent, oidc_login_and_consent
from tests.support.login import LoginProcess

CLIENT_ID, CLIENT_SECRET = "confidential-basic", "basic-secret"


def fill_client_form(page, client_id: str, secret: str = "") -> None:
    page.fill("#client_id", client_id)
    if secret:
        page.fill("#client_secret", secret)
    page.click("#submit")


def stored_tokens(home) -> tuple[str, str]:
    from authsome.vault import Vault

    conn = Vault.open().get_connection("x", "default")
    return conn.access_token, conn.refresh_token


def test_seed_login_with_confidential_client_and_basic_auth(home, oauth, browser, x_env, login_port):
    login = LoginProcess(["x", "--no-browser"], x_env)
    form_url = login.url()
    assert form_url == f"http://127.0.0.1:{login_port}/"
    browser.goto(form_url)
    assert browser.input_value("#redirect_uri") == f"http://127.0.0.1:{login_port}/auth/callback/oauth"
    fill_client_form(browser, CLIENT_ID, CLIENT_SECRET)
    browser.wait_for_url("https://twitter.com/**")
    oidc_login_and_consent(browser, "alice")
    browser.wait_for_selector("h1.ok")
    assert "Logged in" in browser.content()
    done = login.finish()
    assert done.code == 0, done.err
    assert done.out == "connected x (default)\n"
    # The seed's check.
    r = run_cli(["get", "x", "--field", "status"], env=x_env)
    assert r.out == "connected\n"
    token_request = oauth.stats()["token_requests"][-1]
    assert token_request["grant_type"] == "authorization_code"
    assert token_request["client_auth"] == "client_secret_basic"
    access, refresh = stored_tokens(home)
    assert refresh
    scopes = run_cli(["get", "x", "--field", "scopes"], env=x_env).out.split()
    assert scopes == ["tweet.read", "tweet.write", "users.read", "offline.access"]
    for text in (done.out, done.err, r.out, r.err):
        for secret in (CLIENT_SECRET, access, refresh):
            assert secret not in text
    # The login page is gone once the login is over.
    with pytest.raises(httpx.ConnectError):
        httpx.get(form_url, timeout=2)

    # Later logins reuse the stored client: straight to the provider, no form.
    again = LoginProcess(["x", "--no-browser", "--connection", "work", "--scopes", "tweet.read,users.read"], x_env)
    authorize = again.url()
    assert authorize.startswith("https://twitter.com/i/oauth2/authorize?")
    assert "code_challenge_method=S256" in authorize and "state=" in authorize
    browser.context.clear_cookies()  # another account: no session with the first one
    browser.goto(authorize)
    oidc_login_and_consent(browser, "bob")
    assert again.finish().code == 0
    assert run_cli(["get", "x", "-c", "work", "--field", "scopes"], env=x_env).out.split() == ["tweet.read", "users.read"]
    # X names no account in its token response: authsome asked GET /2/users/me once, so they can be told apart.
    accounts = {c["connection"]: c["account"] for c in json.loads(run_cli(["whoami", "--json"], env=x_env).out)["connections"]}
    assert accounts == {"default": "alice", "work": "bob"}


def test_a_mistyped_client_is_never_kept(home, oauth, browser, x_env):
    """The provider refuses an unknown client at its authorize page; nothing comes back, nothing is stored."""
    from authsome.vault import Vault

    login = LoginProcess(["x", "--no-browser", "--timeout", "6"], x_env)
    browser.goto(login.url())
    fill_client_form(browser, "mistyped-client-id", "whatever")
    done = login.finish()
    assert done.code == 6 and "Timed out" in done.err and "--reset-client" in done.err
    assert Vault.open().get_client("x") is None  # the next login asks again
    again = LoginProcess(["x", "--no-browser"], x_env)
    assert again.url().startswith("http://127.0.0.1:")  # the form, not the provider
    again.kill()


def test_reset_client_asks_again_and_leaves_the_connections(home, oauth, browser, x_env, connect_x):
    from authsome.vault import Vault

    connect_x(name="work")  # a connection made with the stored client confidential-basic
    login = LoginProcess(["x", "--no-browser", "--reset-client"], x_env)
    form = login.url()
    assert form.startswith("http://127.0.0.1:")  # asked again instead of reusing the stored client
    browser.goto(form)
    fill_client_form(browser, "public")
    oidc_login_and_consent(browser, "ivan")
    browser.wait_for_selector("h1.ok")
    assert login.finish().code == 0
    v = Vault.open()
    assert v.get_client("x").client_id == "public" and v.connection_names("x") == ["default", "work"]


def test_fewer_scopes_than_requested_are_named(home, oauth, browser, x_env):
    login = LoginProcess(["x", "--no-browser", "--scopes", "tweet.read,users.read,not.granted.here"], x_env)
    browser.goto(login.url())
    fill_client_form(browser, "public")
    oidc_login_and_consent(browser, "judy")
    browser.wait_for_selector("h1.ok")
    done = login.finish()
    assert done.code == 0, done.err
    assert "granted fewer scopes than requested; missing: not.granted.here" in done.err


def test_public_client_without_secret(home, oauth, browser, x_env):
    login = LoginProcess(["x", "--no-browser"], x_env)
    browser.goto(login.url())
    fill_client_form(browser, "public")
    oidc_login_and_consent(browser, "carol")
    browser.wait_for_selector("h1.ok")
    assert login.finish().code == 0
    assert oauth.stats()["token_requests"][-1]["client_auth"] == "none"


def test_public_client_provider_asks_for_no_secret_and_sends_none(home, oauth, browser, x_env, cli, tmp_path):
    # Slack's shape: on a loopback redirect the app must be a PKCE public client.
    raw = json.loads(run_cli(["inspect", "x"], env=x_env).out)
    raw["oauth"]["client_auth"] = "none"
    (tmp_path / "x.json").write_text(json.dumps(raw))
    assert cli(["register", str(tmp_path / "x.json"), "--force"]).code == 0
    login = LoginProcess(["x", "--no-browser"], {**x_env, "X_CLIENT_SECRET": "never-sent"})
    browser.goto(login.url())
    assert browser.locator("#client_id").count() == 1
    assert browser.locator("#client_secret").count() == 0
    assert "No secret is needed" in browser.content()
    fill_client_form(browser, "public")
    oidc_login_and_consent(browser, "carol")
    browser.wait_for_selector("h1.ok")
    assert login.finish().code == 0
    assert oauth.stats()["token_requests"][-1]["client_auth"] == "none"


def test_openid_login_names_the_account(home, oauth, browser, x_env):
    login = LoginProcess(["x", "--no-browser", "--scopes", "openid,users.read"], x_env)
    browser.goto(login.url())
    fill_client_form(browser, "public")
    oidc_login_and_consent(browser, "frank")
    browser.wait_for_selector("h1.ok")
    assert login.finish().code == 0
    [conn] = json.loads(run_cli(["whoami", "--json"], env=x_env).out)["connections"]
    assert (conn["provider"], conn["account"]) == ("x", "frank")
    assert "frank" in run_cli(["whoami"], env=x_env).out


def test_client_credentials_from_ci_variables(home, oauth, browser, x_env):
    env = {**x_env, "X_CLIENT_ID": CLIENT_ID, "X_CLIENT_SECRET": CLIENT_SECRET, "CI": "true"}
    login = LoginProcess(["x", "--no-browser"], env)
    authorize = login.url()
    assert authorize.startswith("https://twitter.com/i/oauth2/authorize?")
    browser.goto(authorize)
    oidc_login_and_consent(browser, "dave")
    done = login.finish()
    assert done.code == 0 and CLIENT_SECRET not in done.err + done.out


def test_consent_denied_ends_the_login_with_access_denied(home, oauth, browser, x_env):
    env = {**x_env, "X_CLIENT_ID": CLIENT_ID, "X_CLIENT_SECRET": CLIENT_SECRET}
    login = LoginProcess(["x", "--no-browser"], env)
    browser.goto(login.url())
    oidc_deny_consent(browser, "erin")
    browser.wait_for_selector("h1.error")
    done = login.finish()
    assert done.code == 6
    assert "access_denied" in done.err and "hint: approve the request" in done.err
    assert run_cli(["get", "x", "--field", "status"], env=x_env).out == "not_connected\n"


def test_wrong_client_secret_is_refused_and_forgotten(home, oauth, browser, x_env):
    login = LoginProcess(["x", "--no-browser"], x_env)
    browser.goto(login.url())
    fill_client_form(browser, CLIENT_ID, "not-the-secret")
    oidc_login_and_consent(browser, "frank")
    browser.wait_for_selector("h1.error")
    done = login.finish()
    assert done.code == 6 and "invalid_client" in done.err
    assert "not-the-secret" not in done.err + done.out
    from authsome.vault import Vault

    assert Vault.open().get_client("x") is None  # asked again next time


def test_state_mismatch_is_refused(home, oauth, x_env, login_port):
    env = {**x_env, "X_CLIENT_ID": CLIENT_ID, "X_CLIENT_SECRET": CLIENT_SECRET}
    login = LoginProcess(["x", "--no-browser"], env)
    login.url()
    r = httpx.get(f"http://127.0.0.1:{login_port}/auth/callback/oauth?code=abc&state=forged")
    assert r.status_code == 400 and "state mismatch" in r.text
    done = login.finish()
    assert done.code == 6 and "state mismatch" in done.err
    assert oauth.stats()["token_requests"] == []  # the forged code was never exchanged


def test_login_page_refuses_foreign_hosts_missing_csrf_and_ignores_strays(home, oauth, browser, x_env, login_port):
    login = LoginProcess(["x", "--no-browser"], x_env)
    base = login.url()
    try:
        # DNS rebinding: a page of another name resolving to 127.0.0.1 gets nothing.
        r = httpx.get(base, headers={"Host": f"evil.test:{login_port}"})
        assert r.status_code == 421 and "csrf" not in r.text
        # A cross-site form post without the token is refused.
        r = httpx.post(base, data={"client_id": "attacker", "client_secret": "x"})
        assert r.status_code == 403
        r = httpx.post(base, data={"client_id": "attacker", "csrf": "guess"}, headers={"Origin": "https://evil.test"})
        assert r.status_code == 403
        # Probes and favicons do not end the login.
        assert httpx.get(base + "favicon.ico").status_code == 404
        assert httpx.get(base + "auth/callback/oauth").status_code == 400
        page = httpx.get(base)
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        assert page.headers["X-Frame-Options"] == "DENY"
        # The real browser still completes the login afterwards.
        browser.goto(base)
        fill_client_form(browser, CLIENT_ID, CLIENT_SECRET)
        oidc_login_and_consent(browser, "gina")
        assert login.finish().code == 0
    finally:
        login.kill()
    from authsome.vault import Vault

    assert Vault.open().get_client("x").client_id == CLIENT_ID  # not "attacker"


def test_error_description_is_rendered_inert(home, oauth, browser, x_env, login_port):
    env = {**x_env, "X_CLIENT_ID": CLIENT_ID, "X_CLIENT_SECRET": CLIENT_SECRET}
    login = LoginProcess(["x", "--no-browser"], env)
    login.url()
    payload = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
    browser.goto(f"http://127.0.0.1:{login_port}/auth/callback/oauth?error=server_error&error_description="
                 + httpx.URL("", params={"d": payload}).query.decode()[2:])
    assert browser.title() != "pwned"
    assert payload in browser.inner_text("body")  # shown as text, not markup
    done = login.finish()
    assert done.code == 6


def test_pasted_redirect_url_completes_the_login(home, oauth, browser, x_env, login_port):
    """Over SSH the browser cannot reach the callback; the user pastes the URL instead."""
    env = {**x_env, "X_CLIENT_ID": CLIENT_ID, "X_CLIENT_SECRET": CLIENT_SECRET}
    login = LoginProcess(["x", "--no-browser"], env)
    authorize = login.url()
    callback_prefix = f"http://127.0.0.1:{login_port}/auth/callback/oauth"
    # Chromium's own request interception (CDP Fetch) also sees requests that follow a
    # redirect: fail the one to the callback, as an unreachable remote machine would.
    cdp = browser.context.new_cdp_session(browser)
    captured: list[str] = []

    def paused(event):
        captured.append(event["request"]["url"])
        cdp.send("Fetch.failRequest", {"requestId": event["requestId"], "errorReason": "ConnectionRefused"})

    cdp.on("Fetch.requestPaused", paused)
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": callback_prefix + "*"}]})
    browser.goto(authorize)
    try:
        oidc_login_and_consent(browser, "hank")
    except Exception:
        pass  # the last navigation fails on purpose
    assert captured and captured[0].startswith(callback_prefix + "?")
    cdp.send("Fetch.disable")
    login.paste("not a url")
    login.wait_for("not the redirect URL")
    login.paste(captured[0])
    done = login.finish()
    assert done.code == 0, done.err
    assert run_cli(["get", "x", "--field", "status"], env=x_env).out == "connected\n"


def test_headless_without_flag_fails_fast(home, x_env):
    r = run_cli(["login", "x"], env=x_env)  # stdin is not a terminal
    assert r.code == 6
    assert "does not wait" in r.err and "--no-browser" in r.err
    r = run_cli(["login", "x"], env={**x_env, "CI": "true"})
    assert r.code == 6 and "CI=true" in r.err


def test_busy_port_is_named(home, x_env, login_port):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = run_cli(["login", "x", "--no-browser"], env={**x_env, "AUTHSOME_LOGIN_PORT": str(busy)})
    assert r.code == 6 and f"Port {busy} on 127.0.0.1 is already in use" in r.err


def test_timeout_has_a_clear_message(home, x_env):
    r = run_cli(["login", "x", "--no-browser", "--timeout", "1"], env=x_env)
    assert r.code == 6 and "Timed out after 1 s" in r.err


def test_untrusted_authorization_server_is_refused(home, oauth, browser, x_env):
    env = {k: v for k, v in x_env.items() if k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env.update(X_CLIENT_ID=CLIENT_ID, X_CLIENT_SECRET=CLIENT_SECRET)
    login = LoginProcess(["x", "--no-browser"], env)
    browser.goto(login.url())
    oidc_login_and_consent(browser, "ivan")
    done = login.finish()
    assert done.code == 6 and "certificate verification failed" in done.err


def test_default_login_opens_the_browser_from_a_terminal(home, oauth, browser, x_env, tmp_path, login_port):
    """`authsome login x` at a terminal: the browser opens the local form (here a recording BROWSER)."""
    opened = tmp_path / "opened"
    fake_browser = tmp_path / "browser.sh"
    fake_browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    fake_browser.chmod(0o755)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([*AUTHSOME, "login", "x"], stdin=secondary, stdout=secondary, stderr=secondary,
                            env={**os.environ, **x_env, "BROWSER": str(fake_browser)}, close_fds=True)
    os.close(secondary)
    try:
        import time

        deadline = time.monotonic() + 30
        while not opened.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert opened.read_text().strip() == f"http://127.0.0.1:{login_port}/"
        browser.goto(f"http://127.0.0.1:{login_port}/")
        fill_client_form(browser, CLIENT_ID, CLIENT_SECRET)
        oidc_login_and_consent(browser, "judy")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    assert run_cli(["get", "x", "--field", "status"], env=x_env).out == "connected\n"


def test_templated_definition_needs_and_uses_base_url(home, oauth, browser, x_env, cli, tmp_path):
    definition = {
        "name": "selfhosted", "display_name": "Self-hosted", "auth_type": "oauth2", "flow": "pkce",
        "oauth": {"authorization_url": "{base_url}/i/oauth2/authorize", "token_url": "{base_url}/2/oauth2/token",
                  "scopes": ["users.read"], "client_auth": "basic"},
        "api_url": "api.selfhosted.test", "export": {"access_token": "SELFHOSTED_TOKEN"},
    }
    (tmp_path / "selfhosted.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "selfhosted.json")]).code == 0
    env = {**x_env, "SELFHOSTED_CLIENT_ID": CLIENT_ID, "SELFHOSTED_CLIENT_SECRET": CLIENT_SECRET}
    r = run_cli(["login", "selfhosted", "--no-browser"], env=env)
    assert r.code == 2 and "--base-url" in r.err
    login = LoginProcess(["selfhosted", "--no-browser", "--base-url", "https://twitter.com/"], env)
    authorize = login.url()
    assert authorize.startswith("https://twitter.com/i/oauth2/authorize?")
    browser.goto(authorize)
    oidc_login_and_consent(browser, "kim")
    done = login.finish()
    assert done.code == 0, done.err
    assert json.loads(run_cli(["get", "selfhosted", "--json"], env=env).out)["base_url"] == "https://twitter.com"  # normalized

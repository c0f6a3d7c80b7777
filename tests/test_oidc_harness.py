"""Proves the third-party OAuth server harness (tests/servers/oidc) works end to end:
real oidc-provider over HTTPS, real headless Chromium, authlib as the client.

Needs: node + ``npm ci --prefix tests/servers/oidc``, and /usr/bin/chromium.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

# `python -m pytest` puts the repo root on sys.path; the plain `pytest` script does
# not (and --import-mode=importlib never does), so make `tests.support` importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

from tests.support.browser import (  # noqa: E402
    launch_browser,
    oidc_approve_device,
    oidc_deny_consent,
    oidc_login_and_consent,
)
from tests.support.callback import CallbackServer  # noqa: E402
from tests.support.oidc import (  # noqa: E402
    DEVICE_GRANT,
    OidcServer,
    default_clients,
    oidc_server_available,
    start_oidc_server,
)
from tests.support.tls import make_ca  # noqa: E402

ACCESS_TOKEN_TTL = 30
X_SCOPE = "tweet.read users.read offline.access"


@pytest.fixture(scope="module")
def workdir():
    # Not tmp_path: pytest deletes all but the 3 newest basetemps, so other pytest
    # sessions on the same machine could remove the server's files mid-run.
    path = Path(tempfile.mkdtemp(prefix="authsome-oidc-harness-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def ca(workdir):
    return make_ca(workdir / "pki")


@pytest.fixture(scope="module")
def callback():
    with CallbackServer("/auth/callback/oauth") as cb:
        yield cb


@pytest.fixture(scope="module")
def oidc(ca, callback, workdir):
    if not oidc_server_available():
        pytest.fail("oidc test server not installed: run `npm ci --prefix tests/servers/oidc`")
    started = time.monotonic()
    server = start_oidc_server(
        workdir / "oidc", ca, access_token_ttl=ACCESS_TOKEN_TTL,
        clients=default_clients([callback.redirect_uri]),
    )
    print(f"oidc server ready in {time.monotonic() - started:.2f}s at {server.url}")
    yield server
    server.stop()


@pytest.fixture
def srv(oidc: OidcServer):
    oidc.reset()
    yield oidc
    if oidc.process is None or oidc.process.poll() is not None:
        pytest.fail(f"oidc server died:\n{oidc.log}")


@pytest.fixture
def browser(oidc: OidcServer):
    with launch_browser(trust=[oidc.leaf]) as context:
        yield context


def x_session(srv: OidcServer, redirect_uri: str, client_id="confidential-basic",
              secret="basic-secret", auth_method="client_secret_basic") -> OAuth2Session:
    sess = OAuth2Session(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=auth_method,
        scope=X_SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    sess.verify = srv.ca_path  # trust the test CA and nothing else
    sess.trust_env = False  # ignore proxy env vars
    return sess


def browser_login(srv, browser, callback: CallbackServer, sess: OAuth2Session,
                  username: str) -> tuple[str, str]:
    """Run the authorization request in Chromium; return (callback URL, code_verifier)."""
    seen = len(callback.urls)
    verifier = generate_token(64)
    url, _state = sess.create_authorization_url(srv.endpoint("authorization"), code_verifier=verifier)
    page = browser.new_page()
    page.goto(url)
    oidc_login_and_consent(page, username)
    return callback.wait(after=seen), verifier


def me(srv: OidcServer, access_token: str) -> httpx.Response:
    with srv.client() as c:
        return c.get("/2/users/me", headers={"Authorization": f"Bearer {access_token}"})


def test_authorization_code_pkce_refresh_rotation(srv, browser, callback):
    sess = x_session(srv, callback.redirect_uri)
    url, verifier = browser_login(srv, browser, callback, sess, "alice")
    query = parse_qs(urlsplit(url).query)
    assert query["code"] and query["iss"] == [srv.issuer]  # RFC 9207 iss is sent

    token = sess.fetch_token(
        srv.endpoint("token"), authorization_response=url, code_verifier=verifier
    )
    assert token["token_type"].lower() == "bearer"
    assert token["refresh_token"] and token["access_token"]
    assert set(token["scope"].split()) == set(X_SCOPE.split())
    assert token["expires_in"] == ACCESS_TOKEN_TTL

    r = me(srv, token["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["data"]["username"] == "alice"
    with srv.client() as c:
        tweet = c.post("/2/tweets", json={"text": "hi"},
                       headers={"Authorization": f"Bearer {token['access_token']}"})
    assert tweet.status_code == 201 and tweet.json()["data"]["text"] == "hi"

    old_refresh = token["refresh_token"]
    new = sess.refresh_token(srv.endpoint("token"), refresh_token=old_refresh)
    assert new["refresh_token"] and new["refresh_token"] != old_refresh
    assert new["access_token"] != token["access_token"]
    assert me(srv, new["access_token"]).status_code == 200

    with pytest.raises(OAuthError) as err:
        sess.refresh_token(srv.endpoint("token"), refresh_token=old_refresh)
    assert err.value.error == "invalid_grant"
    # Replay detection revokes the whole grant: the rotated tokens die too.
    assert me(srv, new["access_token"]).status_code == 401

    stats = srv.stats()
    assert stats["grants"] == {
        "authorization_code": {"success": 1, "error": 0, "errors": {}},
        "refresh_token": {"success": 1, "error": 1, "errors": {"invalid_grant": 1}},
    }
    assert stats["refresh_tokens_consumed"] == 1
    assert {t["client_auth"] for t in stats["token_requests"]} == {"client_secret_basic"}
    assert {t["client_id"] for t in stats["token_requests"]} == {"confidential-basic"}
    assert stats["api_authorization_headers"] == [
        f"Bearer {token['access_token']}",
        f"Bearer {token['access_token']}",
        f"Bearer {new['access_token']}",
        f"Bearer {new['access_token']}",
    ]
    assert [r["status"] for r in stats["api_requests"]] == [200, 201, 200, 401]


def test_client_secret_post_and_unauthenticated_api(srv, browser, callback):
    sess = x_session(srv, callback.redirect_uri, "confidential-post", "post-secret",
                     "client_secret_post")
    url, verifier = browser_login(srv, browser, callback, sess, "bob")
    token = sess.fetch_token(srv.endpoint("token"), authorization_response=url,
                             code_verifier=verifier)
    assert me(srv, token["access_token"]).json()["data"]["username"] == "bob"
    with srv.client() as c:
        assert c.get("/2/users/me").status_code == 401
        assert c.get("/2/users/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    stats = srv.stats()
    assert [t["client_auth"] for t in stats["token_requests"]] == ["client_secret_post"]
    assert stats["api_authorization_headers"] == [f"Bearer {token['access_token']}", None, "Bearer nope"]


def test_consent_denied_gives_access_denied(srv, browser, callback):
    sess = x_session(srv, callback.redirect_uri)
    seen = len(callback.urls)
    url, _ = sess.create_authorization_url(srv.endpoint("authorization"),
                                           code_verifier=generate_token(64))
    page = browser.new_page()
    page.goto(url)
    oidc_deny_consent(page, username="carol")
    assert parse_qs(urlsplit(callback.wait(after=seen)).query)["error"] == ["access_denied"]
    assert srv.stats()["grants"] == {}


@pytest.mark.parametrize("uri_key", ["verification_uri", "verification_uri_complete"])
def test_device_code_flow(srv, browser, uri_key):
    with srv.client() as c:
        r = c.post(srv.endpoint("device_authorization"),
                   data={"client_id": "public", "scope": X_SCOPE})
        assert r.status_code == 200, r.text
        auth = r.json()
        poll = {"grant_type": DEVICE_GRANT, "device_code": auth["device_code"], "client_id": "public"}

        pending = c.post(srv.endpoint("token"), data=poll)
        assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

        oidc_approve_device(browser.new_page(), auth[uri_key], auth["user_code"], "dave")

        deadline = time.monotonic() + 15
        while True:
            r = c.post(srv.endpoint("token"), data=poll)
            if r.status_code == 200 or r.json().get("error") != "authorization_pending":
                break
            assert time.monotonic() < deadline, "device grant never completed"
            time.sleep(auth["interval"])
        assert r.status_code == 200, r.text
        token = r.json()
    assert token["refresh_token"] and token["expires_in"] == ACCESS_TOKEN_TTL
    assert me(srv, token["access_token"]).json()["data"]["username"] == "dave"
    grants = srv.stats()["grants"][DEVICE_GRANT]
    assert grants["success"] == 1 and grants["errors"]["authorization_pending"] >= 1


def test_dynamic_client_registration(srv, browser, callback):
    with srv.client() as c:
        meta = c.get("/.well-known/openid-configuration").json()
        assert meta["issuer"] == srv.issuer
        assert meta["token_endpoint"] == srv.endpoint("token")
        assert "S256" in meta["code_challenge_methods_supported"]
        r = c.post(meta["registration_endpoint"], json={
            "client_name": "authsome",
            # native: any loopback port matches this at authorization time (RFC 8252)
            "redirect_uris": ["http://127.0.0.1:7998/auth/callback/oauth"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        })
        assert r.status_code == 201, r.text
        client = r.json()
    assert client["client_id"] and "client_secret" not in client
    assert srv.stats()["registrations"] == 1

    # The new public client completes a PKCE login on another port than registered.
    sess = OAuth2Session(client_id=client["client_id"], scope=X_SCOPE,
                         redirect_uri=callback.redirect_uri,
                         code_challenge_method="S256", token_endpoint_auth_method="none")
    sess.verify, sess.trust_env = srv.ca_path, False
    url, verifier = browser_login(srv, browser, callback, sess, "erin")
    token = sess.fetch_token(srv.endpoint("token"), authorization_response=url, code_verifier=verifier)
    assert token["refresh_token"]
    assert [t["client_auth"] for t in srv.stats()["token_requests"]] == ["none"]


def test_access_token_ttl_honoured(ca, callback, workdir):
    # A second, independent server with a tiny TTL and default (non-X) routes: the
    # token response says so and the API really stops accepting the token.
    # TTL 3: exp has one-second granularity, so the token lives 2 to 3 seconds.
    with start_oidc_server(workdir / "short", ca, access_token_ttl=3, routes={},
                           clients=default_clients([callback.redirect_uri])) as short:
        assert short.endpoint("token") == short.url + "/token"
        sess = x_session(short, callback.redirect_uri)
        with launch_browser(trust=[short.leaf]) as browser:
            url, verifier = browser_login(short, browser, callback, sess, "grace")
        token = sess.fetch_token(short.endpoint("token"), authorization_response=url,
                                 code_verifier=verifier)
        assert token["expires_in"] == 3
        assert me(short, token["access_token"]).status_code == 200
        deadline = time.monotonic() + 10
        while me(short, token["access_token"]).status_code == 200:
            assert time.monotonic() < deadline, "access token outlived its TTL"
            time.sleep(0.25)
        # The refresh token still works and yields a fresh, short-lived access token.
        fresh = sess.refresh_token(short.endpoint("token"), refresh_token=token["refresh_token"])
        assert fresh["expires_in"] == 3
        assert me(short, fresh["access_token"]).status_code == 200
    assert short.process is None  # stopped by the context manager


def test_introspection_and_revocation(srv, browser, callback):
    sess = x_session(srv, callback.redirect_uri)
    url, verifier = browser_login(srv, browser, callback, sess, "frank")
    token = sess.fetch_token(srv.endpoint("token"), authorization_response=url, code_verifier=verifier)
    with srv.client(auth=("confidential-basic", "basic-secret")) as c:
        info = c.post(srv.endpoint("introspection"), data={"token": token["access_token"]}).json()
        assert info["active"] is True and info["sub"] == "frank"
        assert info["exp"] - info["iat"] == ACCESS_TOKEN_TTL
        r = c.post(srv.endpoint("revocation"), data={"token": token["access_token"]})
        assert r.status_code == 200
    assert me(srv, token["access_token"]).status_code == 401
    stats = srv.stats()
    assert stats["revocations"] == 1 and stats["introspections"] == 1


def test_bad_client_config_fails_fast(ca, workdir):
    # oidc-provider would only notice on first use; server.mjs checks at start-up.
    bad = {"client_id": "bad", "token_endpoint_auth_method": "none", "application_type": "native",
           "redirect_uris": ["https://127.0.0.1/cb"]}  # native + https loopback: forbidden
    with pytest.raises(RuntimeError, match="invalid client bad: invalid_redirect_uri"):
        start_oidc_server(workdir / "bad", ca, clients=[bad])

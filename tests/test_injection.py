"""Where credentials go in a request: a decision table over real mitmproxy requests."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from mitmproxy.test import tutils

from authsome import injection
from authsome.models import PLACEHOLDER, Connection
from authsome.providers import parse_definition

TOKEN = "real-access-token-Zq9"
KEY = "real-api-key-Xy7"


def _provider(**api_key):
    raw = {"name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
           "api_key": api_key, "api_url": "api.acme.test", "export": {"api_key": "ACME_API_KEY"}}
    for f in api_key.get("extra_fields", []):
        raw["export"][f["name"]] = f"ACME_{f['name'].upper()}"
    return parse_definition(json.dumps(raw).encode(), "acme.json")


X = parse_definition(json.dumps({
    "name": "x", "display_name": "X", "auth_type": "oauth2", "flow": "pkce",
    "oauth": {"authorization_url": "https://x.test/auth", "token_url": "https://x.test/token", "scopes": []},
    "api_url": "api.x.test", "export": {"access_token": "X_ACCESS_TOKEN"}}).encode(), "x.json")
OAUTH_CONN = Connection(provider="x", access_token=TOKEN)
KEY_CONN = Connection(provider="acme", auth_type="api_key", api_key=KEY,
                      extra={"app_key": "real-app-key", "account": "AC123"})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Case:
    provider: object
    conn: Connection
    headers: dict
    query: dict
    want_headers: dict
    want_query: dict


CASES = [
    pytest.param(Case(X, OAUTH_CONN, {"Authorization": f"Bearer {PLACEHOLDER}"}, {}, {"Authorization": f"Bearer {TOKEN}"}, {}), id="oauth-placeholder-swapped"),
    pytest.param(Case(X, OAUTH_CONN, {}, {}, {"Authorization": f"Bearer {TOKEN}"}, {}), id="oauth-absent-added"),
    pytest.param(Case(X, OAUTH_CONN, {"Authorization": "Bearer childs-own"}, {}, {"Authorization": "Bearer childs-own"}, {}), id="oauth-own-left-alone"),
    pytest.param(Case(X, OAUTH_CONN, {"Authorization": f"token {PLACEHOLDER}"}, {}, {"Authorization": f"token {TOKEN}"}, {}), id="oauth-other-scheme-swapped"),
    pytest.param(Case(X, OAUTH_CONN, {"Authorization": _basic("x", PLACEHOLDER)}, {}, {"Authorization": _basic("x", TOKEN)}, {}), id="oauth-inside-basic"),
    pytest.param(Case(X, OAUTH_CONN, {"X-Custom": PLACEHOLDER}, {}, {"X-Custom": TOKEN, "Authorization": f"Bearer {TOKEN}"}, {}), id="placeholder-in-other-header"),
    pytest.param(Case(_provider(header_name="X-Api-Key", header_prefix=""), KEY_CONN, {}, {}, {"X-Api-Key": KEY}, {}), id="key-header-added"),
    pytest.param(Case(_provider(header_name="X-Api-Key", header_prefix=""), KEY_CONN, {"x-api-key": PLACEHOLDER}, {}, {"X-Api-Key": KEY}, {}), id="key-header-case-insensitive"),
    pytest.param(Case(_provider(), KEY_CONN, {"Authorization": f"Bearer {PLACEHOLDER}"}, {}, {"Authorization": f"Bearer {KEY}"}, {}), id="key-bearer"),
    pytest.param(Case(_provider(**{"in": "query", "query_param": "api_key"}), KEY_CONN, {}, {"q": "coffee"}, {}, {"q": "coffee", "api_key": KEY}), id="query-added"),
    pytest.param(Case(_provider(**{"in": "query", "query_param": "api_key"}), KEY_CONN, {}, {"api_key": PLACEHOLDER}, {}, {"api_key": KEY}), id="query-swapped"),
    pytest.param(Case(_provider(**{"in": "query", "query_param": "api_key"}), KEY_CONN, {}, {"api_key": "mine"}, {}, {"api_key": "mine"}), id="query-own-left-alone"),
    pytest.param(Case(_provider(**{"in": "basic", "basic_username_field": "account",
                                   "extra_fields": [{"name": "account", "label": "Account", "secret": False}]}),
                      KEY_CONN, {}, {}, {"Authorization": _basic("AC123", KEY)}, {}), id="basic-added"),
    pytest.param(Case(_provider(**{"in": "basic", "basic_username_field": "account",
                                   "extra_fields": [{"name": "account", "label": "Account", "secret": False}]}),
                      KEY_CONN, {"Authorization": _basic("AC123", PLACEHOLDER)}, {}, {"Authorization": _basic("AC123", KEY)}, {}), id="basic-swapped"),
    pytest.param(Case(_provider(header_name="DD-API-KEY", header_prefix="",
                                extra_fields=[{"name": "app_key", "label": "App key", "header_name": "DD-APPLICATION-KEY"}]),
                      KEY_CONN, {"DD-API-KEY": PLACEHOLDER, "DD-APPLICATION-KEY": PLACEHOLDER}, {},
                      {"DD-API-KEY": KEY, "DD-APPLICATION-KEY": "real-app-key"}, {}), id="two-headers-each-own-secret"),
]


def _request(case: Case):
    """A real mitmproxy request carrying exactly the case's headers and query."""
    request = tutils.treq(host="api.acme.test", port=443, path="/v1/things", headers=())
    request.headers.clear()
    for k, v in case.headers.items():
        request.headers[k] = v
    for k, v in case.query.items():
        request.query[k] = v
    return request


@pytest.mark.invariant
@pytest.mark.parametrize("case", CASES)
def test_injection_decision(case: Case):
    request = _request(case)
    before_headers = dict(request.headers)
    before_query = dict(request.query)
    changed = injection.apply(request, case.provider, case.conn)
    assert {k.lower(): v for k, v in request.headers.items()} == {k.lower(): v for k, v in case.want_headers.items()}
    assert dict(request.query) == case.want_query
    # What is kept to undo the change never holds a secret ...
    assert TOKEN not in json.dumps(changed) and KEY not in json.dumps(changed)
    # ... and undoing restores exactly what the child sent.
    injection.undo(request, changed)
    assert dict(request.headers) == before_headers
    assert dict(request.query) == before_query


@pytest.mark.parametrize("case", CASES)
def test_hide_then_reveal_restores_the_injected_request(case: Case):
    request = _request(case)
    child = (dict(request.headers), dict(request.query))
    changed = injection.apply(request, case.provider, case.conn)
    injected = (dict(request.headers), dict(request.query))
    held = injection.hide(request, changed)
    assert (dict(request.headers), dict(request.query)) == child
    injection.reveal(request, changed, held)
    assert (dict(request.headers), dict(request.query)) == injected


def test_reveal_keeps_an_edit_made_while_hidden():
    request = tutils.treq(host="api.x.test", port=443, path="/", headers=())
    request.headers.clear()
    request.headers["Authorization"] = f"Bearer {PLACEHOLDER}"
    changed = injection.apply(request, X, OAUTH_CONN)
    held = injection.hide(request, changed)
    request.headers["Authorization"] = "Bearer edited-in-the-ui"
    injection.reveal(request, changed, held)
    assert request.headers["Authorization"] == "Bearer edited-in-the-ui"


def test_basic_with_a_fixed_user_name():
    provider = _provider(**{"in": "basic", "basic_username": "anystring"})
    request = tutils.treq(host="api.acme.test", port=443, path="/", headers=())
    request.headers.clear()
    injection.apply(request, provider, KEY_CONN)
    assert request.headers["Authorization"] == _basic("anystring", KEY)


def test_nested_token_response_is_read_from_its_path():
    from authsome.flows.oauth_client import granted
    from authsome.models import OAuthConfig

    oauth = OAuthConfig(token_url="https://slack.test/token", scopes=(), token_response_path="authed_user")
    g = granted({"ok": True, "authed_user": {"access_token": "xoxp-1", "refresh_token": "xoxe-1",
                                             "expires_in": 60, "scope": "chat:write,users:read"}}, (), oauth, received_at=0)
    assert (g.access_token, g.refresh_token, g.expires_at, g.scopes) == ("xoxp-1", "xoxe-1", 60.0, ("chat:write", "users:read"))

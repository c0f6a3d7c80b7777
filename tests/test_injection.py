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
    # Never inside an encoding the child chose: an echo of it would be base64 no scrubber knows.
    pytest.param(Case(X, OAUTH_CONN, {"Authorization": _basic("x", PLACEHOLDER)}, {}, {"Authorization": _basic("x", PLACEHOLDER)}, {}), id="oauth-slot-never-fills-a-basic-pair"),
    # Only the definition's own slots are filled: a server that echoes other headers would hand the secret back.
    pytest.param(Case(X, OAUTH_CONN, {"X-Custom": PLACEHOLDER}, {}, {"X-Custom": PLACEHOLDER, "Authorization": f"Bearer {TOKEN}"}, {}), id="placeholder-in-other-header-stays"),
    pytest.param(Case(X, OAUTH_CONN, {"Sec-WebSocket-Protocol": PLACEHOLDER, "Authorization": "Bearer own"}, {},
                      {"Sec-WebSocket-Protocol": PLACEHOLDER, "Authorization": "Bearer own"}, {}), id="placeholder-in-websocket-protocol-stays"),
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
    pytest.param(Case(_provider(**{"in": "basic", "basic_username_field": "account",
                                   "extra_fields": [{"name": "account", "label": "Account", "secret": False}]}),
                      KEY_CONN, {"Authorization": _basic("a" * 5 + ":" + PLACEHOLDER, "x")}, {}, {"Authorization": _basic("AC123", KEY)}, {}),
                 id="basic-pair-written-from-the-definition-whatever-the-child-put-around-it"),
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
    changed = injection.apply(request, case.provider, case.conn)
    assert {k.lower(): v for k, v in request.headers.items()} == {k.lower(): v for k, v in case.want_headers.items()}
    assert dict(request.query) == case.want_query
    assert TOKEN not in json.dumps(changed) and KEY not in json.dumps(changed)  # slot names only


@pytest.mark.invariant
@pytest.mark.parametrize("headers, query, problem", [
    ([("Authorization", "Bearer a"), ("Authorization", f"Bearer {PLACEHOLDER}")], [], "more than once"),
    ([("Authorization", f"Bearer {PLACEHOLDER}")] * 200, [], "more than once"),
    ([("Authorization", f"Bearer {PLACEHOLDER} {PLACEHOLDER}")], [], "placeholder more than once"),
    ([("Authorization", _basic(PLACEHOLDER, PLACEHOLDER))], [], "placeholder more than once"),
    ([("Authorization", f"Bearer {PLACEHOLDER}")], [], None),
])
def test_an_ambiguous_slot_is_a_conflict(headers, query, problem):
    request = tutils.treq(host="api.x.test", port=443, path="/", headers=())
    request.headers.clear()
    for name, value in headers:
        request.headers.add(name, value)
    reason = injection.conflict(request, X)
    assert (reason is None) if problem is None else (problem in reason)


def test_a_query_key_sent_twice_is_a_conflict():
    provider = _provider(**{"in": "query", "query_param": "api_key"})
    request = tutils.treq(host="api.acme.test", port=443, path="/v1?api_key=a&api_key=b", headers=())
    assert "more than once" in injection.conflict(request, provider)


def test_wire_values_cover_every_form_a_server_may_quote():
    provider = _provider(**{"in": "basic", "basic_username": "anystring"})
    conn = Connection(provider="acme", auth_type="api_key", api_key="k3y/with+chars")
    values = injection.wire_values(provider, conn)
    assert {"k3y/with+chars", "k3y%2Fwith%2Bchars", "k3y\\/with+chars", base64.b64encode(b"anystring:k3y/with+chars").decode()} <= values


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

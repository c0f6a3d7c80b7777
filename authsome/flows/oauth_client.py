"""authlib OAuth2 sessions for a provider: endpoints, client auth, trust, errors.

Everything that speaks to an authorization server goes through `session()`
so it verifies TLS the same way (certifi + system + the user's own bundles),
sends the same User-Agent, and maps OAuth errors to `AuthServerError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter

from authsome import __version__
from authsome.certs import trust
from authsome.errors import AuthServerError, LoginError, Unreachable, UsageError
from authsome.models import OAUTH_URL_FIELDS, ClientCredentials, Connection, OAuthConfig, Provider

USER_AGENT = f"authsome/{__version__}"
TIMEOUT = 30
AUTH_METHODS = {"basic": "client_secret_basic", "post": "client_secret_post", "none": "none"}


class _TrustAdapter(HTTPAdapter):
    """Verify with authsome's trust set instead of certifi alone."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = trust.ssl_context()
        return super().init_poolmanager(*args, **kwargs)


def _prepare(sess: requests.Session) -> requests.Session:
    sess.mount("https://", _TrustAdapter())
    sess.headers["User-Agent"] = USER_AGENT
    sess.headers["Accept"] = "application/json"
    return sess


def http_session() -> requests.Session:
    return _prepare(requests.Session())


def endpoints(provider: Provider, base_url: str | None = None) -> OAuthConfig:
    """The provider's OAuth endpoints with `{base_url}` filled in."""
    oauth = provider.oauth
    if oauth is None:
        raise UsageError(f"'{provider.name}' is not an OAuth2 provider.")
    base = (base_url or oauth.base_url or "").rstrip("/")
    values = {}
    for name in OAUTH_URL_FIELDS:
        url = getattr(oauth, name)
        if url and "{base_url}" in url:
            if not base:
                raise UsageError(
                    f"'{provider.name}' needs a base URL (its endpoints are templated).",
                    f"add --base-url https://your.instance to `authsome login {provider.name}`",
                )
            url = url.replace("{base_url}", base)
        values[name] = url
    return replace(oauth, **values)


def resource_param(oauth: OAuthConfig) -> dict[str, str]:
    """The RFC 8707 `resource` of authorization, token and refresh requests, when the definition names one."""
    return {"resource": oauth.resource} if oauth.resource else {}


def scope_string(oauth: OAuthConfig, scopes: tuple[str, ...] | list[str]) -> str:
    return oauth.scope_separator.join(scopes)


def auth_method(oauth: OAuthConfig, client: ClientCredentials) -> str:
    """How this client authenticates at the token endpoint (RFC 7591 registration wins)."""
    registered = client.registration.get("token_endpoint_auth_method")
    if registered in ("client_secret_basic", "client_secret_post", "none"):
        return registered
    return AUTH_METHODS[oauth.client_auth] if client.client_secret else "none"


def session(
    oauth: OAuthConfig,
    client: ClientCredentials,
    *,
    scopes: tuple[str, ...] = (),
    redirect_uri: str | None = None,
    token: dict[str, Any] | None = None,
) -> OAuth2Session:
    method = auth_method(oauth, client)
    sess = OAuth2Session(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        scope=scope_string(oauth, scopes) if scopes else None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256" if oauth.pkce else None,
        token=token,
        default_timeout=TIMEOUT,
    )
    return _prepare(sess)  # type: ignore[return-value]


@dataclass(frozen=True)
class Granted:
    """What a token response gave us, normalised at receipt."""

    access_token: str
    refresh_token: str | None
    id_token: str | None
    token_type: str | None
    expires_at: float | None
    scopes: tuple[str, ...]
    issued_at: float | None = None


def granted(token: dict[str, Any], requested: tuple[str, ...], oauth: OAuthConfig, received_at: float | None = None) -> Granted:
    if oauth.token_response_path:
        for key in oauth.token_response_path.split("."):
            nested = token.get(key) if isinstance(token, dict) else None
            token = nested if isinstance(nested, dict) else {}
    if not token.get("access_token"):
        raise LoginError("The token endpoint answered without an access token.", "check the provider definition's token_url")
    now = time.time() if received_at is None else received_at
    expires_at = None
    if token.get("expires_in") not in (None, ""):
        expires_at = now + float(token["expires_in"])
    elif token.get("expires_at"):
        expires_at = float(token["expires_at"])
    scope = token.get("scope")
    if isinstance(scope, str) and scope:
        sep = "," if ("," in scope and " " not in scope) else " "
        scopes = tuple(s for s in scope.split(sep) if s)
    elif isinstance(scope, list):
        scopes = tuple(scope)
    else:
        scopes = tuple(requested)
    return Granted(
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token"),
        id_token=token.get("id_token"),
        token_type=token.get("token_type"),
        expires_at=expires_at,
        scopes=scopes,
        issued_at=now,
    )


def account_from_id_token(id_token: str | None) -> str | None:
    """Who logged in, from an OpenID Connect ID token, for display (`whoami`, `list`).

    Not a signature check: the token came straight from the token endpoint over
    verified TLS, which OpenID Connect Core 3.1.3.7 accepts in place of one,
    and the value only labels the connection.
    """
    if not id_token or id_token.count(".") != 2:
        return None
    import base64
    import json

    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    for claim in ("email", "preferred_username", "upn", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip() and len(value) <= 256:
            return value.strip()
    return None


def new_connection(provider: Provider, name: str, g: Granted, *, flow: str, base_url: str | None) -> Connection:
    return Connection(
        provider=provider.name,
        name=name,
        account=account_from_id_token(g.id_token),
        auth_type="oauth2",
        access_token=g.access_token,
        refresh_token=g.refresh_token,
        id_token=g.id_token,
        token_type=g.token_type,
        expires_at=g.expires_at,
        issued_at=g.issued_at,
        scopes=g.scopes,
        flow=flow,
        base_url=base_url,
    )


def server_error(exc: OAuthError, hint: str | None = None, *, client: ClientCredentials | None = None,
                 secrets: tuple[str | None, ...] = ()) -> AuthServerError:
    """The server's OAuth error, its text cleared of what this request sent (a server may quote it)."""
    return AuthServerError(redact(exc.error or "error", client, secrets), redact(exc.description, client, secrets) or None, hint)


def redact(text: str | None, client: ClientCredentials | None, secrets: tuple[str | None, ...]) -> str | None:
    """`text` without the client secret, the given tokens, or the forms a request carried them in."""
    if not text:
        return text
    import base64
    from urllib.parse import quote

    from authsome.scrub import Scrubber

    values = [v for v in (*secrets, client.client_secret if client else None) if v]
    forms = set(values) | {quote(v, safe="") for v in values}
    if client is not None and client.client_secret:
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        forms |= {base64.b64encode(pair.encode()).decode(), base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()}
    return Scrubber([f for f in forms if len(f) >= 4], replacement="<redacted>").text(text)


def network_error(url: str, exc: Exception) -> Unreachable:
    host = urlsplit(url).netloc or url
    if isinstance(exc, requests.exceptions.SSLError):
        return Unreachable(f"Could not reach {host}: certificate verification failed.",
                           "check the network, or add your CA bundle to SSL_CERT_FILE", transient=False)
    return Unreachable(f"Could not reach {host}: {type(exc).__name__}.",
                       "check the network and the provider definition")


def post_form(url: str, data: dict[str, str], *, client: ClientCredentials | None = None,
              oauth: OAuthConfig | None = None, sess: requests.Session | None = None) -> requests.Response:
    """POST a form with the client authenticated as the definition says (RFC 6749 2.3)."""
    sess = sess or http_session()
    auth = None
    data = dict(data)
    if client is not None:
        method = auth_method(oauth, client) if oauth else "none"
        if method == "client_secret_basic":
            auth = requests.auth.HTTPBasicAuth(_form_quote(client.client_id), _form_quote(client.client_secret or ""))
        else:
            data["client_id"] = client.client_id
            if method == "client_secret_post":
                data["client_secret"] = client.client_secret or ""
    try:
        return sess.post(url, data=data, auth=auth, timeout=TIMEOUT)
    except requests.exceptions.RequestException as exc:
        raise network_error(url, exc) from None


def _form_quote(value: str) -> str:
    # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
    from urllib.parse import quote

    return quote(value, safe="")


def json_body(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

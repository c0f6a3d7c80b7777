"""Dynamic client registration (RFC 7591) followed by the PKCE browser flow.

The registration endpoint comes from the definition, or from discovery:
RFC 8414 metadata (path-aware: /.well-known/oauth-authorization-server/PATH)
first, then OpenID Connect discovery (PATH/.well-known/openid-configuration).
The registered client is stored encrypted and reused by later logins.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests

from authsome import __version__
from authsome.errors import AuthServerError, LoginError
from authsome.flows import oauth_client
from authsome.flows.form_server import redirect_uri as callback_uri
from authsome.flows.interaction import Interaction, LoginOptions
from authsome.flows.pkce import PkceLogin
from authsome.models import ClientCredentials, Connection, OAuthConfig, Provider
from authsome.providers import trust
from authsome.vault import Vault


def discovery_urls(issuer: str) -> list[str]:
    parts = urlsplit(issuer.rstrip("/"))
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", ""))
    oidc = urlunsplit((parts.scheme, parts.netloc, f"{path}/.well-known/openid-configuration", "", ""))
    return [rfc8414, oidc]


def discover_registration_endpoint(oauth: OAuthConfig, sess: requests.Session) -> str:
    issuer = oauth.issuer
    if not issuer:
        auth = urlsplit(oauth.authorization_url or oauth.token_url)
        issuer = f"{auth.scheme}://{auth.netloc}"
    for url in discovery_urls(issuer):
        try:
            resp = sess.get(url, timeout=oauth_client.TIMEOUT)
        except requests.exceptions.RequestException as exc:
            raise oauth_client.network_error(url, exc) from None
        if resp.status_code == 200:
            endpoint = oauth_client.json_body(resp).get("registration_endpoint")
            if endpoint:
                return endpoint
    raise LoginError(
        f"The authorization server at {urlsplit(issuer).netloc} publishes no registration endpoint.",
        "set oauth.registration_endpoint in the provider definition",
    )


def register(provider: Provider, oauth: OAuthConfig, redirect_uri: str, sess: requests.Session) -> ClientCredentials:
    endpoint = oauth.registration_endpoint or discover_registration_endpoint(oauth, sess)
    metadata = {
        "client_name": "authsome",
        "software_id": "authsome",
        "software_version": __version__,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    }
    if oauth.scopes:
        metadata["scope"] = " ".join(oauth.scopes)
    try:
        resp = sess.post(endpoint, json=metadata, timeout=oauth_client.TIMEOUT)
    except requests.exceptions.RequestException as exc:
        raise oauth_client.network_error(endpoint, exc) from None
    body = oauth_client.json_body(resp)
    if resp.status_code not in (200, 201) or not body.get("client_id"):
        raise AuthServerError(body.get("error") or f"http_{resp.status_code}", body.get("error_description"),
                              "the server refused to register a client for authsome")
    kept = {k: body[k] for k in ("registration_access_token", "registration_client_uri",
                                 "token_endpoint_auth_method", "client_secret_expires_at") if k in body}
    kept["redirect_uris"] = body.get("redirect_uris") or [redirect_uri]
    if oauth.issuer:
        kept["issuer"] = oauth.issuer  # a registration is the issuer's: never used with another server
    return ClientCredentials(
        provider=provider.name,
        client_id=body["client_id"],
        client_secret=body.get("client_secret"),
        source="dcr",
        registration=kept,
    )


def login(provider: Provider, vault: Vault, opts: LoginOptions, ui: Interaction) -> Connection:
    oauth = oauth_client.endpoints(provider, opts.base_url)
    redirect = callback_uri(opts.port)
    client = vault.get_client(provider.name)
    if client is None or (client.source == "dcr" and (
            redirect not in client.registration.get("redirect_uris", [redirect])
            or client.registration.get("issuer", oauth.issuer) != oauth.issuer)):
        client = trust.stamped(provider, register(provider, oauth, redirect, oauth_client.http_session()))
        vault.put_client(client)
        ui.notice(f"Registered authsome as an OAuth client of {provider.display_name}.")
    return PkceLogin(provider, vault, opts, ui, client=client, flow="dcr_pkce").run()

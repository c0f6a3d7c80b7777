"""Which account a login connected, for providers that name it only through their API.

OpenID Connect providers name the account in the ID token (`oauth_client.
account_from_id_token`). Others (X) declare `user_info`: an endpoint on their
own API, fetched once after login with the new access token, and the dotted
path of the name in its JSON. The token goes there only when that URL is one
of the connection's own routes, and no `!host` exception names it (a
self-hosted deployment's, for a connection made with --base-url), as under
`authsome run`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from authsome.models import Connection, Provider
from authsome.providers import deployment
from authsome.providers.routes import admitting, parse_routes

TIMEOUT = 10.0


def user_info_url(provider: Provider, conn: Connection) -> str | None:
    """The URL to ask, filled for the connection's deployment, if it is one of the connection's routes."""
    if provider.user_info is None:
        return None
    base = (conn.base_url or (provider.oauth.base_url if provider.oauth else None) or "").rstrip("/")
    url = provider.user_info[0]
    if "{base_url}" in url:
        if not base:
            return None
        url = url.replace("{base_url}", base)
    parts = urlsplit(url)
    entries = deployment.api_url_routes(provider, conn.base_url) or ()
    if parts.scheme != "https" or admitting(parse_routes(entries), parts.hostname or "", parts.port or 443,
                                            parts.path or "/") is None:
        return None
    return url


def fetch_account(provider: Provider, conn: Connection, session) -> str | None:
    """The account name from the provider's user endpoint, or None when it cannot be told."""
    url = user_info_url(provider, conn)
    if url is None or not conn.access_token:
        return None
    try:
        response = session.get(url, headers={"Authorization": f"Bearer {conn.access_token}", "Accept": "application/json"},
                               timeout=TIMEOUT, allow_redirects=False)
        if response.status_code != 200:
            return None
        value = response.json()
    except Exception:  # a name for display only: never a reason to fail the login
        return None
    for key in provider.user_info[1].split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None

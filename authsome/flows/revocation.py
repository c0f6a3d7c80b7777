"""Token revocation at the provider (RFC 7009), before a connection is deleted locally.

Revocation is best effort: a provider that is unreachable or refuses must not
keep the user from removing the local record, so failures come back as
warnings (built from names and status codes, never token values).
"""

from __future__ import annotations

from authsome.errors import AuthsomeError
from authsome.flows import oauth_client
from authsome.models import ClientCredentials, Connection, Provider


def revoke(provider: Provider, conn: Connection, client: ClientCredentials | None) -> list[str]:
    """Revoke the refresh token, then the access token. Returns warnings."""
    if provider.oauth is None or conn.auth_type != "oauth2":
        return []
    try:
        oauth = oauth_client.endpoints(provider, conn.base_url)
    except AuthsomeError as exc:
        return [exc.message]
    if not oauth.revocation_url:
        return []
    if client is None:
        return [f"no OAuth client is stored for '{provider.name}', so the tokens were not revoked at the provider"]
    warnings = []
    sess = oauth_client.http_session()
    for hint in ("refresh_token", "access_token"):
        token = getattr(conn, hint)
        if not token:
            continue
        try:
            resp = oauth_client.post_form(oauth.revocation_url, {"token": token, "token_type_hint": hint},
                                          client=client, oauth=oauth, sess=sess)
        except AuthsomeError as exc:
            warnings.append(f"revoking the {hint.replace('_', ' ')} failed: {exc.message}")
            continue
        if resp.status_code != 200:
            error = oauth_client.json_body(resp).get("error") or f"HTTP {resp.status_code}"
            warnings.append(f"the provider refused to revoke the {hint.replace('_', ' ')} ({error})")
    return warnings

"""Refresh an access token: one refresh at a time across every process sharing the home.

Refresh tokens rotate (X rotates them): using one twice gets `invalid_grant`.
So a refresh holds the connection's cross-process lock, re-reads the record,
and refreshes only if the token it was asked to replace is still the stored
one (or the stored one is about to expire). A process that waited for the
lock finds the newer token and uses it without a second refresh. A rejected
refresh token marks the connection `invalid`; it never overwrites a newer
token written by another process.
"""

from __future__ import annotations

import time

from authlib.integrations.base_client.errors import OAuthError

from authsome.errors import ConnectionInvalid, HandedToCI, LoginError, NotConnected, TokenExpired
from authsome.flows import oauth_client
from authsome.flows.clients import known_client
from authsome.models import REFRESH_LEEWAY, ClientCredentials, Connection, Provider
from authsome.providers import trust
from authsome.vault import Vault

INVALID_GRANT_REASON = "the provider rejected the refresh token (invalid_grant)"


def _login_hint(provider: Provider, name: str) -> str:
    return f"run `authsome login {provider.name}" + ("" if name == "default" else f" --connection {name}") + " --force`"


def refresh(vault: Vault, provider: Provider, name: str, *, stale_version: int | None = None,
            leeway: float = REFRESH_LEEWAY, client: ClientCredentials | None = None) -> Connection:
    """Return a connection with a usable access token, refreshing if needed.

    `stale_version`: the record version whose token the API refused (a 401);
    the refresh happens unless the stored record is already newer. Without
    it, the refresh happens only when the stored token is within `leeway`
    seconds of expiry.
    """
    def change(current: Connection | None) -> Connection | None:
        if current is None:
            raise NotConnected(provider.name, name)
        if current.exported_at is not None:
            raise HandedToCI(provider.name, name)  # its refresh token belongs to a CI bundle now
        if current.state == "invalid":
            return current
        if stale_version is not None:
            if current.version != stale_version and not current.is_expired(leeway=current.refresh_leeway(leeway)):
                return current  # another process already refreshed
        elif not current.is_expired(leeway=current.refresh_leeway(leeway)):
            return current
        if not current.refresh_token:
            raise TokenExpired(
                f"The access token of '{provider.name}' ({name}) expired and there is no refresh token.",
                _login_hint(provider, name),
            )
        return _refresh_once(provider, current, client or known_client(provider, vault))

    trust.check(vault, provider, [name])  # the refresh token and client secret go to its token endpoint
    conn = vault.update_connection(provider.name, name, change)
    assert conn is not None
    if conn.state == "invalid":
        raise ConnectionInvalid(
            f"Connection '{name}' of '{provider.name}' is invalid: {conn.state_reason or INVALID_GRANT_REASON}.",
            _login_hint(provider, name),
        )
    return conn


def _refresh_once(provider: Provider, current: Connection, client: ClientCredentials | None) -> Connection:
    oauth = oauth_client.endpoints(provider, current.base_url)
    if client is None:
        raise LoginError(
            f"No OAuth client is stored for '{provider.name}', so its token cannot be refreshed.",
            _login_hint(provider, current.name),
        )
    sess = oauth_client.session(oauth, client, token={"access_token": current.access_token,
                                                      "refresh_token": current.refresh_token,
                                                      "token_type": current.token_type or "Bearer"})
    try:
        token = sess.refresh_token(oauth.token_url, refresh_token=current.refresh_token,
                                   **oauth_client.resource_param(oauth))
    except OAuthError as exc:
        if exc.error in ("invalid_grant", "invalid_token", "unauthorized_client"):
            return current.with_changes(state="invalid", state_reason=f"the provider rejected the refresh token ({exc.error})")
        raise oauth_client.server_error(exc, _login_hint(provider, current.name), client=client,
                                        secrets=(current.refresh_token, current.access_token)) from None
    except LoginError:
        raise
    except Exception as exc:
        raise oauth_client.network_error(oauth.token_url, exc) from None
    g = oauth_client.granted(dict(token), current.scopes, oauth, received_at=time.time())
    return current.with_changes(
        access_token=g.access_token,
        # No new refresh token in the response: the old one stays valid (RFC 6749 6).
        refresh_token=g.refresh_token or current.refresh_token,
        id_token=g.id_token or current.id_token,
        token_type=g.token_type or current.token_type,
        expires_at=g.expires_at,
        issued_at=g.issued_at,
        scopes=g.scopes or current.scopes,
        state="connected",
        state_reason=None,
    )

"""Login flows and token refresh (the only users of authlib).

`login()` picks the flow module by its `--flow` name; every flow returns a
`Connection` for the caller to store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from authsome.flows.interaction import Interaction, LoginOptions
    from authsome.models import Connection, Provider
    from authsome.vault import Vault

OAUTH_FLOWS = ("pkce", "device_code", "dcr_pkce")


def login(provider: Provider, flow: str, vault: Vault, opts: LoginOptions, ui: Interaction) -> Connection:
    """`opts.base_url` must have passed `providers.deployment.check_login` (the CLI does it for every flow).

    The connection names its account: from the ID token, else from the
    definition's `user_info` endpoint (`flows.account`).
    """
    if flow == "pkce":
        from authsome.flows.pkce import PkceLogin

        conn = PkceLogin(provider, vault, opts, ui).run()
    elif flow == "device_code":
        from authsome.flows import device_code

        conn = device_code.login(provider, vault, opts, ui)
    elif flow == "dcr_pkce":
        from authsome.flows import dcr_pkce

        conn = dcr_pkce.login(provider, vault, opts, ui)
    else:
        raise ValueError(f"not an OAuth flow: {flow}")
    if conn.account is None and provider.user_info is not None:
        from authsome.flows import oauth_client
        from authsome.flows.account import fetch_account

        conn = conn.with_changes(account=fetch_account(provider, conn, oauth_client.http_session()))
    return conn

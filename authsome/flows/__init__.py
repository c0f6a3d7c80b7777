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
    """`opts.base_url` must have passed `providers.deployment.check_login` (the CLI does it for every flow)."""
    if flow == "pkce":
        from authsome.flows.pkce import PkceLogin

        return PkceLogin(provider, vault, opts, ui).run()
    if flow == "device_code":
        from authsome.flows import device_code

        return device_code.login(provider, vault, opts, ui)
    if flow == "dcr_pkce":
        from authsome.flows import dcr_pkce

        return dcr_pkce.login(provider, vault, opts, ui)
    raise ValueError(f"not an OAuth flow: {flow}")

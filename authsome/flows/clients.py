"""The OAuth client authsome logs in as: stored, from CI variables, typed in, or registered.

Client credentials are stored encrypted per provider and reused by every
later login and every refresh, until `authsome revoke PROVIDER`. A client
typed in (the form, a prompt) or taken from CI variables is stored only once
a token exchange succeeded with it (`remember`), so a mistyped client ID is
never reused; `authsome login PROVIDER --reset-client` asks again without
touching the connections.
"""

from __future__ import annotations

from authsome.envnames import env_prefix
from authsome.errors import NeedsInteraction
from authsome.flows.form_server import FormField, FormRejected
from authsome.flows.interaction import Interaction, client_from_env
from authsome.models import ClientCredentials, Provider
from authsome.providers import trust
from authsome.vault import Vault

CLIENT_ID = FormField("client_id", "Client ID")
CLIENT_SECRET = FormField("client_secret", "Client secret", secret=True, required=False,
                          hint="Leave empty for a public client (PKCE only).")


def uses_secret(provider: Provider) -> bool:
    """False for providers whose apps on a loopback redirect are public clients (Slack with PKCE)."""
    return provider.oauth is None or provider.oauth.client_auth != "none"


def client_fields(provider: Provider) -> list[FormField]:
    return [CLIENT_ID, CLIENT_SECRET] if uses_secret(provider) else [CLIENT_ID]


def known_client(provider: Provider, vault: Vault, *, use_stored: bool = True) -> ClientCredentials | None:
    """The client from `<NAME>_CLIENT_ID`/`_SECRET` when set, else the stored one (unless `use_stored` is False)."""
    from_env = client_from_env(provider.name)
    stored = vault.get_client(provider.name) if use_stored or from_env is not None else None
    if from_env is not None:
        client_id, secret = from_env
        if stored is None or (stored.client_id, stored.client_secret) != (client_id, secret):
            return ClientCredentials(provider=provider.name, client_id=client_id, client_secret=secret, source="env")
    return stored


def remember(provider: Provider, vault: Vault, client: ClientCredentials) -> None:
    """Store `client` (after a token exchange succeeded with it), unless it is the stored one already."""
    stored = vault.get_client(provider.name)
    if stored is None or (stored.client_id, stored.client_secret, stored.registration) != \
            (client.client_id, client.client_secret, client.registration):
        vault.put_client(trust.stamped(provider, client))


def reset_hint(provider: Provider) -> str:
    return f"`authsome login {provider.name} --reset-client` enters the client ID and secret again (connections stay)"


def _check_client_id(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value) or len(value) > 512:
        raise FormRejected("The client ID must be a single word without spaces.")
    return value


def client_from_form(provider: Provider, vault: Vault, values: dict[str, str], *, source: str) -> ClientCredentials:
    return ClientCredentials(  # stored by `remember` once it worked
        provider=provider.name,
        client_id=_check_client_id(values.get("client_id", "")),
        client_secret=values.get("client_secret", "").strip() or None,
        source=source,  # type: ignore[arg-type]
    )


def prompt_client(provider: Provider, vault: Vault, ui: Interaction, *, redirect_uri: str | None,
                  secret_optional: bool = True) -> ClientCredentials:
    if not ui.can_prompt():
        prefix = env_prefix(provider.name)
        raise NeedsInteraction(
            f"No OAuth client is stored for '{provider.name}' and nobody can be asked for one.",
            f"set {prefix}_CLIENT_ID (and {prefix}_CLIENT_SECRET for a confidential client)",
        )
    if redirect_uri:
        ui.notice(f"Register this redirect URI with {provider.display_name}: {redirect_uri}")
    client_id = ui.prompt("Client ID", secret=False)
    secret = ""
    if uses_secret(provider):
        secret = ui.prompt("Client secret" + (" (empty for a public client)" if secret_optional else ""), secret=True)
    try:
        return client_from_form(provider, vault, {"client_id": client_id, "client_secret": secret}, source="prompt")
    except FormRejected as exc:
        raise NeedsInteraction(str(exc), f"run `authsome login {provider.name}` again") from None

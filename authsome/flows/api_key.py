"""The API-key "flow": collect a key (and any extra fields), check, build the connection.

Where the values come from is the caller's choice (the local form, a hidden
prompt, stdin, or the environment in CI); this module only says what must
be collected, checks each value against the definition's pattern, and builds
the record. Values are never echoed back in errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from authsome.errors import LoginError
from authsome.models import Connection, Provider
from authsome.providers.patterns import MAX_INPUT, fullmatch


@dataclass(frozen=True)
class KeyField:
    name: str
    label: str
    secret: bool
    pattern: str | None
    hint: str | None
    env_var: str | None


def fields(provider: Provider) -> list[KeyField]:
    """What `authsome login` must collect for an API-key provider, key first."""
    cfg = provider.api_key
    assert cfg is not None, "an api_key provider has an api_key section"
    out = [KeyField("api_key", f"{provider.display_name} API key", True, cfg.key_pattern, cfg.key_pattern_hint, cfg.env_var)]
    out += [KeyField(f.name, f.label, f.secret, f.pattern, f.pattern_hint, f.env_var) for f in cfg.extra_fields]
    return out


def check(provider: Provider, field: KeyField, value: str) -> str:
    value = value.strip()
    if not value:
        raise LoginError(f"The {field.label} is empty.", "paste the value again")
    if any(c.isspace() for c in value):
        raise LoginError(f"The {field.label} contains whitespace.", "copy the value without spaces or line breaks")
    if len(value) > MAX_INPUT:
        raise LoginError(f"The {field.label} is longer than {MAX_INPUT} characters.", "paste only the value itself")
    if field.pattern and not fullmatch(field.pattern, value):
        raise LoginError(
            f"The {field.label} does not look like a {provider.display_name} value.",
            field.hint or f"check the value in the {provider.display_name} dashboard",
        )
    return value


def from_env(provider: Provider, env: Mapping[str, str]) -> dict[str, str] | None:
    """All values from their env_var names, or None when any is missing (CI use)."""
    found = {}
    for f in fields(provider):
        if not f.env_var or not env.get(f.env_var):
            return None
        found[f.name] = env[f.env_var]
    return found


def build_connection(provider: Provider, values: Mapping[str, str], connection: str) -> Connection:
    checked = {f.name: check(provider, f, values.get(f.name, "")) for f in fields(provider)}
    return Connection(
        provider=provider.name,
        name=connection,
        auth_type="api_key",
        api_key=checked.pop("api_key"),
        extra=checked,
        flow="api_key",
    )


def collect_with_form(provider: Provider, ui, *, port: int, timeout: float) -> dict[str, str] | None:
    """Ask for the key in the local page (masked fields); None when no browser could open it."""
    from authsome.flows.form_server import FormField, FormRejected, LoginPage

    wanted = fields(provider)

    def on_submit(values: dict[str, str]) -> None:
        for f in wanted:
            try:
                values[f.name] = check(provider, f, values.get(f.name, ""))
            except LoginError as exc:
                raise FormRejected(f"{exc.message} {exc.hint or ''}".strip()) from None
        return None

    page = LoginPage(
        port=port,
        title=f"Connect {provider.display_name}",
        intro=f"Paste your {provider.display_name} credentials. They are stored encrypted in your local vault.",
        fields=[FormField(f.name, f.label, secret=f.secret, hint=f.hint) for f in wanted],
        on_submit=on_submit,
    )
    with page:
        if not ui.open_browser(page.url):
            return None
        ui.notice(f"Opened {page.url} in the browser; waiting up to {int(timeout)} s.")
        return page.wait(timeout)

"""A changed custom definition never sends stored credentials anywhere new without the user knowing.

Custom definitions are files in the home, which the agent under `authsome
run` can write as well as the user. Each sealed record (a connection, the
OAuth client) keeps a `snapshot` of the definition it was made with: every
field that decides where its secrets go or how they travel (routes, OAuth
endpoints, credential slots, exported names), leaving out the cosmetic ones.
Records are sealed with the master key, so the snapshot cannot be forged
without it. Before a definition is used with stored credentials (`check`),
its snapshot must equal theirs; otherwise `DefinitionChanged` names the
fields and `authsome trust PROVIDER` shows the change and asks (`confirm`).

A custom definition must also be confirmed before its first credential is
stored (`require_confirmed`, at login): a file the agent planted in the home
(say `providers/openai.json` adding its own host) must not silently receive
the key of the user's next login. It is confirmed when it equals the bundled
definition of that name where it matters, or when the user confirmed it:
`authsome register` (outside `authsome run`) or `authsome trust` (on a
terminal), which store a sealed copy (`Vault.put_confirmed_definition`).

Bundled definitions are trusted as installed (whoever can change them can
change authsome itself). A record made before snapshots existed is compared
with the bundled definition of its provider, or, for a provider that has
none, takes the custom definition it is first used with.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from authsome.errors import DefinitionChanged, DefinitionUnconfirmed
from authsome.models import Provider
from authsome.vault import Vault

# Fields that never change where a credential goes.
COSMETIC = {
    (): ("$schema", "display_name", "description", "docs_url"),
    ("oauth",): ("scopes", "scope_separator"),
    ("api_key",): ("key_pattern", "key_pattern_hint"),
}
COSMETIC_EXTRA_FIELD = ("label", "pattern", "pattern_hint")


def snapshot(provider: Provider) -> dict[str, Any]:
    """The definition minus its cosmetic fields: what a stored credential's safety depends on."""
    raw = copy.deepcopy(provider.raw)
    for path, names in COSMETIC.items():
        node = raw
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            for name in names:
                node.pop(name, None)
    for extra in (raw.get("api_key") or {}).get("extra_fields", []):
        for name in COSMETIC_EXTRA_FIELD:
            extra.pop(name, None)
    return raw


def changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ (`api_url`, `oauth.token_url`)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def _records(vault: Vault, name: str, connections: list[str] | None):
    names = vault.connection_names(name) if connections is None else connections
    for conn_name in names:
        conn = vault.get_connection(name, conn_name)
        if conn is not None:
            yield f"connection '{conn_name}'", conn
    client = vault.get_client(name)
    if client is not None:
        yield "client", client


def _reference(provider: Provider, record) -> dict[str, Any] | None:
    """What the record's credentials were confirmed for: its snapshot, else the bundled definition."""
    return record.definition if record.definition is not None else _bundled_snapshot(provider.name)


def pending(vault: Vault, provider: Provider, connections: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(record, changed fields) for each record whose confirmed definition differs from this one."""
    if provider.source == "bundled":
        return []
    now = snapshot(provider)
    out = []
    for label, record in _records(vault, provider.name, connections):
        reference = _reference(provider, record)
        if reference is not None and reference != now:
            out.append((label, changes(reference, now)))
    return out


def describe(vault: Vault, provider: Provider) -> list[tuple[str, Any, Any]]:
    """(field, confirmed value, value now) for every field that changed, for the user to review."""
    now = snapshot(provider)
    out: dict[str, tuple[Any, Any]] = {}
    for _, record in _records(vault, provider.name, None):
        reference = _reference(provider, record) if provider.source != "bundled" else None
        if reference is not None and reference != now:
            for field in changes(reference, now):
                out.setdefault(field, (_get(reference, field), _get(now, field)))
    return [(field, old, new) for field, (old, new) in sorted(out.items())]


def _get(tree: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def check(vault: Vault, provider: Provider, connections: list[str] | None = None) -> None:
    """Raise DefinitionChanged unless every stored record of `provider` agrees with its definition."""
    found = pending(vault, provider, connections)
    if found:
        fields = sorted({f for _, changed in found for f in changed})
        raise DefinitionChanged(
            f"The definition of '{provider.name}' ({provider.path}) changed {', '.join(fields)} since its stored "
            f"credentials were confirmed; they are not used until you confirm the change.",
            f"review and confirm with `authsome trust {provider.name}` (on a terminal), or restore the file",
        )
    if provider.source == "custom":
        _stamp(vault, provider, only_missing=True, connections=connections)  # first use of an older record


def confirm(vault: Vault, provider: Provider) -> list[str]:
    """Record the current definition as confirmed, and in every stored record of `provider`; return their labels."""
    confirm_definition(vault, provider)
    return _stamp(vault, provider, only_missing=False)


def confirm_definition(vault: Vault, provider: Provider) -> None:
    """Confirm the definition for credentials yet to come (stored ones keep theirs until `confirm`)."""
    if provider.source == "custom" and vault.get_confirmed_definition(provider.name) != snapshot(provider):
        vault.put_confirmed_definition(provider.name, snapshot(provider))


def _bundled_snapshot(name: str) -> dict[str, Any] | None:
    from authsome.providers.registry import Registry

    registry = Registry()
    return snapshot(registry.get_bundled(name)) if registry.is_bundled(name) else None


def is_confirmed(vault: Vault, provider: Provider) -> bool:
    """True for a bundled definition, a custom one equal to the bundled one, or one the user confirmed."""
    if provider.source == "bundled":
        return True
    now = snapshot(provider)
    return now in (_bundled_snapshot(provider.name), vault.get_confirmed_definition(provider.name))


def require_confirmed(vault: Vault, provider: Provider) -> None:
    """Raise DefinitionUnconfirmed before a first credential goes to an unconfirmed custom definition."""
    if is_confirmed(vault, provider):
        return
    where = ", ".join(value for _, value in destinations(provider))
    raise DefinitionUnconfirmed(
        f"The custom definition of '{provider.name}' ({provider.path}) was never confirmed, and it would send "
        f"credentials to: {where}.",
        f"check it (`authsome inspect {provider.name}`), then confirm with `authsome trust {provider.name}` on a "
        f"terminal or `authsome register FILE --force`; or delete the file",
    )


def destinations(provider: Provider) -> list[tuple[str, str]]:
    """(field, value) for everything that receives a credential: routes, OAuth endpoints, the user endpoint."""
    out = [("api_url", r) for r in provider.api_url if not r.startswith("!")]
    out += [("self_hosted_api_url", r) for r in provider.self_hosted_api_url]
    if provider.oauth is not None:
        for name in ("token_url", "authorization_url", "revocation_url", "device_authorization_url",
                     "registration_endpoint", "issuer"):
            if value := getattr(provider.oauth, name):
                out.append((f"oauth.{name}", value))
    if provider.user_info is not None:
        out.append(("user_info.url", provider.user_info[0]))
    return out


def differences(provider: Provider) -> list[tuple[str, Any, Any]]:
    """(field, bundled value, value now) where a custom definition differs from the bundled one of its name."""
    bundled = _bundled_snapshot(provider.name)
    if bundled is None:
        return []
    now = snapshot(provider)
    return [(field, _get(bundled, field), _get(now, field)) for field in changes(bundled, now)]


def stamped(provider: Provider, record):
    """`record` (a Connection or ClientCredentials about to be stored) with the definition it is made for."""
    return dataclasses.replace(record, definition=snapshot(provider))


def _stamp(vault: Vault, provider: Provider, *, only_missing: bool, connections: list[str] | None = None) -> list[str]:
    now = snapshot(provider)

    def needs(record) -> bool:
        return record.definition != now and not (only_missing and record.definition is not None)

    done = []
    for conn_name in vault.connection_names(provider.name) if connections is None else connections:
        def change(current):
            if current is None or not needs(current):
                return current
            done.append(f"connection '{conn_name}'")
            return current.with_changes(definition=now)

        vault.update_connection(provider.name, conn_name, change)
    client = vault.get_client(provider.name)
    if client is not None and needs(client):
        vault.put_client(stamped(provider, client))
        done.append("client")
    return done

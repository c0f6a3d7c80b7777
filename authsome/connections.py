"""Operations on stored connections: look up, summarise, export, remove.

The service layer between the CLI and the core: it knows providers and the
vault, never the terminal. Functions take the registry and the vault so tests
can hand in their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authsome import exports
from authsome.errors import ConnectionInvalid, HandedToCI, NoDefaultConnection, NotConnected, ProviderInvalid, TokenExpired
from authsome.models import Connection, Provider
from authsome.providers import Registry
from authsome.vault import ConnectionEntry, Vault, check_connection_name

DEFAULT = "default"


@dataclass(frozen=True)
class ProviderSummary:
    provider: Provider
    connections: list[ConnectionEntry]
    problem: ProviderInvalid | None = None

    def to_dict(self) -> dict[str, Any]:
        p = self.provider
        return {
            "name": p.name,
            "display_name": p.display_name,
            "source": "custom (invalid)" if self.problem else p.source,
            "auth_type": p.auth_type,
            "flow": p.flow,
            "hosts": list(p.api_url),
            "status": self.status,
            "connections": [_entry_dict(e, p) for e in self.connections],
            **({"problem": self.problem.to_dict()} if self.problem else {}),
        }

    @property
    def status(self) -> str:
        states = [e.connection.status() if e.connection else "error" for e in self.connections]
        for s in ("connected", "expired", "invalid", "error"):
            if s in states:
                return s
        return "not_connected"


def _entry_dict(entry: ConnectionEntry, provider: Provider) -> dict[str, Any]:
    if entry.connection is None:
        assert entry.error is not None
        return {"name": entry.name, "status": "error", "error": entry.error.to_dict()}
    c = entry.connection
    return {
        "name": c.name,
        "status": c.status(),
        "expires_at": c.expires_at,
        "scopes": list(c.scopes),
        "account": c.account,
    }


def summaries(registry: Registry, vault: Vault) -> tuple[list[ProviderSummary], list[ProviderInvalid]]:
    """One summary per known provider, plus the definition files that failed."""
    catalog = registry.catalog()
    by_provider: dict[str, list[ConnectionEntry]] = {}
    for entry in vault.list_connections():
        by_provider.setdefault(entry.provider, []).append(entry)
    problems_by_name = {
        p.path.rsplit("/", 1)[-1][:-5]: p for p in catalog.problems if p.path.endswith(".json")
    }
    out = []
    for name, provider in sorted(catalog.providers.items()):
        problem = problems_by_name.get(name) if name in catalog.broken else None
        out.append(ProviderSummary(provider, by_provider.get(name, []), problem))
    return out, catalog.problems


def connection_name(vault: Vault, provider: str, given: str | None) -> str:
    """The connection a command means: the one named, else the provider's default."""
    return check_connection_name(given) if given else vault.default_connection(provider)


def missing(vault: Vault, provider: str, connection: str) -> NotConnected:
    """The error for a connection that does not exist, naming the ones that do when the default is missing."""
    others = vault.connection_names(provider)
    if connection == vault.default_connection(provider) and others and connection not in others:
        return NoDefaultConnection(provider, others)
    return NotConnected(provider, connection)


def find(vault: Vault, provider: str, connection: str = DEFAULT) -> Connection | None:
    check_connection_name(connection)
    return vault.get_connection(provider, connection)


def require(vault: Vault, provider: Provider, connection: str = DEFAULT) -> Connection:
    """A usable connection, or the error that says how to get one.

    An invalid connection, or an expired token that cannot be refreshed, is
    an error too.
    """
    conn = find(vault, provider.name, connection)
    if conn is None:
        raise missing(vault, provider.name, connection)
    kept_here(conn)
    login = f"authsome login {provider.name}" + ("" if connection == DEFAULT else f" --connection {connection}")
    status = conn.status()
    if status == "invalid":
        raise ConnectionInvalid(
            f"Connection '{connection}' of '{provider.name}' is invalid: {conn.state_reason or 'the provider rejected it'}.",
            f"run `{login} --force`",
        )
    if status == "expired":
        raise TokenExpired(
            f"The access token of '{provider.name}' ({connection}) expired and there is no refresh token.",
            f"run `{login} --force`",
        )
    return conn


def kept_here(conn: Connection) -> Connection:
    """`conn`, unless it was handed to CI: its tokens are the job's now, not this machine's to use or show."""
    if conn.exported_at is not None:
        raise HandedToCI(conn.provider, conn.name)
    return conn


def export_values(registry: Registry, vault: Vault, provider: str | None, connection: str | None) -> dict[str, str]:
    """Real values to export: one provider, or the default (or named) connection of every provider."""
    if provider:
        prov = registry.get(provider)
        conn = require(vault, prov, connection_name(vault, prov.name, connection))
        return exports.real_values(prov, fresh(vault, conn, prov))
    values: dict[str, str] = {}
    for entry in vault.list_connections():
        if entry.name != (connection or vault.default_connection(entry.provider)) or entry.connection is None:
            continue
        prov = registry.get(entry.provider)
        if entry.connection.status() == "connected" and entry.connection.exported_at is None:
            values.update(exports.real_values(prov, fresh(vault, entry.connection, prov)))
    return values


def fresh(vault: Vault, conn: Connection, provider: Provider) -> Connection:
    """An exported access token must still work for a while: refresh one that is (nearly) dead."""
    if conn.should_refresh():
        from authsome.flows.refresh import refresh

        return refresh(vault, provider, conn.name)
    return conn


def logout(vault: Vault, provider: Provider, connection: str = DEFAULT) -> tuple[bool, list[str]]:
    """Revoke at the provider where it can, then delete locally. Returns (removed, warnings).

    The record is read first: an unreadable record raises (and stays on disk)
    rather than being deleted without its tokens ever being revoked.
    """
    conn = find(vault, provider.name, connection)
    if conn is None:
        return False, []
    warnings = _revoke_remote(vault, provider, conn)
    return vault.delete_connection(provider.name, connection), warnings


def revoke_all(vault: Vault, provider: Provider | None, name: str) -> tuple[list[str], bool, list[str]]:
    """Log out of every connection and delete the stored client credentials."""
    removed, warnings = [], []
    for conn_name in vault.connection_names(name):
        conn = vault.get_connection(name, conn_name)
        if conn is not None and provider is not None:
            warnings += _revoke_remote(vault, provider, conn)
        if vault.delete_connection(name, conn_name):
            removed.append(conn_name)
    vault.set_default_connection(name, DEFAULT)
    return removed, vault.delete_client(name), warnings


def _revoke_remote(vault: Vault, provider: Provider, conn: Connection) -> list[str]:
    if provider.oauth is None or not provider.oauth.revocation_url or conn.auth_type != "oauth2":
        return []
    from authsome.flows.revocation import revoke
    from authsome.providers import trust

    if trust.pending(vault, provider, [conn.name]):
        return [f"not revoked at {provider.display_name}: the definition changed where tokens go "
                f"(`authsome trust {provider.name}`); deleted here only"]

    return revoke(provider, conn, vault.get_client(provider.name))

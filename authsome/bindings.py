"""Which connection serves which hosts in a run, and its current credential.

A `Binding` ties one provider and one of its connections to the provider's
routes. The proxy's addons build the same table from the same two options
(the home and the chosen connections), so they agree without sharing objects.
`CredentialSource` keeps the decrypted record in memory and re-reads the
vault only when the record changed (another process refreshed it).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from authsome.errors import HandedToCI, NotConnected, StoreUnavailable, UsageError
from authsome.models import Connection, Provider
from authsome.providers import Registry, deployment, trust
from authsome.providers.routes import (
    Route,
    admitting,
    canonical_path,
    normalize_host,
    overlap,
    parse_routes,
    path_names_endpoint,
    specificity,
)
from authsome.vault import Vault
from authsome.vault.records import split_id


@dataclass(frozen=True)
class Binding:
    provider: Provider
    connection: str
    routes: tuple[Route, ...]  # where the credential may go (`!host` exceptions are in `excluded`)
    base_url: str | None = None  # the self-hosted deployment the connection was made for
    excluded: tuple[Route, ...] = ()
    chosen: bool = False  # named with --connection (wins over an overlapping provider taken by default)

    @property
    def key(self) -> str:
        return f"{self.provider.name}/{self.connection}"

    def route_for_host(self, host: str, port: int) -> Route | None:
        """The most specific route that admits host:port, unless an exception names it."""
        return admitting(self.routes + self.excluded, host, port)

    def route_for(self, host: str, port: int, path: str) -> Route | None:
        if self.is_oauth_endpoint(host, port, path):
            return None
        return admitting(self.routes + self.excluded, host, port, path)

    def match_host(self, host: str, port: int) -> bool:
        return self.route_for_host(host, port) is not None

    def is_oauth_endpoint(self, host: str, port: int, path: str) -> bool:
        """A request that may reach the provider's own token/revocation/device/registration endpoint.

        Several providers serve those on the API host (Dropbox, HubSpot, Notion,
        Salesforce); a child doing its own OAuth exchange there must not get
        our token added. Paths are compared the way a lenient server reads them.
        """
        host = normalize_host(host)
        return any(h == host and p == port and path_names_endpoint(ep, path) for h, p, ep in self._oauth_endpoints)

    @functools.cached_property
    def _oauth_endpoints(self) -> frozenset[tuple[str, int, str]]:
        oauth = self.provider.oauth
        if oauth is None:
            return frozenset()
        base = (self.base_url or oauth.base_url or "").rstrip("/")
        out = set()
        for url in (oauth.token_url, oauth.revocation_url, oauth.device_authorization_url,
                    oauth.registration_endpoint, oauth.authorization_url):
            if not url or ("{base_url}" in url and not base):
                continue
            parts = urlsplit(url.replace("{base_url}", base))
            if parts.hostname:
                out.add((normalize_host(parts.hostname), parts.port or 443, canonical_path(parts.path)))
        return frozenset(out)


def parse_selection(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["x=work", "github=default"]` -> {"x": "work", "github": "default"}."""
    out: dict[str, str] = {}
    for item in items:
        provider, sep, name = item.partition("=")
        provider, name = provider.strip(), name.strip()
        if not sep or not provider or not name:
            raise UsageError(f"'{item}' is not PROVIDER=CONNECTION.", "for example --connection x=work")
        if provider in out and out[provider] != name:
            raise UsageError(f"Two connections chosen for '{provider}'.", "give --connection once per provider")
        out[provider] = name
    return out


def load(vault: Vault, registry: Registry, selection: dict[str, str], *, warn=None) -> list[Binding]:
    """Bindings for every provider with a usable connection (chosen, or `default`).

    A provider named in `selection` must have that connection; other
    providers take part with their default connection (`Vault.default_connection`)
    when it exists. Where two
    bindings route the same requests, the more specific route wins per
    request (an exact host over a pattern); a chosen binding wins over one
    taken by default (`warn` hears which routes the other one lost); two
    equally specific bindings of equal standing are refused.
    """
    chosen = dict(selection)
    # MCP servers take part even without a connection: their requests then get a clear error
    # from the proxy, never the server's 401 that would start the client's own login.
    mcp_servers = set(registry.mcp_servers()) | set(_stored_mcp_servers(registry, vault))
    names = set(vault.providers_with_records()) | set(chosen) | mcp_servers
    bindings: list[Binding] = []
    unconnected: list[Binding] = []
    for name in sorted(names):
        conn_name = chosen.get(name) or vault.default_connection(name)
        if name in chosen:
            provider = _provider(registry, vault, name)
            if vault.get_connection(name, conn_name) is None:
                raise NotConnected(name, conn_name)
        else:
            existing = vault.connection_names(name)
            if conn_name not in existing and name in mcp_servers:
                provider = _provider(registry, vault, name)
                # Only one the user added (`mcp add` confirms it): a file the agent planted routes nothing.
                if trust.is_confirmed(vault, provider):
                    unconnected.append(_binding(vault, provider, conn_name))
                continue
            if conn_name not in existing:
                if existing and warn is not None:
                    warn(f"'{name}' has connections {', '.join(existing)} but no default, so this run does not use it; "
                         f"choose one with --connection {name}={existing[0]}, or `authsome default {name} {existing[0]}`")
                continue
            try:
                provider = _provider(registry, vault, name)
            except Exception:
                continue  # records of a provider whose definition is gone: not part of the run
        trust.check(vault, provider, [conn_name])
        record = vault.get_connection(name, conn_name)
        if record is not None and record.exported_at is not None:
            if name in chosen:
                raise HandedToCI(name, conn_name)
            if warn is not None:
                warn(f"{name}/{conn_name} was handed to CI (`authsome ci export`), so this run does not use it")
            continue
        bindings.append(_binding(vault, provider, conn_name, chosen=name in chosen))
    settled = _settle_overlaps(bindings, warn or (lambda message: None))
    # An MCP server without a connection only answers for itself: never for routes a connection serves.
    taken = [r for b in settled for r in b.routes]
    return settled + [b for b in unconnected if not any(overlap(r, t) for r in b.routes for t in taken)]


def _provider(registry: Registry, vault: Vault, name: str) -> Provider:
    """The definition of `name`: this home's, else (a shared store) the one confirmed on the machine that added it.

    The confirmed copy is sealed with the master key, so it is the user's, as a confirmed file is.
    """
    from authsome.errors import ProviderNotFound
    from authsome.providers import schema

    try:
        return registry.get(name)
    except ProviderNotFound:
        raw = vault.get_confirmed_definition(name) if vault.records.shared else None
        if not isinstance(raw, dict):
            raise
        # The confirmed copy leaves out what never decides where a credential goes (the display name).
        return schema.build_provider({"display_name": name, **raw}, source="custom", path=None)


def _stored_mcp_servers(registry: Registry, vault: Vault) -> list[str]:
    """MCP servers another machine of the shared store added (their definitions are confirmed in it)."""
    if not vault.records.shared:
        return []
    out = []
    for kind, name, _ in map(split_id, vault.record_ids()):
        if kind == "definition" and not registry.user_file(name).exists() and not registry.is_bundled(name):
            raw = vault.get_confirmed_definition(name)
            if isinstance(raw, dict) and raw.get("mcp"):
                out.append(name)
    return out


def _binding(vault: Vault, provider: Provider, name: str, *, chosen: bool = False) -> Binding:
    """The connection's routes: the default deployment's, or its self-hosted instance's."""
    base_url = None
    if deployment.is_templated(provider):
        conn = vault.get_connection(provider.name, name)
        base_url = conn.base_url if conn is not None else None
    entries = deployment.api_url_routes(provider, base_url)
    if entries is None:
        raise UsageError(f"Connection '{name}' of '{provider.name}' is for {base_url}, and the definition does not say "
                         "which hosts serve that instance's API.", deployment.missing_routes_hint(provider))
    routes = parse_routes(entries)
    return Binding(provider, name, tuple(r for r in routes if not r.exclude),
                   base_url=None if deployment.is_default(provider, base_url) else base_url,
                   excluded=tuple(r for r in routes if r.exclude), chosen=chosen)


def _settle_overlaps(bindings: list[Binding], warn) -> list[Binding]:
    """Resolve routes two bindings share with equal specificity: the chosen one keeps them."""
    lost: dict[int, list[Route]] = {}
    for i, a in enumerate(bindings):
        for j in range(i + 1, len(bindings)):
            b = bindings[j]
            for ra in a.routes:
                for rb in b.routes:
                    if not overlap(ra, rb) or specificity(ra) != specificity(rb):
                        continue  # disjoint, or the more specific route wins each request
                    if a.chosen == b.chosen:
                        raise UsageError(
                            f"{ra.text} of '{a.provider.name}' and {rb.text} of '{b.provider.name}' route the same requests.",
                            f"choose one with --connection {a.provider.name}={a.connection} "
                            f"(or {b.provider.name}={b.connection})",
                        )
                    winner, (k, route) = (a, (j, rb)) if a.chosen else (b, (i, ra))
                    if route not in lost.setdefault(k, []):
                        lost[k].append(route)
                        warn(f"{route.text}: '{winner.provider.name}' (chosen with --connection) gets these requests "
                             f"in this run, not '{bindings[k].provider.name}'")
    out = [replace(b, routes=tuple(r for r in b.routes if r not in lost.get(i, ()))) for i, b in enumerate(bindings)]
    return [b for b in out if b.routes]


def find(bindings: list[Binding], host: str, port: int, path: str | None = None) -> Binding | None:
    """The binding whose most specific route admits the request (or the host, without a path)."""
    best: tuple[tuple[int, int], Binding] | None = None
    for b in bindings:
        route = b.route_for(host, port, path) if path is not None else b.route_for_host(host, port)
        if route is not None and (best is None or specificity(route) > best[0]):
            best = (specificity(route), b)
    return best[1] if best else None


@dataclass
class CredentialSource:
    """The current record of one connection, re-read only when the vault says it changed."""

    vault: Vault
    provider: str
    connection: str
    _seen: tuple[object, Connection] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _stamp(self) -> object:
        stamp = self.vault.stamp(self.provider, self.connection)
        if stamp is None:
            raise NotConnected(self.provider, self.connection)
        return stamp

    def unchanged(self) -> Connection | None:
        """The record read last, if it has not changed since (a stat, or a look at the store's versions)."""
        stamp = self._stamp()
        seen = self._seen  # (stamp, record), replaced whole by `current`: never one without the other
        return seen[1] if seen is not None and seen[0] == stamp else None

    def held(self) -> Connection | None:
        """The record read last, changed since or not (no I/O)."""
        seen = self._seen
        return seen[1] if seen is not None else None

    def current(self) -> Connection:
        stamp = self._stamp()
        with self._lock:
            if self._seen is None or self._seen[0] != stamp:
                try:
                    record = self.vault.get_connection(self.provider, self.connection)
                except StoreUnavailable:
                    if self._seen is not None and not self._seen[1].is_expired():
                        return self._seen[1]  # the shared store is away: the token held works until it expires
                    raise
                if record is None:
                    raise NotConnected(self.provider, self.connection)
                self._seen = (stamp, record)
            return self._seen[1]

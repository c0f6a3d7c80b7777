"""Which connection serves which hosts in a run, and its current credential.

A `Binding` ties one provider and one of its connections to the provider's
routes. The proxy's addons build the same table from the same two options
(the home and the chosen connections), so they agree without sharing objects.
`CredentialSource` keeps the decrypted record in memory and re-reads the
vault only when the record's file changed (another process refreshed it).
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from authsome.errors import NotConnected, UsageError
from authsome.models import Connection, Provider
from authsome.providers import Registry, deployment
from authsome.providers.routes import Route, normalize_host, parse_routes
from authsome.vault import Vault


@dataclass(frozen=True)
class Binding:
    provider: Provider
    connection: str
    routes: tuple[Route, ...]
    base_url: str | None = None  # the self-hosted deployment the connection was made for

    @property
    def key(self) -> str:
        return f"{self.provider.name}/{self.connection}"

    def match_host(self, host: str, port: int) -> bool:
        return any(r.matches_host(host, port) for r in self.routes)

    def match(self, host: str, port: int, path: str) -> bool:
        return any(r.matches(host, port, path) for r in self.routes) and not self.is_oauth_endpoint(host, port, path)

    def is_oauth_endpoint(self, host: str, port: int, path: str) -> bool:
        """A request to the provider's own token/revocation/device/registration endpoint.

        Several providers serve those on the API host (Dropbox, HubSpot, Notion,
        Salesforce); a child doing its own OAuth exchange there must not get
        our token added.
        """
        return (normalize_host(host), port, path.split("?", 1)[0].rstrip("/")) in self._oauth_endpoints

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
                out.add((normalize_host(parts.hostname), parts.port or 443, parts.path.rstrip("/")))
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


def load(vault: Vault, registry: Registry, selection: dict[str, str]) -> list[Binding]:
    """Bindings for every provider with a usable connection (chosen, or `default`).

    A provider named in `selection` must have that connection; other
    providers take part when their `default` connection exists. Two
    bindings may not claim the same host: that would make routing ambiguous.
    """
    chosen = dict(selection)
    names = set(vault.providers_with_records()) | set(chosen)
    bindings: list[Binding] = []
    for name in sorted(names):
        conn_name = chosen.get(name, "default")
        if name in chosen:
            provider = registry.get(name)
            if vault.get_connection(name, conn_name) is None:
                raise NotConnected(name, conn_name)
        else:
            if conn_name not in vault.connection_names(name):
                continue
            try:
                provider = registry.get(name)
            except Exception:
                continue  # records of a provider whose definition is gone: not part of the run
        bindings.append(_binding(vault, provider, conn_name))
    _check_overlaps(bindings)
    return bindings


def _binding(vault: Vault, provider: Provider, name: str) -> Binding:
    """The connection's routes: the default deployment's, or its self-hosted instance's."""
    base_url = None
    if deployment.is_templated(provider):
        conn = vault.get_connection(provider.name, name)
        base_url = conn.base_url if conn is not None else None
    entries = deployment.api_url_routes(provider, base_url)
    if entries is None:
        raise UsageError(f"Connection '{name}' of '{provider.name}' is for {base_url}, and the definition does not say "
                         "which hosts serve that instance's API.", deployment.missing_routes_hint(provider))
    return Binding(provider, name, parse_routes(entries), base_url=None if deployment.is_default(provider, base_url) else base_url)


def _check_overlaps(bindings: list[Binding]) -> None:
    seen: dict[tuple[str, int, str], str] = {}
    for b in bindings:
        for r in b.routes:
            if r.host is None:
                continue
            key = (r.host, r.port, r.path_prefix)
            if key in seen and seen[key] != b.provider.name:
                raise UsageError(
                    f"{r.host} is routed by both '{seen[key]}' and '{b.provider.name}'.",
                    "choose one with --connection, or remove the host from one definition",
                )
            seen[key] = b.provider.name


def find(bindings: list[Binding], host: str, port: int, path: str | None = None) -> Binding | None:
    for b in bindings:
        if (b.match(host, port, path) if path is not None else b.match_host(host, port)):
            return b
    return None


@dataclass
class CredentialSource:
    """The current record of one connection, re-read only when its file changes."""

    vault: Vault
    provider: str
    connection: str
    _stamp: tuple[int, int, int] | None = None
    _record: Connection | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def path(self) -> Path:
        return self.vault.connection_path(self.provider, self.connection)

    def current(self) -> Connection:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            raise NotConnected(self.provider, self.connection) from None
        with self._lock:
            if stamp != self._stamp or self._record is None:
                record = self.vault.get_connection(self.provider, self.connection)
                if record is None:
                    raise NotConnected(self.provider, self.connection)
                self._record, self._stamp = record, stamp
            return self._record

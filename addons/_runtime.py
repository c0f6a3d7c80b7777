"""What every authsome addon reads from its options: the home, the bindings, the credentials.

Addons never reach into each other. Each one declares the shared options
(only those not declared yet, so loading several addon files into one
stock mitmproxy never resets a value) and asks `runtime()` for the
state those options describe; equal options give the same `Runtime`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from authsome import bindings as bindings_mod
from authsome import injection
from authsome.bindings import Binding, CredentialSource
from authsome.providers import Registry
from authsome.vault import Vault

log = logging.getLogger("authsome.proxy")

# flow.metadata key under which the addons record their decisions (never secrets).
META = injection.FLOW_META


def declare(loader) -> None:
    """Declare the options every authsome addon reads, unless already declared."""
    options = loader.master.options
    shared = [
        ("authsome_home", str, "", "authsome home directory (default: $AUTHSOME_HOME or ~/.authsome)"),
        ("authsome_connections", Sequence[str], [],
         "PROVIDER=CONNECTION pairs to serve; providers not named use their 'default' connection"),
        ("authsome_resolve", Sequence[str], [],
         "HOST:PORT:ADDR:PORT entries: connect to ADDR:PORT for HOST:PORT, keeping the name (like curl --resolve)"),
        ("authsome_refresh_leeway", int, 60, "refresh an access token this many seconds before it expires"),
    ]
    for name, typespec, default, help_text in shared:
        if name not in options:
            loader.add_option(name, typespec, default, help_text)


@dataclass
class Runtime:
    home: str
    vault: Vault
    bindings: list[Binding]
    sources: dict[str, CredentialSource] = field(default_factory=dict)
    refresh_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def binding_for(self, key: str) -> Binding | None:
        return next((b for b in self.bindings if b.key == key), None)

    async def refresh(self, binding: Binding, *, leeway: float, stale_version: int | None = None):
        """Refresh off the event loop, one refresh per connection at a time in this process.

        Both the early refresh (Inject) and the 401 retry (Refresh) come here,
        so they share one lock; across processes the vault's lock takes over.
        """
        from authsome.flows.refresh import refresh

        lock = self.refresh_locks.setdefault(binding.key, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(refresh, self.vault, binding.provider, binding.connection,
                                           stale_version=stale_version, leeway=leeway)

    def source(self, binding: Binding) -> CredentialSource:
        if binding.key not in self.sources:
            self.sources[binding.key] = CredentialSource(self.vault, binding.provider.name, binding.connection)
        return self.sources[binding.key]


@functools.lru_cache(maxsize=4)
def _runtime(home: str, connections: tuple[str, ...]) -> Runtime:
    from pathlib import Path

    from authsome import paths

    root = Path(home).expanduser() if home else paths.home()
    vault = Vault(root / "vault")
    registry = Registry(user_dir=root / "providers")
    selection = bindings_mod.parse_selection(list(connections))
    return Runtime(str(root), vault, bindings_mod.load(vault, registry, selection))


def runtime(options) -> Runtime:
    home = options.authsome_home or os.environ.get("AUTHSOME_HOME", "")
    return _runtime(home, tuple(options.authsome_connections))

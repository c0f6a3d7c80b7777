"""What every authsome addon reads from its options: the home, the bindings, the credentials.

Addons never reach into each other. Each one declares the shared options
(only those not declared yet, so loading several addon files into one
stock mitmproxy never resets a value) and asks `runtime()` for the
state those options describe; equal options give the same `Runtime`.
`Runtime.send_with_credential` is the one way a credential enters a
request: at the wire (`_wire`), after every name and the path were checked
against the connection the bytes go to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from authsome import authority, injection
from authsome import bindings as bindings_mod
from authsome.bindings import Binding, CredentialSource
from authsome.models import Connection
from authsome.providers import Registry
from authsome.providers.routes import memo_short, normalize_host
from authsome.vault import Vault

log = logging.getLogger("authsome.proxy")

# flow.metadata key under which the addons record their decisions (never secrets).
META = injection.FLOW_META
INJECTED_MARK = ":key:"  # flow.marked of a request that left with a credential (a key in the flow list)
STORE_RETRY = 5.0  # seconds a refresh is not tried again after the shared store could not be reached
CONNECT_WAIT = 5.0  # seconds a proxy with a shared store waits at start until it follows other machines' writes


def declare(loader) -> None:
    """Declare the options every authsome addon reads, unless already declared."""
    options = loader.master.options
    shared = [
        ("authsome_home", str, "", "authsome home directory (default: $AUTHSOME_HOME or ~/.authsome)"),
        ("authsome_connections", Sequence[str], [],
         "PROVIDER=CONNECTION pairs to serve; providers not named use their 'default' connection"),
        ("authsome_resolve", Sequence[str], [],
         "HOST:PORT:ADDR:PORT entries: connect to ADDR:PORT for HOST:PORT, keeping the name (like curl --resolve)"),
        ("authsome_refresh_leeway", int, 60,
         "refresh an access token this many seconds before it expires (at most a tenth of its lifetime)"),
    ]
    for name, typespec, default, help_text in shared:
        if name not in options:
            loader.add_option(name, typespec, default, help_text)
    if _FORGET not in options.__dict__:
        def forget(updated, options=options) -> None:
            options.__dict__.pop(_MEMO, None)

        options.__dict__[_FORGET] = forget  # kept here: the signal holds its receivers weakly
        options.changed.connect(forget)


@dataclass
class Runtime:
    home: str
    vault: Vault
    bindings: list[Binding]
    sources: dict[str, CredentialSource] = field(default_factory=dict)
    refresh_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # flow -> every secret value written on the wire for it (all attempts), for Scrub.
    written: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)
    values_cache: dict = field(default_factory=dict)  # binding key -> (record identity, its wire values)
    store_failures: dict = field(default_factory=dict)  # binding key -> (retry after, the store's error)

    def __post_init__(self) -> None:
        # binding_at(host, port, path=None): `bindings.find` over these bindings, which never change.
        # Asked per request and per connection, so kept (short names and paths only: the child chooses them).
        self.binding_at = memo_short(1024)(functools.partial(bindings_mod.find, self.bindings))

    def binding_for(self, key: str | None) -> Binding | None:
        return next((b for b in self.bindings if b.key == key), None)

    async def refresh(self, binding: Binding, *, leeway: float, stale_version: int | None = None):
        """Refresh off the event loop, one refresh per connection at a time in this process.

        Both the early refresh (Inject) and the 401 retry (Refresh) come here,
        so they share one lock; across processes the vault's lock takes over.
        """
        from authsome.errors import StoreUnavailable
        from authsome.flows.refresh import refresh

        lock = self.refresh_locks.setdefault(binding.key, asyncio.Lock())
        async with lock:
            failed = self.store_failures.get(binding.key)
            if failed is not None and time.monotonic() < failed[0]:
                raise failed[1]  # the store was away a moment ago: requests do not each wait to find out again
            try:
                return await asyncio.to_thread(refresh, self.vault, binding.provider, binding.connection,
                                               stale_version=stale_version, leeway=leeway)
            except StoreUnavailable as exc:
                self.store_failures[binding.key] = (time.monotonic() + STORE_RETRY, exc)
                raise

    def source(self, binding: Binding) -> CredentialSource:
        if binding.key not in self.sources:
            self.sources[binding.key] = CredentialSource(self.vault, binding.provider.name, binding.connection)
        return self.sources[binding.key]

    def send_with_credential(self, flow, binding: Binding, conn: Connection, *, record_into=None) -> None:
        """Have `flow.request` leave with the connection's credential, if it still may when it leaves.

        The flow keeps the request as the child sent it; only the bytes sent
        upstream carry the credential (`_wire`). `record_into`: the flow whose
        response the child will see (the original of a re-send).
        """
        from authsome.addons import _wire

        meta = flow.metadata.setdefault(META, {})
        target = target_of(flow)
        written = [self.written.setdefault(f, set()) for f in {flow, record_into} - {None}]
        # Weakly: `_wire` keeps `rewrite` for as long as the request lives, and a strong reference
        # back to the flow from there would keep every flow of the run alive.
        flow_ref = weakref.ref(flow)

        def rewrite(server, request):
            problem = departure_problem(server, request, target, binding) if target else "it is in no CONNECT tunnel"
            if problem:
                meta["inject_error"], meta["injected"] = "changed", []
                log.warning("%s: nothing injected into %s %s: %s", binding.key, request.method, request.pretty_url, problem)
                return request
            outgoing = _wire.head_copy(request)
            meta["injected"] = injection.apply(outgoing, binding.provider, conn)
            if meta["injected"] and (shown := flow_ref()) is not None:  # for viewers: connection, slots, never a value
                shown.marked = INJECTED_MARK
                shown.comment = f"authsome: {binding.key} injected ({', '.join(meta['injected'])})"
            meta["record_version"] = conn.version  # lets a 401 retry tell whether it was refreshed since
            sent = self._current_values(binding, conn)
            for values in written:  # the re-send's response and the original's are both scrubbed of it
                values.update(sent)
            return outgoing

        _wire.on_send(flow.request, rewrite)

    def secrets_for(self, flow) -> frozenset[str]:
        """What must never come back to the child on this flow: what was sent, and the current secrets."""
        out = frozenset(self.written.get(flow, ()))
        binding = self.binding_for((flow.metadata.get(META) or {}).get("tunnel_binding"))
        if binding is not None:
            source = self.source(binding)
            try:
                # On the event loop: never a query to a shared store here, only what is held.
                conn = source.unchanged() or (source.held() if self.vault.records.shared else source.current())
                if conn is not None:
                    out |= self._current_values(binding, conn)
            except Exception:  # an unreadable record: what was sent is still scrubbed
                pass
        return out

    def _current_values(self, binding: Binding, conn: Connection) -> frozenset[str]:
        key = (binding.key, conn.version, conn.access_token, conn.api_key)
        cached = self.values_cache.get(binding.key)
        if cached is None or cached[0] != key:
            cached = (key, frozenset(injection.wire_values(binding.provider, conn)))
            self.values_cache[binding.key] = cached
        return cached[1]


@functools.lru_cache(maxsize=4)
def _runtime(home: str, connections: tuple[str, ...]) -> Runtime:
    from pathlib import Path

    from authsome import paths

    root = Path(home).expanduser() if home else paths.home()
    vault = Vault.for_home(root)
    registry = Registry(user_dir=root / "providers")
    selection = bindings_mod.parse_selection(list(connections))
    return _held(Runtime(str(root), vault, bindings_mod.load(vault, registry, selection)))


_preloaded: dict[tuple[str, tuple[str, ...]], Runtime] = {}


def preload(home: str, connections: Sequence[str], vault: Vault, bindings: Sequence[Binding]) -> None:
    """Serve these bindings (checked by `authsome run` before the command started) for these options.

    The command starts while the proxy is still being set up; bindings read
    from disk after that would be read from files the command may have
    changed (a provider definition, before `trust` confirms it).
    """
    _preloaded[(home, tuple(connections))] = _held(Runtime(home, vault, list(bindings)))


def _held(rt: Runtime) -> Runtime:
    """With a shared store, read every credential now: a proxy then holds them should the database go away."""
    if rt.vault.records.shared:
        rt.vault.records.follow(wait=CONNECT_WAIT)  # type: ignore[attr-defined]
        for binding in rt.bindings:
            try:
                rt.source(binding).current()
            except Exception:  # said again, with the reason, on the first request that needs it
                pass
    return rt


# Where `runtime` keeps its answer, in the options object itself, until any option changes:
# every request asks several times, and each read of an option is a deep copy.
_MEMO, _FORGET = "_authsome_runtime", "_authsome_forget_runtime"


def runtime(options, *, fresh: bool = False) -> Runtime:
    """The state these options describe, kept until an option changes.

    A `configure` hook must ask with `fresh=True`: hooks run before the
    receiver that forgets the kept answer, so they would see the old one.
    """
    found = None if fresh else options.__dict__.get(_MEMO)
    if found is None:
        home = options.authsome_home or os.environ.get("AUTHSOME_HOME", "")
        key = (home, tuple(options.authsome_connections))
        found = _preloaded.get(key) or _runtime(*key)
        if _FORGET in options.__dict__:  # declared: a change of options forgets it
            options.__dict__[_MEMO] = found
    return found


def target_of(flow) -> tuple[str, int] | None:
    """The CONNECT target (host, port) a request travels in, as Route recorded it."""
    target = (flow.metadata.get(META) or {}).get("target")
    return (target[0], target[1]) if target else None


def departure_problem(server, request, target: tuple[str, int], binding: Binding) -> str | None:
    """Why `request` must not leave with the credential over `server`, or None.

    Checked as the bytes are written: the connection must be TLS to the
    CONNECT target under its own name, and the request (as it is now, after
    any hook or edit) must still name that target and a routed path.
    """
    host, port = target
    address = server.address
    if address is None or (normalize_host(str(address[0])), address[1]) != target:
        return "its connection goes to another address"
    if not server.tls or normalize_host(server.sni or "") != host:
        return "its connection does not verify the host's own name"
    if request.scheme != "https" or (normalize_host(request.host), request.port) != target:
        return "it was changed to another host"
    reason = authority.disagreement(target, sni=None, request=request) or authority.target_problem(request)
    if reason is None and binding.route_for(host, port, request.path) is None:
        reason = "its path is not routed"
    return reason or injection.conflict(request, binding.provider)


def held_for_refresh(flow) -> bool:
    """A 401 to a request we injected, not retried yet: Refresh holds it (never streamed)."""
    meta = flow.metadata.get(META) or {}
    return (
        flow.response is not None
        and flow.response.status_code == 401
        and bool(meta.get("injected"))  # empty: the child's own credential, not ours to refresh
        and not meta.get("retried")
        and not flow.is_replay
    )

"""Inject: have the real credential written into requests the Route addon marked, on the wire only.

Three cases, per credential slot (see `authsome.injection`): the child sent
the placeholder (swapped), sent nothing (added), or sent a credential of its
own (left alone). A token about to expire is refreshed first (`requestheaders`
is async, so a refresh never blocks other traffic).

The credential is never put into the flow: the request is registered with
`Runtime.send_with_credential`, and the copy mitmproxy serializes onto the
upstream connection carries it, after a last check of that connection and of
the request as it is then. Every viewer, dump, export and filter sees the
request as the child sent it.
"""

from __future__ import annotations

import asyncio

from mitmproxy import ctx, http

from authsome.addons import _wire
from authsome.addons._runtime import META, declare, log, runtime
from authsome.errors import AuthsomeError, Unreachable, VaultError


class Inject:
    def load(self, loader) -> None:
        declare(loader)
        _wire.install()

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get(META) or {}
        if flow.response is not None or flow.is_replay or "binding" not in meta:
            return
        rt = runtime(ctx.options)
        binding = rt.binding_for(meta["binding"])
        if binding is None:
            return
        source = rt.source(binding)
        leeway = ctx.options.authsome_refresh_leeway
        try:
            # The record is decrypted off the event loop, and only when its file changed.
            conn = source.unchanged() or await asyncio.to_thread(source.current)
            if conn.should_refresh(leeway=leeway):
                try:
                    conn = await rt.refresh(binding, leeway=leeway)
                    meta["refreshed"] = True
                except (VaultError, Unreachable) as exc:
                    if conn.is_expired():
                        raise
                    # The store or the token endpoint is away: the token held still works for a while.
                    log.warning("%s: cannot refresh yet, using the token held until it expires: %s",
                                binding.key, exc.message)
        except AuthsomeError as exc:
            # Nothing is injected; the child gets the provider's own answer (a 401).
            meta["inject_error"] = exc.code
            log.warning("%s: %s %s", binding.key, exc.message, f"({exc.hint})" if exc.hint else "")
            return
        if conn.state == "invalid":
            meta["inject_error"] = "invalid"
            log.warning("%s is invalid: run `authsome login %s --force`", binding.key, binding.provider.name)
            return
        rt.send_with_credential(flow, binding, conn)


addons = [Inject()]

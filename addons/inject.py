"""Inject: put the real credential into requests the Route addon marked, at the last moment.

Three cases, per credential slot (see `authsome.injection`): the child sent
the placeholder (swapped), sent nothing (added), or sent a credential of its
own (left alone). A token about to expire is refreshed first (`requestheaders`
is async, so a refresh never blocks other traffic).

The header is written in the `update` event that follows the `request` hook,
the last moment before the request leaves; an addon placed after a UI's view
thus never lets the view serialize the real value. The Redact addon puts the
child's own values back once the request has left.
"""

from __future__ import annotations

import asyncio

from mitmproxy import ctx, http

from authsome import injection
from authsome.addons._runtime import META, declare, log, runtime
from authsome.errors import AuthsomeError

READY = "inject_ready"
DONE = "injected"


class Inject:
    def load(self, loader) -> None:
        declare(loader)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get(META) or {}
        if flow.response is not None or "binding" not in meta:
            return
        rt = runtime(ctx.options)
        binding = rt.binding_for(meta["binding"])
        if binding is None:
            return
        source = rt.source(binding)
        try:
            conn = await asyncio.to_thread(source.current)
            if conn.should_refresh(leeway=ctx.options.authsome_refresh_leeway):
                conn = await rt.refresh(binding, leeway=ctx.options.authsome_refresh_leeway)
                meta["refreshed"] = True
        except AuthsomeError as exc:
            # Nothing is injected; the child gets the provider's own answer (a 401).
            meta["inject_error"] = exc.code
            log.warning("%s: %s %s", binding.key, exc.message, f"({exc.hint})" if exc.hint else "")
            return
        if conn.state == "invalid":
            meta["inject_error"] = "invalid"
            log.warning("%s is invalid: run `authsome login %s --force`", binding.key, binding.provider.name)
            return
        meta[READY] = True

    def update(self, flows) -> None:
        for flow in flows:
            if not isinstance(flow, http.HTTPFlow):
                continue
            meta = flow.metadata.get(META)
            # Only after the `request` hook: the request leaves right after this event.
            if not meta or not meta.get(READY) or not meta.get("request_seen") or meta.get(DONE) is not None:
                continue
            rt = runtime(ctx.options)
            binding = rt.binding_for(meta["binding"])
            if binding is None:
                continue
            try:
                conn = rt.source(binding).current()
            except AuthsomeError:
                continue
            changed = injection.apply(flow.request, binding.provider, conn)
            meta[DONE] = changed  # slot -> what the child sent there (placeholder or nothing)
            meta["record_version"] = conn.version  # lets a 401 retry tell whether it was refreshed since

    def request(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get(META)
        if meta and meta.get(READY):
            meta["request_seen"] = True


addons = [Inject()]

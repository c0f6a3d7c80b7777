"""Refresh: on a 401 to an injected request, refresh the token once and re-send the request.

Every response streams through to the child as it arrives (server-sent
events stay live, large downloads are not buffered), except a 401 to a
request we injected: that one is held, the token is refreshed (one refresh
per connection at a time in this process, and across processes through the
vault's lock), and the same request (method, headers, body) is re-sent with
the new token through mitmproxy's own upstream path, so TLS verification,
--resolve and an upstream proxy apply to the retry as well. The child only
sees the final response. If the refresh is refused, the child gets the
provider's original 401 and authsome says which `authsome login` to run.
"""

from __future__ import annotations

from mitmproxy import ctx, http

from authsome.addons._runtime import META, declare, log, runtime
from authsome.errors import AuthsomeError


def _held(flow: http.HTTPFlow) -> bool:
    meta = flow.metadata.get(META) or {}
    return (
        flow.response is not None
        and flow.response.status_code == 401
        and bool(meta.get("injected"))  # empty: the child's own credential, not ours to refresh
        and not meta.get("retried")
    )


class Refresh:
    def load(self, loader) -> None:
        declare(loader)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # A re-send has no client to stream to: its body is buffered and handed
        # to the original flow whole.
        if flow.is_replay or _held(flow):
            return
        flow.response.stream = True

    async def response(self, flow: http.HTTPFlow) -> None:
        if flow.is_replay or not _held(flow):
            return
        meta = flow.metadata[META]
        rt = runtime(ctx.options)
        binding = rt.binding_for(meta["binding"])
        if binding is None or binding.provider.auth_type != "oauth2":
            return
        try:
            await rt.refresh(binding, leeway=ctx.options.authsome_refresh_leeway,
                             stale_version=meta.get("record_version"))
        except AuthsomeError as exc:
            meta["refresh_error"] = exc.code
            log.warning("%s: %s %s", binding.key, exc.message, f"({exc.hint})" if exc.hint else "")
            return
        meta["refreshed"] = True
        retry = await self._resend(flow)
        if retry is not None:
            flow.response = retry

    async def _resend(self, flow: http.HTTPFlow) -> http.Response | None:
        from mitmproxy.addons.clientplayback import ReplayHandler

        again = flow.copy()
        again.response = None
        again.error = None
        again.is_replay = "request"
        meta = dict(again.metadata[META])
        for key in ("injected", "inject_ready", "request_seen", "record_version"):
            meta.pop(key, None)
        meta["retried"] = True
        meta["inject_ready"] = True  # the Inject addon fills in the new token
        again.metadata[META] = meta
        await ReplayHandler(again, ctx.options).replay()
        flow.metadata[META]["retried"] = True
        if again.response is None:
            log.warning("re-sending after the refresh failed: %s", again.error.msg if again.error else "no response")
            return None
        return again.response


addons = [Refresh()]

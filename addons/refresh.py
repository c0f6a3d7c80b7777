"""Refresh: on a 401 to an injected request, refresh the token once and re-send the request.

A 401 to a request we injected is held (the Scrub addon streams every other
response), the token is refreshed (one refresh per connection at a time in
this process, and across processes through the vault's lock), and the same
request (method, headers, body) is re-sent with the new token through
mitmproxy's own upstream path, so TLS verification, --resolve and an
upstream proxy apply to the retry as well. The re-send is pinned to the
CONNECT target (address, TLS server name and Host), and the wire checks it
again before it leaves. The child only sees the final response. If the
refresh is refused, the child gets the provider's original 401 and authsome
says which `authsome login` to run. A request whose body streamed through
(larger than Route's MAX_REPLAY_BODY) is not re-sent: the token is
refreshed and the child gets the 401, so its own retry succeeds.
"""

from __future__ import annotations

from mitmproxy import ctx, http

from authsome.addons._runtime import META, declare, held_for_refresh, log, runtime, target_of
from authsome.errors import AuthsomeError


class Refresh:
    def load(self, loader) -> None:
        declare(loader)

    async def response(self, flow: http.HTTPFlow) -> None:
        if not held_for_refresh(flow):
            return
        meta = flow.metadata[META]
        rt = runtime(ctx.options)
        binding = rt.binding_for(meta.get("binding"))
        if binding is None or binding.provider.auth_type != "oauth2":
            return
        try:
            conn = await rt.refresh(binding, leeway=ctx.options.authsome_refresh_leeway,
                                    stale_version=meta.get("record_version"))
        except AuthsomeError as exc:
            meta["refresh_error"] = exc.code
            log.warning("%s: %s %s", binding.key, exc.message, f"({exc.hint})" if exc.hint else "")
            return
        meta["refreshed"] = meta["retried"] = True
        if flow.request.raw_content is None:
            log.warning("%s: refreshed; the request's body streamed through, so the command gets the 401 "
                        "and its own retry carries the new token", binding.key)
            return
        retry = await self._resend(flow, rt, binding, conn)
        if retry is not None:
            flow.response = retry

    async def _resend(self, flow: http.HTTPFlow, rt, binding, conn) -> http.Response | None:
        from mitmproxy.addons.clientplayback import ReplayHandler

        host, port = target_of(flow)
        again = flow.copy()
        again.response = None
        again.error = None
        again.is_replay = "request"
        again.metadata[META] = {k: v for k, v in flow.metadata[META].items()
                                if k not in ("injected", "record_version", "inject_error")}
        # Pinned to the CONNECT target: ReplayHandler connects to request.host and
        # takes the TLS server name from the Host header (here: the same name).
        again.request.host = host
        again.request.port = port
        again.request.scheme = "https"
        again.request.host_header = host if port == 443 else f"{host}:{port}"
        rt.send_with_credential(again, binding, conn, record_into=flow)
        await ReplayHandler(again, ctx.options).replay()
        if again.response is None:
            log.warning("re-sending after the refresh failed: %s", again.error.msg if again.error else "no response")
            return None
        return again.response


addons = [Refresh()]

"""mitmproxy's web UI for `authsome run --ui web`, never showing a real credential.

A request we injected holds the real credential from the moment it leaves
until its answer (or an error) arrives; the Redact addon then puts back what
the child sent. During that window the UI reaches the flow in three ways, and
each sees the request as the child sent it:

- the live view: flow updates pushed to the browser go through
  `app.flow_to_json`, which serializes with the child's values put back;
- every page and action (the flow list, "Download flows", commands such as
  `export` or `cut`, editing) runs in a request handler on the proxy's own
  event loop. While a synchronous handler runs, no proxy code can, so the
  in-flight requests are put back as the child sent them for the handler's
  duration and re-injected right after, if still unanswered: one mechanism
  instead of a list of endpoints to remember;
- every serialization of a flow (`save_stream_file`, `save.file`, copies)
  goes through `HTTPFlow.get_state`, wrapped the same way; mitmproxy's Save
  addon runs before Redact, at an error and at shutdown.

The options page does not show the proxy's own password or the upstream
proxy's credentials. mitmproxy is imported lazily: only the proxy thread
loads this module, and only for `--ui web`.
"""
from __future__ import annotations

import asyncio
import functools
import inspect

from authsome import injection
from authsome.injection import FLOW_META as META

HIDDEN = "(hidden by authsome)"
SECRET_OPTIONS = ("proxyauth", "upstream_auth")


def web_master(opts):
    """A WebMaster whose UI shows every request as the child sent it, on a port of its own."""
    import tornado.httpserver
    import tornado.ioloop
    import tornado.netutil
    from mitmproxy.master import Master
    from mitmproxy.tools.web.master import WebMaster

    class _WebMaster(WebMaster):
        async def running(self):
            # Bind port 0 here: a port picked free beforehand can be taken by the
            # time the stock running() binds it. The rest is what the stock one does.
            tornado.ioloop.IOLoop.current()  # registers tornado with this loop
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            tornado.httpserver.HTTPServer(self.app, max_buffer_size=2**32).add_sockets(sockets)
            self.options.update(web_host="127.0.0.1", web_port=sockets[0].getsockname()[1])
            return await Master.running(self)

    protect_web_app()
    return _WebMaster(opts, with_termlog=False)


def _holding_secret(flow) -> dict | None:
    """What we injected into `flow`, while the request still holds it (Redact has not run)."""
    changed = (flow.metadata.get(META) or {}).get("injected")
    if not changed or not injection.is_applied(flow.request, changed):
        return None
    return changed


def _unanswered(flow) -> bool:
    # Redact puts the child's values back once an answer or an error arrives; after
    # that nothing is sent any more, so a hidden request stays as the child sent it.
    return flow.response is None and not flow.error  # only HTTP flows are ever hidden


def _as_the_child_sent_it(serialize):
    """Wrap `serialize(flow)` so it sees the request as the child sent it.

    The flow itself is put back and re-injected around the call, not copied:
    a copy has a new id the UI could not act on.
    """
    @functools.wraps(serialize)
    def wrapper(flow, *args, **kwargs):
        changed = _holding_secret(flow)
        if not changed:
            return serialize(flow, *args, **kwargs)
        held = injection.hide(flow.request, changed)
        try:
            return serialize(flow, *args, **kwargs)
        finally:
            injection.reveal(flow.request, changed, held)

    return wrapper


def protect_web_app() -> None:
    """Make mitmproxy's web UI show requests as the child sent them (idempotent).

    Used by `--ui web`, and by the Redact addon when a stock `mitmweb -s` loads it.
    """
    from mitmproxy import http, optmanager
    from mitmproxy.tools.web import app

    if getattr(app, "authsome_patched", False):
        return
    app.authsome_patched = True

    app.flow_to_json = _as_the_child_sent_it(app.flow_to_json)

    original_prepare = app.RequestHandler.prepare
    original_on_finish = app.RequestHandler.on_finish

    def prepare(self):
        result = original_prepare(self)
        handler = getattr(self, self.request.method.lower(), None)
        # An async handler could let the proxy send a hidden request upstream
        # mid-way; none of those (only the flow upload) reads flows.
        if handler is not None and not inspect.iscoroutinefunction(inspect.unwrap(handler)):
            self._authsome_hidden = [
                (flow, changed, injection.hide(flow.request, changed))
                for flow in self.application.master.view.resolve("@all")
                if (changed := _holding_secret(flow))
            ]
            # on_finish reveals; should tornado skip it on a broken connection,
            # the loop's next turn does (a request then leaves with the
            # placeholder and gets a 401 at worst, never a leak).
            asyncio.get_running_loop().call_soon(_reveal, self)
        return result

    def on_finish(self):
        _reveal(self)
        original_on_finish(self)

    def _reveal(handler) -> None:
        for flow, changed, held in handler.__dict__.pop("_authsome_hidden", ()):
            if _unanswered(flow):
                injection.reveal(flow.request, changed, held)

    app.RequestHandler.prepare = prepare
    app.RequestHandler.on_finish = on_finish

    # Every serialization of a flow (the flow download, `save.file`, a
    # `save_stream_file` set from the options page, copies) goes through
    # get_state: it too sees the request as the child sent it.
    http.HTTPFlow.get_state = _as_the_child_sent_it(http.HTTPFlow.get_state)

    original_dump = optmanager.dump_dicts

    def dump_dicts(opts, keys=None):
        out = original_dump(opts, keys)
        for name in SECRET_OPTIONS:
            if name in out and out[name].get("value"):
                out[name] = {**out[name], "value": HIDDEN}
        return out

    optmanager.dump_dicts = dump_dicts

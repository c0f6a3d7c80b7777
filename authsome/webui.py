"""mitmproxy's web UI for `authsome run --ui web`.

The UI's own port is bound by us, on 127.0.0.1; what it hides and loses is in
`authsome.ui`, shared with the console. mitmproxy is imported lazily: only
the proxy thread loads this module, and only for `--ui web`.
"""
from __future__ import annotations

from authsome.ui import hide_secret_options, strip_unsafe


def web_master(opts):
    """A WebMaster on a port of its own, whose options page hides credentials."""
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

    hide_secret_options()
    m = _WebMaster(opts, with_termlog=False)
    strip_unsafe(m)  # what the UI (or a leaked token) could use to run code or rewrite traffic
    return m

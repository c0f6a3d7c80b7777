"""mitmproxy's web UI for `authsome run --ui web`.

No flow ever holds a real credential (it exists only in the bytes sent
upstream, `addons/_wire.py`), so the live view, the flow list, downloads,
commands such as `export` or `cut`, editing and saved flows all show
requests as the child sent them without any help from here. What is left:
the UI's own port, bound by us; an options page that does not show the
proxy's password or an upstream proxy's credentials; and no addon that runs
code or rewrites traffic (the options that remain are frozen by
`authsome.proxy` once the proxy runs). mitmproxy is imported
lazily: only the proxy thread loads this module, and only for `--ui web`.
"""
from __future__ import annotations

HIDDEN = "(hidden by authsome)"
# mitmproxy default addons a debugging UI for `authsome run` does without: loading
# scripts, rewriting requests and responses, serving canned responses, reading
# flows from files, the stock upstream auth (authsome has its own).
UNSAFE_ADDONS = ("scriptloader", "serverplayback", "mapremote", "maplocal", "modifybody", "modifyheaders",
                 "blocklist", "upstreamauth", "readfilestdin", "staticviewer", "browser")
SECRET_OPTIONS = ("proxyauth", "upstream_auth", "authsome_upstream_auth")


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
    removed = []
    for name in UNSAFE_ADDONS:  # what the UI (or a leaked token) could use to run code or rewrite traffic
        if (addon := m.addons.get(name)) is not None:
            m.addons.remove(addon)
            removed.append(addon)
    for path, command in list(m.commands.commands.items()):  # removing an addon leaves its commands behind
        if getattr(command.func, "__self__", None) in removed:
            del m.commands.commands[path]
    return m


def hide_secret_options() -> None:
    """The options page (and `options` dumps) show no proxy credentials (idempotent).

    Used by `--ui web`, and by the Guard addon when a stock `mitmweb -s` loads it.
    """
    from mitmproxy import optmanager

    if getattr(optmanager, "authsome_patched", False):
        return
    optmanager.authsome_patched = True
    original_dump = optmanager.dump_dicts

    def dump_dicts(opts, keys=None):
        out = original_dump(opts, keys)
        for name in SECRET_OPTIONS:
            if name in out and out[name].get("value"):
                out[name] = {**out[name], "value": HIDDEN}
        return out

    optmanager.dump_dicts = dump_dicts

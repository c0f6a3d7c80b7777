"""The in-process mitmproxy: a lean master on its own event loop in a background thread.

Only the stock addons a regular proxy needs (proxyserver, next_layer,
tlsconfig) and ours, in this order:

    ProxyPassword      407 for anything without this run's proxy credentials
                       (constant time; stock proxyauth with Guard in the UIs)
    Guard              idle strangers are closed
    Route              intercept routed CONNECT targets, tunnel the rest; refuse
                       requests whose names disagree; mark the rest
    UpstreamProxyAuth  a corporate proxy's credentials, to that proxy only
    Inject             refresh early if needed; have the credential written on the wire
    Scrub              stream responses with every secret replaced by the placeholder
    Refresh            an injected 401: refresh, re-send pinned to the CONNECT target
    Audit              one record per flow

The credential exists only in the bytes sent upstream (`addons/_wire.py`):
no flow, viewer, dump or re-send ever holds it.

Without a UI the master is `authsome.leanmaster.LeanMaster` (the stock one,
with a table of which addon implements which hook); the UIs bring their own.

mitmproxy is imported here, in `leanmaster` (from here) and in `addons/`
only, so commands other than `run` never pay for it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path

from authsome.errors import ProxyError

READY_TIMEOUT = 15.0


@dataclass
class ProxyConfig:
    confdir: Path  # holds the run's CA (mitmproxy-ca.pem)
    upstream_trust: Path  # CA bundle for verifying upstream servers
    proxy_user: str
    proxy_password: str
    home: str
    connections: list[str]
    run_id: str
    deny_unmatched: bool = False
    allow_hosts: tuple[str, ...] = ()  # with deny_unmatched: hosts that pass all the same
    upstream_proxy: str | None = None  # http://host:port of a proxy to chain to
    upstream_proxy_auth: str | None = None  # user:password for it
    log_file: Path | None = None
    ui: str | None = None  # "web": mitmproxy's web UI on 127.0.0.1; "console": its console in this terminal
    extra_options: dict = field(default_factory=dict)
    # What the run checked before the command started (see `_runtime.preload`): (vault, bindings).
    served: tuple | None = None


class Proxy:
    def __init__(self, config: ProxyConfig):
        self.config = config
        self.port: int | None = None
        self.web_url: str | None = None
        # What quitting the console would stop ("the command (pid 42)"), set by the main thread.
        self.running_command: str | None = None
        self._console = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._master = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket: socket.socket | None = None
        self._abandoned = False  # stop() came before the proxy thread claimed the start (under _claim)
        self._claimed = False
        self._claim = threading.Lock()
        self.ready_timeout = READY_TIMEOUT
        self._thread = threading.Thread(target=self._thread_main, name="authsome-proxy", daemon=True)

    # -- the proxy thread ---------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # SystemExit included: a dead proxy must not go unnoticed
            self._error = exc
        finally:
            self._socket.close()  # a proxy that is gone refuses connections rather than leave them queued
            self._ready.set()

    async def _main(self) -> None:
        if self.config.ui is None:
            _lean_addons_package()
        from mitmproxy import options
        from mitmproxy.addons import next_layer, proxyserver, tlsconfig

        from authsome.addons._runtime import preload
        from authsome.addons.audit import Audit
        from authsome.addons.guard import Guard, ProxyPassword
        from authsome.addons.inject import Inject
        from authsome.addons.mcp import Mcp
        from authsome.addons.refresh import Refresh
        from authsome.addons.route import Route
        from authsome.addons.scrub import Scrub
        from authsome.addons.upstream import UpstreamProxyAuth

        cfg = self.config
        if cfg.served is not None:
            preload(cfg.home, cfg.connections, *cfg.served)
        mode = [f"upstream:{cfg.upstream_proxy}"] if cfg.upstream_proxy else ["regular"]
        with self._claim:
            if self._abandoned:
                return  # the command ended before the proxy was needed
            self._claimed = True  # from here on, stop() waits for a state that can shut down
        _serve_prebound(self._socket)
        opts = _run_options(options.Options)(
            listen_host="127.0.0.1",
            listen_port=self.port,
            mode=mode,
            confdir=str(cfg.confdir),
            upstream_cert=False,  # copying upstream SANs into leaves would break the name constraints
            ssl_verify_upstream_trusted_ca=str(cfg.upstream_trust),
        )
        if cfg.ui == "web":
            from authsome.webui import web_master

            m = web_master(opts)
            stock = []  # the web master brings mitmproxy's default addons, its view among them
        elif cfg.ui == "console":
            from authsome.console import console_master

            m = self._console = console_master(opts, lambda: self.running_command)
            stock = []
        else:
            from authsome.leanmaster import LeanMaster

            m = LeanMaster(opts)
            stock = [proxyserver.Proxyserver(), next_layer.NextLayer(), tlsconfig.TlsConfig(), ProxyPassword()]
        self._master, self._loop = m, asyncio.get_running_loop()
        proxy = self

        class Ready:
            def running(self) -> None:
                opts.freeze()  # from here on, the web UI (whose token the child might learn) cannot loosen anything
                addrs = m.addons.get("proxyserver").listen_addrs()
                proxy.port = addrs[0][1] if addrs else None
                proxy.web_url = getattr(m, "web_url", None)
                proxy._ready.set()

        m.addons.add(*stock)
        # Guard after the password check (it reads its mark; in the UIs it replaces stock proxyauth's
        # validator); UpstreamProxyAuth after Route, whose marks it reads.
        # Each addon with a request hook costs every request something: UpstreamProxyAuth only when chained.
        chained = [UpstreamProxyAuth()] if cfg.upstream_proxy else []
        # Mcp only when an MCP server is served (after Refresh: it answers the 401 Refresh could not mend).
        served = cfg.served[1] if cfg.served is not None else None
        mcp = [Mcp()] if served is None or any(b.provider.mcp_url for b in served) else []
        m.addons.add(Guard(), Route(), *chained, Inject(), Scrub(), Refresh(), *mcp, Audit(), Ready())
        settings = {
            "proxyauth": f"{cfg.proxy_user}:{cfg.proxy_password}",
            "connection_strategy": "eager",
            "authsome_home": cfg.home,
            "authsome_connections": list(cfg.connections),
            "authsome_deny_unmatched": cfg.deny_unmatched,
            "authsome_allow_hosts": list(cfg.allow_hosts),
            "authsome_run_id": cfg.run_id,
            **cfg.extra_options,
        }
        if cfg.upstream_proxy_auth:
            settings["authsome_upstream_auth"] = cfg.upstream_proxy_auth
        if cfg.ui == "web":
            settings.update(web_open_browser=False)
        opts.update(**settings)
        try:
            await m.run()
        finally:
            # master.shutdown() alone leaves the listening socket bound (mitmproxy 6245/6829).
            await m.addons.get("proxyserver").servers.update([])

    # -- the caller's side ------------------------------------------------------------

    def start(self, *, wait: bool = True) -> int:
        """Listen on 127.0.0.1 and start the proxy thread; return the port.

        The socket is bound here, before mitmproxy is imported, so a command
        can be started at once (`wait=False`): its connections queue until the
        proxy serves them. Then `wait_ready` reports a proxy that failed.
        """
        _route_logs(self.config.log_file)
        try:
            self._socket = _listening_socket()
        except OSError as exc:
            raise ProxyError(f"The proxy could not listen on 127.0.0.1: {exc.strerror}.", "check `authsome doctor`") from None
        self.port = self._socket.getsockname()[1]
        self._thread.start()
        if wait:
            self.wait_ready()
        return self.port

    def wait_ready(self, timeout: float | None = None) -> None:
        """Return once serving; else raise why not (failed, or not started within `ready_timeout`).

        `timeout`: how long to wait still (default `ready_timeout`; 0 when a
        caller watched the clock itself).
        """
        if not self._ready.wait(self.ready_timeout if timeout is None else timeout):
            self.stop()
            raise ProxyError(f"The proxy did not start within {int(self.ready_timeout)} s.",
                             "run again; `authsome doctor` checks the installation")
        if self._error is not None:
            raise ProxyError(f"The proxy could not start: {self.reason}.",
                             "run again with --verbose for details") from self._error

    @property
    def reason(self) -> str | None:
        """Why the proxy thread failed, in a few words (no values), or None."""
        if self._error is None:
            return None
        return getattr(self._error, "message", None) or type(self._error).__name__

    @property
    def settled(self) -> bool:
        """Serving, or failed: no longer starting."""
        return self._ready.is_set()

    @property
    def failed(self) -> bool:
        """The proxy thread ended with an error (before or after it served)."""
        return self._ready.is_set() and self._error is not None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # The console's side (thread-safe; without a console they do what the run would without one).

    def say(self, text: str) -> None:
        """Tell the user, in the console's status bar and event log (only there: it owns the screen)."""
        if self._console is not None and self.alive:
            self._console.say(text)

    def ask_to_quit(self) -> None:
        """Ctrl-C: the console asks while the command runs; otherwise the proxy stops."""
        if self._console is not None and self.alive:
            self._console.ask_to_quit()
        else:
            self.stop()

    def resized(self) -> None:
        if self._console is not None and self.alive:
            self._console.resized()

    def suspend(self) -> None:
        if self._console is not None and self.alive:
            self._console.suspend()

    def resume(self) -> None:
        if self._console is not None and self.alive:
            self._console.resume()

    def stop(self, timeout: float = 5.0) -> None:
        with self._claim:
            if self._thread.is_alive() and not self._claimed:
                # Still importing mitmproxy: it will not serve. The thread is a daemon, and the
                # CLI leaves with os._exit, so nobody waits for the import to finish.
                self._abandoned = True
                self._socket.close()
                return
        if self._thread.is_alive() and not self._ready.is_set():
            # Stopped while starting (a signal): let it reach a state that can shut down.
            self._ready.wait(timeout)
        loop, master = self._loop, self._master
        if loop is not None and master is not None and self._thread.is_alive():
            async def close() -> None:
                await master.addons.get("proxyserver").servers.update([])
                master.shutdown()

            try:
                asyncio.run_coroutine_threadsafe(close(), loop).result(timeout)
            except (RuntimeError, TimeoutError, asyncio.CancelledError):
                pass  # the loop is already gone
        if self._thread.is_alive():
            self._thread.join(timeout)


# Once the proxy runs, only these options may change (from the web UI: what to
# intercept and how to show it). Everything else stays as `run` set it: a child
# that learned the UI's token (stderr redirected to a file it can read) could
# otherwise set ssl_insecure or authsome_resolve, load a script into this
# process, or rewrite bodies so an echo escapes Scrub.
ADJUSTABLE = {"intercept", "intercept_active", "view_filter", "view_order", "view_order_reversed",
              "web_columns", "content_view_lines_cutoff", "showhost", "flow_detail", "termlog_verbosity",
              "save_stream_file", "save_stream_filter", "console_layout", "console_layout_headers", "console_focus_follow",
              "console_palette", "console_palette_transparent", "console_mouse", "console_flowlist_layout",
              "console_eventlog_verbosity", "console_strip_trailing_newlines", "console_quickhelp_visible",
              "console_default_contentview"}


def frozen(name: str) -> bool:
    return name not in ADJUSTABLE


def _run_options(base):
    """mitmproxy's Options, with `freeze()`: then the options above refuse to change, and reset is refused."""
    from mitmproxy import exceptions

    class RunOptions(base):
        def freeze(self) -> None:
            self.__dict__["_authsome_frozen"] = True

        def _refuse(self, names) -> None:
            if self.__dict__.get("_authsome_frozen") and (locked := sorted(n for n in names if frozen(n))):
                raise exceptions.OptionsError(
                    f"{', '.join(locked)} cannot change while `authsome run` runs (it decides what is trusted or "
                    "where credentials go); restart the run with other options instead")

        def update_known(self, **kwargs):
            self._refuse(kwargs)
            return super().update_known(**kwargs)

        def reset(self) -> None:
            self._refuse(self._options)
            super().reset()

    return RunOptions


def _lean_addons_package() -> None:
    """Import mitmproxy's addons one by one, without the package's `__init__`.

    That `__init__` imports every default addon (flask for onboarding, ldap3
    for proxyauth, ...), some 110 ms a run pays for nothing: the lean master
    loads four of them. Only without a UI (the UIs want `default_addons()`),
    and only if nothing imported the package yet.
    """
    if "mitmproxy.addons" in sys.modules:
        return
    import importlib.util

    spec = importlib.util.find_spec("mitmproxy")
    directory = Path(spec.submodule_search_locations[0]) / "addons"
    package = types.ModuleType("mitmproxy.addons")
    package.__path__ = [str(directory)]
    package.__package__ = "mitmproxy.addons"

    def __getattr__(name: str):
        # Anything but a submodule (`default_addons`, for a UI or a test harness later in this
        # process): run the real `__init__` into this module, once, and answer from it.
        if (directory / f"{name}.py").exists() or (directory / name).is_dir() or name.startswith("__"):
            raise AttributeError(name)
        if not package.__dict__.get("authsome_complete"):
            package.authsome_complete = True
            init = directory / "__init__.py"
            exec(compile(init.read_text(), str(init), "exec"), package.__dict__)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None

    package.__getattr__ = __getattr__
    sys.modules["mitmproxy.addons"] = package


def _listening_socket() -> socket.socket:
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted sockets inherit it (without, Nagle and delayed ACKs add 40 ms to every answer).
    # SO_REUSEADDR as asyncio sets it: the port can be bound again while old connections linger in TIME_WAIT.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def _serve_prebound(sock: socket.socket) -> None:
    """mitmproxy's TCP servers accept on `sock` (bound by `Proxy.start`) when asked for its port."""
    from mitmproxy.proxy import mode_servers

    cls = mode_servers.AsyncioServerInstance
    original = getattr(cls, "authsome_original_listen", cls.listen)
    port = sock.getsockname()[1]

    async def listen(self, host, wanted):
        if wanted == port and self.mode.transport_protocol == "tcp":
            if sock.fileno() == -1:
                raise OSError(errno.EBADF, "the proxy's listening socket was closed (the run is stopping)")
            return [await asyncio.start_server(self.handle_stream, sock=sock)]
        return await original(self, host, wanted)

    cls.authsome_original_listen = original
    cls.listen = listen


def _route_logs(log_file: Path | None) -> None:
    """Keep mitmproxy's log lines off the child's terminal: to a file, or nowhere.

    The master hooks the root logger while it runs; without this, its errors
    (and authsome's own warnings) would be swallowed or interleaved with the
    child's output.
    """
    mitm = logging.getLogger("mitmproxy")
    mitm.propagate = False
    mitm.setLevel(logging.WARNING)
    for h in list(mitm.handlers):
        mitm.removeHandler(h)
    if log_file is not None:
        handler = logging.FileHandler(log_file, delay=True)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        mitm.addHandler(handler)
    else:
        mitm.addHandler(logging.NullHandler())

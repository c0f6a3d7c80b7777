"""`authsome run`: the child's environment, its CA trust, the proxy, signals and exit status.

The child gets placeholders instead of secrets, a proxy URL with credentials
of its own (so no other local process can use the proxy), and CA bundles
that add this run's CA to whatever it already trusted. The run's files (CA,
bundles, proxy log) live in a 0700 directory under the home and are deleted
when the child exits.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from authsome import exports, paths
from authsome.envnames import (
    ADDITIVE_CA_VARS,
    ALL_PROXY_VARS,
    COMBINED_BUNDLE_VARS,
    PARENT_ONLY_BUNDLE_VARS,
    PROXY_VARS,
    env_prefix,
)
from authsome.bindings import Binding
from authsome.certs import ca as run_ca
from authsome.certs import trust
from authsome.errors import CommandNotStarted, ExitCode, Terminated, UsageError
from authsome.providers.routes import in_domain, normalize_host
from authsome.vault import Vault
from authsome.vault.store import STORE_ENV, STORE_FILE

log = logging.getLogger("authsome")

PROXY_USER = "authsome"
CLIENT_SECRET_SUFFIX = "_CLIENT_SECRET"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass
class RunFiles:
    directory: Path
    ca: run_ca.RunCA
    child_bundle: Path
    upstream_bundle: Path  # where the proxy reads upstream trust from (see `_sealed`)
    node_bundle: Path
    log_file: Path
    held_fds: tuple[int, ...] = ()

    def remove(self) -> None:
        for fd in self.held_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.directory, ignore_errors=True)


def _sealed(path: Path) -> tuple[Path, int | None]:
    """A file only this process can still read: opened, then unlinked, read back via /proc/self/fd.

    The proxy verifies upstream servers against this bundle, and mitmproxy
    reads it at the first upstream handshake, after the child has started;
    a file in the home would let the child (same user) add a CA of its own
    first. With no path left, and /proc/PID/fd closed to others (the run is
    non-dumpable), nothing can change it. Elsewhere than Linux, the file stays.
    """
    if not Path("/proc/self/fd").is_dir():
        return path, None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    os.unlink(path)
    return Path(f"/proc/self/fd/{fd}"), fd


def _write(path: Path, data: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, paths.FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
    return path


OWNER_FILE = "pid"


def prepare_files(home: Path, routes, parent_env: Mapping[str, str]) -> RunFiles:
    runs = paths.ensure_dir(home / "runs")
    directory = Path(paths.ensure_dir(runs / secrets.token_hex(8)))
    try:
        _write(directory / OWNER_FILE, _owner())
        ca = run_ca.create(directory / "ca", routes)
        parent_extra = [Path(parent_env[v]) for v in ADDITIVE_CA_VARS if parent_env.get(v)]
        log_file = _write(directory / "proxy.log", "")
        upstream, held = _sealed(_write(directory / "upstream-bundle.pem", trust.bundle_pem(env=parent_env)))
        return RunFiles(
            directory=directory,
            ca=ca,
            child_bundle=_write(directory / "child-bundle.pem", trust.bundle_pem([ca.cert_path], env=parent_env)),
            upstream_bundle=upstream,
            node_bundle=_write(directory / "node-ca.pem", trust.concat_pem([*parent_extra, ca.cert_path])),
            log_file=log_file,
            held_fds=(held,) if held is not None else (),
        )
    except BaseException:  # an error (or Ctrl-C) half-way: no half-made run left behind
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _owner() -> str:
    # The host name too: a home shared between containers sees pids of other pid namespaces.
    return f"{socket.gethostname()} {os.getpid()}"


def sweep_stale_runs(home: Path) -> list[Path]:
    """Remove the files of runs whose authsome process is gone (killed with -9, a crash).

    A run removes its own directory when it ends; this catches the ones that
    could not, so a dead run's CA key does not stay on disk. Directories
    without an owner file (a run being set up) or owned on another host are
    left alone.
    """
    removed = []
    runs = home / "runs"
    if not runs.is_dir():
        return removed
    for directory in runs.iterdir():
        pid = _owner_here(directory)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def _owner_here(directory: Path) -> int | None:
    """The pid of the authsome process that owns a run directory, if it ran on this host."""
    try:
        host, pid_text = _read_small(directory / OWNER_FILE).split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if host == socket.gethostname() else None


def _read_small(path: Path, limit: int = 1 << 16) -> str:
    """A small regular file, never waiting (a FIFO planted in its place) and never following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return fh.read(limit).decode(errors="replace")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process has that pid now
    return True


def routed_domains(bindings: Sequence[Binding]) -> list[str]:
    return sorted({r.domain for b in bindings for r in b.routes})


def _no_proxy(parent_env: Mapping[str, str], domains: Sequence[str]) -> str:
    """The parent's NO_PROXY plus loopback, minus anything that would bypass a routed host."""
    entries: list[str] = []
    for raw in (parent_env.get("NO_PROXY", ""), parent_env.get("no_proxy", "")):
        for item in raw.split(","):
            item = item.strip()
            if item and item not in entries:
                entries.append(item)

    def bypasses_routed(entry: str) -> bool:
        if entry == "*":
            return True
        name = normalize_host(entry.split(":")[0].lstrip("*").lstrip("."))
        # NO_PROXY entries match the name itself and its subdomains.
        return any(in_domain(domain, name) or in_domain(name, domain) for domain in domains)

    kept = [e for e in entries if not bypasses_routed(e)]
    for host in LOOPBACK:
        if host not in kept:
            kept.append(host)
    return ",".join(kept)


def secret_env_names(bindings: Sequence[Binding], parent_env: Mapping[str, str]) -> set[str]:
    """authsome's own secrets in the parent environment, which the child must not inherit."""
    names = {"AUTHSOME_MASTER_KEY", "AUTHSOME_BUNDLE", STORE_ENV}  # the store's URL may hold a password
    names |= {n for n in parent_env if n.endswith(CLIENT_SECRET_SUFFIX)}
    if STORE_ENV in parent_env or (paths.home() / STORE_FILE).exists():
        names.add("PGPASSWORD")  # the shared store's password, as `authsome store use` suggests giving it
    for b in bindings:
        prefix = env_prefix(b.provider.name)
        names |= {f"{prefix}_CLIENT_ID", f"{prefix}_CLIENT_SECRET"}
        if b.provider.api_key is not None:
            if b.provider.api_key.env_var:
                names.add(b.provider.api_key.env_var)
            names |= {f.env_var for f in b.provider.api_key.extra_fields if f.env_var and f.secret}
    return names


def run_variables(parent_env: Mapping[str, str], bindings: Sequence[Binding], vault: Vault,
                  files: RunFiles, port: int, password: str) -> tuple[dict[str, str], list[str]]:
    """What a run changes in its command's environment: (variables it sets, variables it removes)."""
    proxy_url = f"http://{PROXY_USER}:{quote(password, safe='')}@127.0.0.1:{port}"
    values = dict.fromkeys(PROXY_VARS, proxy_url)
    values["NO_PROXY"] = values["no_proxy"] = _no_proxy(parent_env, routed_domains(bindings))
    values.update(dict.fromkeys(COMBINED_BUNDLE_VARS, str(files.child_bundle)))
    values.update({name: str(files.child_bundle) for name in PARENT_ONLY_BUNDLE_VARS if parent_env.get(name)})
    values.update(dict.fromkeys(ADDITIVE_CA_VARS, str(files.node_bundle)))
    values["NODE_USE_ENV_PROXY"] = "1"
    # The certificate alone (no key), for clients with a trust store of their own:
    # Java's keytool imports one certificate per file.
    values["AUTHSOME_CA_CERT"] = str(files.ca.cert_path)
    for b in bindings:
        conn = vault.get_connection(b.provider.name, b.connection)
        if conn is not None:
            values.update(exports.child_values(b.provider, conn))
    values["AUTHSOME_RUN"] = "1"
    removed = sorted(secret_env_names(bindings, parent_env) | set(ALL_PROXY_VARS))
    return values, removed


def with_run_variables(env: Mapping[str, str], values: Mapping[str, str], removed: Sequence[str]) -> dict[str, str]:
    """`env` as a run's command gets it (also any *_CLIENT_SECRET it has, which `removed` may not name)."""
    out = {k: v for k, v in env.items() if k not in removed and not k.endswith(CLIENT_SECRET_SUFFIX)}
    out.update(values)
    return out


def upstream_proxy(parent_env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The parent's own HTTPS proxy, to chain to: (http://host:port, user:password)."""
    value = next((parent_env[n] for n in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy") if parent_env.get(n)), None)
    if not value:
        return None, None
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("The HTTPS_PROXY of this environment is not an http:// or https:// proxy URL.",
                         "fix or unset HTTPS_PROXY")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 8080)
    except ValueError:
        raise UsageError("The HTTPS_PROXY of this environment has an invalid port.") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}" if parts.username else None
    return f"{parts.scheme}://{host}:{port}", auth


def exit_status(returncode: int) -> int:
    """The child's status, or 128+N when signal N killed it (as shells report it)."""
    return 128 - returncode if returncode < 0 else returncode


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# Before the child exists, these stop authsome (files removed, proxy stopped);
# by default they would kill it on the spot and leave the run's CA key behind.
STOPPING = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _signals(handler, signums):
    return _handlers(dict.fromkeys(signums, handler))


@contextlib.contextmanager
def _handlers(handlers):
    previous = {s: signal.signal(s, handler) for s, handler in handlers.items()}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _console_signals(proxy, *, on_interrupt, group: int | None = None):
    """The console runs off the main thread: window size changes, Ctrl-C and Ctrl-Z reach it from here.

    Ctrl-Z suspends the whole run as a shell job: the console gives the
    terminal back, the command's process group (`group`) stops with it, and
    both go on after `fg`.
    """
    def suspend(*_) -> None:
        proxy.suspend()
        if group is not None:
            _signal_group(group, signal.SIGSTOP)
        os.kill(os.getpid(), signal.SIGSTOP)  # returns after SIGCONT (fg / bg)
        if group is not None:
            _signal_group(group, signal.SIGCONT)
        proxy.resume()

    return _handlers({signal.SIGINT: lambda *_: on_interrupt(), signal.SIGWINCH: lambda *_: proxy.resized(),
                      signal.SIGTSTP: suspend})


class StopRequest:
    """A stopping signal that arrived while the run was being set up.

    The handler only notes it; `check()` raises at points of our choosing. An
    exception raised from a signal handler surfaces wherever the main thread
    happens to be (inside an import, inside a library), where it can be
    swallowed or mangled.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def note(self, signum, _frame) -> None:
        self.signum = self.signum or signum

    def check(self) -> None:
        if self.signum is not None:
            raise Terminated.by_signal(self.signum)


def spawn(argv: Sequence[str], env: dict[str, str], stop: StopRequest | None = None, proxy=None) -> int:
    """Run the child in the foreground; forward signals; return its exit status.

    `proxy`: one still starting. Should it fail, the child is stopped and its
    ProxyError raised: a command whose every request would fail is not left
    running (nor reported by its own status).
    """
    child: subprocess.Popen | None = None
    pending: list[int] = []  # arrived while Popen ran: the child may exist before Popen returns

    def forward(signum, _frame) -> None:
        if child is None:
            pending.append(signum)
            return
        if signum == signal.SIGINT and _terminal_delivers_sigint():
            return  # the terminal already sent Ctrl-C to the child, which shares our process group
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    with _signals(forward, FORWARDED):
        if stop is not None:
            stop.check()  # from here on a signal is the child's: it arrives once Popen returns
        child = start(argv, env)
        for signum in pending:
            forward(signum, None)
        deadline = time.monotonic() + (proxy.ready_timeout if proxy is not None else 0)
        while True:
            try:
                if proxy is None or (proxy.settled and not proxy.failed):
                    return exit_status(child.wait())
                if proxy.failed or time.monotonic() > deadline:
                    _stop_child(child, signal.SIGTERM)
                    proxy.wait_ready(0)  # raises its ProxyError (or that it did not start in time)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return exit_status(child.wait(0.05))
            except KeyboardInterrupt:
                continue


def start(argv: Sequence[str], env: dict[str, str], **popen) -> subprocess.Popen:
    """Popen with the descriptor limit authsome started with; a command that cannot start is a CommandNotStarted."""
    try:
        with _inherited_descriptor_limit():
            return subprocess.Popen(list(argv), env=env, **popen)
    except OSError as exc:
        raise not_started(argv[0], exc) from None


def not_started(command: str, exc: OSError) -> CommandNotStarted:
    if isinstance(exc, FileNotFoundError):
        return CommandNotStarted.not_found(command)
    if isinstance(exc, PermissionError):
        return CommandNotStarted.not_executable(command, "permission denied", f"make it executable: chmod +x {command}")
    if exc.errno == errno.ENOEXEC:
        return CommandNotStarted.not_executable(
            command, "exec format error", "a script needs a first line such as #!/bin/sh (or run it with its interpreter)")
    return CommandNotStarted.not_executable(command, exc.strerror or type(exc).__name__, "check the command after `--`")


ORIGINAL_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)


@contextlib.contextmanager
def _inherited_descriptor_limit():
    """The child gets the descriptor limit authsome started with, not the one the proxy raised."""
    current = resource.getrlimit(resource.RLIMIT_NOFILE)
    changed = current != ORIGINAL_NOFILE
    if changed:
        resource.setrlimit(resource.RLIMIT_NOFILE, ORIGINAL_NOFILE)
    try:
        yield
    finally:
        if changed:
            resource.setrlimit(resource.RLIMIT_NOFILE, current)


def _terminal_delivers_sigint() -> bool:
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


@dataclass
class Session:
    """A proxy serving this run's bindings, and what its command's environment is."""
    proxy: object  # authsome.proxy.Proxy
    files: RunFiles
    values: dict[str, str]  # what the command's environment sets (see `run_variables`)
    removed: list[str]  # and what it loses

    @property
    def run_id(self) -> str:
        return self.files.directory.name


@contextlib.contextmanager
def session(bindings, vault, *, connections, deny_unmatched, allow_hosts, ui, parent_env,
            stop: StopRequest, early: bool = False) -> Iterator[Session]:
    """Start the proxy (and its UI); stop it and remove the run's files at the end.

    `early`: yield as soon as the proxy listens, while it still imports
    mitmproxy (the caller watches `proxy.failed`).
    """
    from authsome import hardening
    from authsome.proxy import Proxy, ProxyConfig

    # Before anything secret is in memory: the child may not read this process.
    secret_names = secret_env_names(bindings, parent_env)
    hardening.protect(secret_names)
    if os.geteuid() == 0 and any(parent_env.get(n) for n in ("AUTHSOME_MASTER_KEY", "AUTHSOME_BUNDLE")):
        log.warning("running as root: the command runs as root too, and root reads any process's memory, "
                    "authsome's included; run the agent as an unprivileged user (README: what is not promised)")
    warn_exposed(secret_names, parent_env)
    home = paths.ensure_home()
    sweep_stale_runs(home)
    routes = [r for b in bindings for r in b.routes]
    files = prepare_files(home, routes, parent_env)
    proxy = None
    try:
        stop.check()
        password = secrets.token_urlsafe(24)
        upstream, upstream_auth = upstream_proxy(parent_env)
        proxy = Proxy(ProxyConfig(
            confdir=files.ca.confdir,
            upstream_trust=files.upstream_bundle,
            proxy_user=PROXY_USER,
            proxy_password=password,
            home=str(home),
            connections=connections,
            run_id=files.directory.name,
            deny_unmatched=deny_unmatched,
            allow_hosts=allow_hosts,
            upstream_proxy=upstream,
            upstream_proxy_auth=upstream_auth,
            log_file=files.log_file,
            ui=ui,
            served=(vault, list(bindings)),
        ))
        port = proxy.start(wait=not early)
        stop.check()
        yield Session(proxy, files, *run_variables(parent_env, bindings, vault, files, port, password))
    finally:
        if proxy is not None:
            proxy.stop()
        files.remove()


def warn_exposed(secret_names, env: Mapping[str, str]) -> None:
    from authsome import hardening

    for name, pid, command in hardening.exposed_in_ancestors([n for n in secret_names if env.get(n)]):
        log.warning("%s is also in the environment of process %d (%s), which the command can read "
                    "(/proc/%d/environ); start the agent from a process without it (README: what is not promised)",
                    name, pid, command, pid)


def run(argv: Sequence[str], bindings: Sequence[Binding], vault: Vault, *, connections: list[str],
        deny_unmatched: bool = False, allow_hosts: Sequence[str] = (), ui: str | None = None,
        parent_env: Mapping[str, str] | None = None, on_ready=None, say=None) -> int:
    """Start the proxy, run the child, stop the proxy, return the child's status.

    With `ui="console"` the console owns the terminal: the child runs without
    one (stdin /dev/null, output to a file under the home), and the run ends
    when the console is quit. `say` gets what the user should read afterwards.
    """
    if not argv:
        raise UsageError("No command to run.", "put the command after --, for example: authsome run -- python my_agent.py")
    parent_env = dict(os.environ if parent_env is None else parent_env)
    stop = StopRequest()
    with _signals(stop.note, STOPPING):
        # Without a UI the command starts while mitmproxy is still being imported (its
        # connections wait in the listening socket's queue); a UI is up before it starts.
        with session(bindings, vault, connections=connections, deny_unmatched=deny_unmatched,
                     allow_hosts=tuple(allow_hosts), ui=ui, parent_env=parent_env, stop=stop,
                     early=ui is None) as s:
            env = with_run_variables(parent_env, s.values, s.removed)
            if on_ready is not None:
                on_ready(s.proxy)
            if ui == "console":
                return _beside_console(argv, env, s, stop, say or (lambda text: None))
            status = spawn(argv, env, stop, proxy=s.proxy)
            if s.proxy.failed:
                log.warning("the proxy stopped with an error while the command ran (%s); requests after that failed",
                            s.proxy.reason)
            elif s.proxy.settled and not s.proxy.alive:
                log.warning("the proxy stopped while the command ran; requests after that failed")
            return status


# -- the command beside the console ---------------------------------------------------

OUTPUT_DIR = "output"
OUTPUTS_KEPT = 20
GRACE = 5.0  # seconds a stopped command gets between SIGTERM and SIGKILL


def output_file(home: Path, run_id: str) -> Path:
    """A new 0600 file for a command's output, kept after the run (the newest OUTPUTS_KEPT of ended runs are)."""
    directory = paths.ensure_dir(home / OUTPUT_DIR)
    ended = [p for p in directory.glob("*.log") if not (home / "runs" / p.stem).exists()]  # never a running one's
    ended.sort(key=lambda p: p.stat().st_mtime)
    for stale in ended[:max(0, len(ended) - OUTPUTS_KEPT + 1)]:
        stale.unlink(missing_ok=True)
    return _write(directory / f"{run_id}.log", "")


def _beside_console(argv, env, s: Session, stop: StopRequest, say) -> int:
    proxy = s.proxy
    output = output_file(s.files.directory.parent.parent, s.run_id)
    child = None
    status = None
    try:
        with open(output, "ab") as sink:
            # A session of its own: no controlling terminal to fight the console over, and
            # the terminal's Ctrl-C reaches authsome (which asks), not the command.
            child = start(argv, env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                          start_new_session=True)
        proxy.running_command = f"The command (pid {child.pid})"
        with _console_signals(proxy, on_interrupt=proxy.ask_to_quit, group=child.pid):
            while proxy.alive and stop.signum is None:
                if status is None and child.poll() is not None:
                    status = exit_status(child.returncode)
                    proxy.running_command = None
                    proxy.say(f"authsome: the command exited with status {status}; its output is in {output}. "
                              "q quits.")
                time.sleep(0.1)
    except CommandNotStarted:
        output.unlink(missing_ok=True)
        raise
    finally:
        if child is not None:
            # Ctrl-C while it stops means: now (SIGKILL), not "leave it running".
            with _handlers({signal.SIGINT: lambda *_: _signal_group(child.pid, signal.SIGKILL)}):
                if child.poll() is None:
                    _stop_child(child, stop.signum or signal.SIGTERM, group=True)
                _end_stragglers(child.pid)
    if status is None:
        status = exit_status(child.returncode)
        say(f"the command was stopped (status {status}); its output is in {output}")
    else:
        say(f"the command exited with status {status}; its output is in {output}")
    return status


def _signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _end_stragglers(pgid: int) -> None:
    """What the command left in its process group (background jobs): SIGTERM, SIGKILL after 2 s.

    With no terminal, nothing else would ever tell them the run ended.
    """
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + 2
    while _signal_group(pgid, 0):
        if time.monotonic() > deadline:
            _signal_group(pgid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _stop_child(child: subprocess.Popen, signum: int, *, group: bool = False) -> None:
    """Signal the command (and its own process group, `group`); SIGKILL after GRACE seconds."""
    for sig, wait in ((signum, GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig) if group else child.send_signal(sig)
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# -- a proxy without a command: `authsome proxy` and `authsome attach` ---------------------

ATTACH_FILE = "attach.json"
RUN_ID = re.compile(r"[0-9a-f]{16}")  # what `prepare_files` names a run's directory


def serve(bindings: Sequence[Binding], vault: Vault, *, connections: list[str], deny_unmatched: bool = False,
          allow_hosts: Sequence[str] = (), ui: str | None = None, parent_env: Mapping[str, str] | None = None,
          on_ready=None) -> int:
    """Run the proxy until Ctrl-C (or SIGTERM, or quitting its console); commands join with `attach`.

    The environment `run` would give its command is kept in a 0600 file in
    the run's directory, which `attach` reads: the proxy's password is never
    printed or passed on a command line. Exits 0 when stopped, 7 when the
    proxy failed.
    """
    parent_env = dict(os.environ if parent_env is None else parent_env)
    stop = StopRequest()
    with _signals(stop.note, (signal.SIGINT, *STOPPING)):
        with session(bindings, vault, connections=connections, deny_unmatched=deny_unmatched,
                     allow_hosts=tuple(allow_hosts), ui=ui, parent_env=parent_env, stop=stop) as s:
            saved = {"set": s.values, "remove": s.removed, "routed": routed_domains(bindings)}
            _write(s.files.directory / ATTACH_FILE, json.dumps(saved))
            if on_ready is not None:
                on_ready(s)
            watching = _console_signals(s.proxy, on_interrupt=lambda: stop.note(signal.SIGINT, None)) \
                if ui == "console" else contextlib.nullcontext()
            with watching:
                while s.proxy.alive and stop.signum is None:
                    time.sleep(0.1)
            if s.proxy.failed:
                log.warning("the proxy stopped with an error: %s", s.proxy.reason)
                return ExitCode.PROXY
            if not s.proxy.alive and stop.signum is None and ui != "console":
                log.warning("the proxy stopped on its own; see `authsome doctor`")
                return ExitCode.PROXY
    return 0


@dataclass
class LiveProxy:
    run_id: str
    attach_file: Path


def live_proxies(home: Path) -> list[LiveProxy]:
    """The proxies of this home, on this host, run by this user, still running (`authsome proxy`)."""
    found = []
    runs = home / "runs"
    for directory in sorted(runs.iterdir()) if runs.is_dir() else ():
        if not RUN_ID.fullmatch(directory.name):
            continue
        pid = _owner_here(directory)
        if pid is not None and _ours_and_alive(pid) and (directory / ATTACH_FILE).is_file():
            found.append(LiveProxy(directory.name, directory / ATTACH_FILE))
    return found


def _ours_and_alive(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid() if Path("/proc/self").is_dir() else _alive(pid)
    except OSError:
        return False


def find_proxy(home: Path, run_id: str | None) -> LiveProxy:
    from authsome.errors import given

    proxies = live_proxies(home)
    if run_id is not None:
        matching = [p for p in proxies if p.run_id.startswith(run_id)] if run_id else []
        shown = f"'{run_id}'" if re.fullmatch(r"[0-9a-f]{1,16}", run_id) else given(run_id)
        if len(matching) == 1:
            return matching[0]
        if not matching:
            raise UsageError(f"No running proxy {shown} in this home.",
                             _running_list(proxies) or "start one with `authsome proxy`")
        raise UsageError(f"{shown} names more than one running proxy.", _running_list(proxies))
    if len(proxies) == 1:
        return proxies[0]
    if not proxies:
        raise UsageError("No proxy of this home runs.", "start one in another terminal: authsome proxy")
    raise UsageError("More than one proxy of this home runs; name one.", _running_list(proxies))


def _running_list(proxies: Sequence[LiveProxy]) -> str:
    return ("running: " + ", ".join(p.run_id for p in proxies) + "; for example: authsome attach "
            f"{proxies[0].run_id} -- CMD") if proxies else ""


# What `run_variables` sets, besides the placeholders of provider exports.
RUN_SET = {*PROXY_VARS, "NO_PROXY", "no_proxy", *COMBINED_BUNDLE_VARS, *PARENT_ONLY_BUNDLE_VARS, *ADDITIVE_CA_VARS,
           "NODE_USE_ENV_PROXY", "AUTHSOME_CA_CERT", "AUTHSOME_RUN"}
ALWAYS_REMOVED = ("AUTHSOME_MASTER_KEY", "AUTHSOME_BUNDLE", STORE_ENV, *ALL_PROXY_VARS)


def _read_attach_file(proxy: LiveProxy) -> dict:
    """The proxy's saved environment, if this user's proxy wrote it (0600, no symlink), else a UsageError."""
    stale = UsageError(f"The proxy {proxy.run_id} stopped, or its attach file is unusable.",
                       "start a proxy again with `authsome proxy`")
    try:
        fd = os.open(proxy.attach_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise stale from None
    with os.fdopen(fd) as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise UsageError(f"The attach file of proxy {proxy.run_id} is not private to you; it is not used.",
                             "stop that proxy; start one with `authsome proxy`")
        try:
            saved = json.load(fh)
            values, removed, routed = dict(saved["set"]), list(saved["remove"]), list(saved["routed"])
        except (ValueError, KeyError, TypeError):
            raise stale from None
    from authsome.envnames import reserved_problem

    directory = proxy.attach_file.parent
    proxy_url = re.compile(rf"http://{PROXY_USER}:[A-Za-z0-9_%-]+@127\.0\.0\.1:\d+")

    def what_run_sets(name: str, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if name in PROXY_VARS:
            return bool(proxy_url.fullmatch(value))
        if name in (*COMBINED_BUNDLE_VARS, *PARENT_ONLY_BUNDLE_VARS, *ADDITIVE_CA_VARS, "AUTHSOME_CA_CERT"):
            return Path(value).parent in (directory, directory / "ca")  # the run's own files
        if name in ("NODE_USE_ENV_PROXY", "AUTHSOME_RUN"):
            return value == "1"
        # Exports are checked by the provider schema the same way: never a process, loader, proxy or trust variable.
        return name in ("NO_PROXY", "no_proxy") or reserved_problem(name) is None

    for name, value in values.items():
        if not what_run_sets(name, value):
            raise UsageError(f"The attach file of proxy {proxy.run_id} sets variables `run` never sets; it is not used.",
                             "stop that proxy; start one with `authsome proxy`")
    return {"set": values, "remove": [str(n) for n in removed], "routed": [str(d) for d in routed]}


def attach(argv: Sequence[str], proxy: LiveProxy, env: Mapping[str, str] | None = None) -> None:
    """Replace this process with `argv`, in the environment the proxy's `run` would give it.

    What depends on this shell's own environment (NO_PROXY, the bundle
    variables `run` replaces only when set) is computed from it, as `run`
    would here; the rest is the proxy's.
    """
    env = dict(os.environ if env is None else env)
    saved = _read_attach_file(proxy)
    values, removed = saved["set"], [*saved["remove"], *ALWAYS_REMOVED]
    values["NO_PROXY"] = values["no_proxy"] = _no_proxy(env, saved["routed"])
    bundle = values.get(COMBINED_BUNDLE_VARS[0])
    for name in PARENT_ONLY_BUNDLE_VARS:
        values.pop(name, None)
        if env.get(name) and bundle:
            values[name] = bundle
    warn_exposed([n for n in removed if n in env] + [n for n in env if n.endswith(CLIENT_SECRET_SUFFIX)], env)
    child_env = with_run_variables(env, values, removed)
    try:
        with _inherited_descriptor_limit():
            os.execvpe(argv[0], list(argv), child_env)
    except OSError as exc:
        raise not_started(argv[0], exc) from None

"""`authsome run --ui console`, `authsome proxy` and `authsome attach`: watching an agent without seeing a secret.

The console is driven under tmux. A request held in flight by the test API
has already left with the credential (the API saw it) while every screen,
export, saved file and filter of the console sees only the placeholder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from authsome.models import PLACEHOLDER, Connection
from authsome.ui import HIDDEN
from authsome.vault import Vault
from tests.conftest import AUTHSOME
from tests.support.tmux import Terminal

TOKEN = "console-token-" + "C" * 24
KEY = "console-key-" + "Q" * 24
CHILD = """\
import os, sys, requests
open(sys.argv[1], "w").write(os.environ["HTTPS_PROXY"])
r = requests.get("https://api.acme.test/echo", params={"api_key": os.environ["ACMEQ_API_KEY"], "q": "coffee"})
print("query", r.status_code, flush=True)
r = requests.get("https://api.twitter.com/hold", headers={"Authorization": "Bearer " + os.environ["X_ACCESS_TOKEN"]})
print("held", r.status_code, flush=True)
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def connected(cli, tmp_path, home):
    """X with a bearer token; `acmeq`, whose key travels in the query (so it would show in the URL)."""
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 3600))
    definition = {"name": "acmeq", "display_name": "Acme query", "auth_type": "api_key", "flow": "api_key",
                  "api_key": {"in": "query", "query_param": "api_key"}, "api_url": "api.acme.test",
                  "export": {"api_key": "ACMEQ_API_KEY"}}
    (tmp_path / "acmeq.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "acmeq.json")]).code == 0
    assert cli(["login", "acmeq"], input=KEY).code == 0


def _release(api, test_ca) -> None:
    trust = ssl.create_default_context(cafile=str(test_ca.cert))
    urllib.request.urlopen(f"https://127.0.0.1:{api.port}/release", context=trust).read()


def _wait(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def terminal(tmp_path):
    opened = []

    def start(argv, env):
        t = Terminal(tmp_path, argv, env)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


def _exported(t: Terminal, tmp_path, name: str) -> str:
    path = tmp_path / f"export-{name.replace(' ', '-')}"
    t.command(f"{name} {path}")
    try:
        _wait(path.exists, f"`{name}` to write its file", timeout=15)
    except AssertionError:
        raise AssertionError(f"`{name}` wrote no file; the screen:\n{t.screen()}") from None
    time.sleep(0.2)
    return path.read_text(errors="replace")


def _inspect_focused_flow(t: Terminal, tmp_path, stage: str) -> list[str]:
    """Every view and export of the focused flow; returns what the files held."""
    t.keys("Enter")
    t.wait_for("Request")
    detail = ""
    for _ in range(4):  # Request, Response and Detail, starting where the view was left
        time.sleep(0.3)
        if "Server Connection" in (screen := t.screen()):
            detail = screen
        t.keys("Tab")
    assert detail, "no Detail tab seen"
    t.keys("q")
    files = [_exported(t, tmp_path, f"export.file {kind} @focus") for kind in ("curl", "httpie", "raw", "raw_request")]
    files.append(_exported(t, tmp_path, "cut.save @focus request.url,request.headers"))
    saved = tmp_path / f"saved-{stage}.flows"
    t.command(f"save.file @all {saved}")
    _wait(saved.exists, "the saved flows")
    time.sleep(0.2)
    files.append(saved.read_bytes().decode("latin-1"))
    return [detail, *files]


@pytest.mark.invariant
def test_the_console_never_shows_a_credential_in_flight_or_done(connected, api, trusting_env, test_ca, terminal,
                                                                tmp_path, home):
    proxy_file = tmp_path / "proxy-url"
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    t = terminal([*AUTHSOME, "run", "--ui", "console", *api.resolve("api.twitter.com", "api.acme.test"), "--",
                  sys.executable, str(child), str(proxy_file)], {**trusting_env, "AUTHSOME_HOME": str(home)})
    _wait(lambda: any(s["path"] == "/hold" for s in api.seen), "the held request to reach the API")
    held = next(s for s in api.seen if s["path"] == "/hold")
    assert held["headers"]["authorization"] == f"Bearer {TOKEN}"  # the credential did leave
    assert f"api_key={KEY}" in next(s for s in api.seen if s["path"].startswith("/echo"))["path"]
    password = re.search(r":([^:@]+)@", proxy_file.read_text()).group(1)

    t.wait_for("/hold")
    listing = t.screen()
    assert "🔑" in listing  # injected flows are marked
    t.keys("G")  # the newest flow: the one in flight
    in_flight = _inspect_focused_flow(t, tmp_path, "in-flight")
    assert "authsome: x/default injected (header:authorization)" in in_flight[0]
    assert f"Bearer {PLACEHOLDER}" in in_flight[1]  # the curl export: as the child sent it

    # A filter that matched the credential would be an oracle for it.
    for expression, shown in ((f'~h "Bearer {TOKEN[:16]}"', 0), (f"~u api_key={KEY[:14]}", 0),
                              (f'~h "Bearer {PLACEHOLDER}"', 1), (f"~u api_key={PLACEHOLDER}", 1)):
        t.command(f"set view_filter '{expression}'")
        screen = t.wait_for(f"[f:{expression}]")
        if f"[{shown}/{shown}]" not in screen:
            screen = t.wait_for(f"[{shown}/{shown}]")
    t.command("set view_filter ''")

    # The options view, after options changed (the filters above): no proxyauth line, on a screen
    # tall enough to show every option.
    t.resize(200, 220)
    t.keys("O")
    options = t.wait_for("view_filter")  # the last option: all of them are on the screen
    assert "listen_host" in options and "proxyauth" not in options
    t.keys("q")
    t.resize(200, 50)
    t.command("console.command.set proxyauth")  # the stock one puts the value into the prompt
    assert "set proxyauth" in t.wait_for("set proxyauth")
    t.keys("Escape")
    time.sleep(0.3)
    saved_options = _exported(t, tmp_path, "options.save")
    assert HIDDEN in saved_options and password not in saved_options

    _release(api, test_ca)
    t.wait_for("exited with status 0")
    t.keys("g")  # the query request, done
    done = _inspect_focused_flow(t, tmp_path, "done-query")
    t.keys("G")
    done += _inspect_focused_flow(t, tmp_path, "done-held")
    t.keys("E")  # the event log
    t.wait_for("exited with status 0")
    t.keys("q")

    seen = "\n".join(t.captures + in_flight + done + [saved_options])
    for secret in (TOKEN, KEY, password):
        assert secret not in seen
    assert PLACEHOLDER in seen

    t.keys("q")
    t.wait_for("Quit")
    t.keys("y")
    assert t.status() == 0
    output = re.search(r"its output is in (\S+)", t.stderr()).group(1)
    assert open(output).read().split() == ["query", "200", "held", "200"]
    assert os.stat(output).st_mode & 0o077 == 0


def test_the_console_is_refused_without_a_terminal(cli, home):
    r = cli(["run", "--ui", "console", "--", "true"])
    assert r.code == 2
    assert "--ui console needs a terminal" in r.err and "--ui web" in r.err
    assert cli(["proxy", "--ui", "console"]).code == 2


def _start_proxy(api, trusting_env, *extra: str) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([*AUTHSOME, "proxy", *api.resolve("api.twitter.com"), *extra],
                            env={**os.environ, **trusting_env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    while not lines or "Ctrl-C stops it" not in lines[-1]:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"the proxy did not start: {''.join(lines)}")
        lines.append(line)
    found = re.search(r"proxy (\w+) serves on 127\.0\.0\.1:(\d+)", "".join(lines))
    assert found and "in another terminal: authsome attach" in "".join(lines)
    if "--ui" in extra:
        assert "mitmproxy web UI at http://127.0.0.1:" in "".join(lines)
    return proc, found.group(1), int(found.group(2))


def _attach(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([*AUTHSOME, "attach", *args], env={**os.environ, **(env or {})}, text=True, **popen)


CURL = 'curl -sS -H "Authorization: Bearer $X_ACCESS_TOKEN" https://api.twitter.com{path}'


def test_proxy_and_attach_inject_audit_and_free_the_port_on_ctrl_c(cli, home, api, trusting_env, test_ca, tmp_path):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 3600))
    proxy, run_id, port = _start_proxy(api, trusting_env)
    try:
        attach_file = home / "runs" / run_id / "attach.json"
        assert attach_file.stat().st_mode & 0o777 == 0o600
        assert TOKEN not in attach_file.read_text() and PLACEHOLDER in attach_file.read_text()
        # The environment is the run's: placeholders, the proxy, the CA; never the token.
        env_dump = _attach("--", sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))",
                           env={"AUTHSOME_MASTER_KEY": "not-for-the-agent"}, stdout=subprocess.PIPE)
        child_env = json.loads(env_dump.communicate(timeout=30)[0])
        assert env_dump.returncode == 0
        assert child_env["X_ACCESS_TOKEN"] == PLACEHOLDER and child_env["AUTHSOME_RUN"] == "1"
        assert child_env["HTTPS_PROXY"].endswith(f"@127.0.0.1:{port}") and "AUTHSOME_MASTER_KEY" not in child_env
        assert TOKEN not in json.dumps(child_env)

        done = _attach("--", "sh", "-c", CURL.format(path="/echo"), stdout=subprocess.PIPE)
        out = done.communicate(timeout=30)[0]
        assert done.returncode == 0 and PLACEHOLDER in out and TOKEN not in out
        assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"
        _wait(lambda: re.search(r"200 +GET https://api.twitter.com/echo +injected x/default", cli(["log"]).out),
              "the audit record (written within a fraction of a second)")

        # A command still waiting when the proxy stops gets a connection error, not a hang.
        waiting = _attach(run_id[:6], "--", "sh", "-c", CURL.format(path="/hold"), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        _wait(lambda: any(s["path"] == "/hold" for s in api.seen), "the held request")
        proxy.send_signal(signal.SIGINT)
        assert proxy.wait(timeout=15) == 0
        assert waiting.wait(timeout=15) != 0
    finally:
        if proxy.poll() is None:
            proxy.kill()
        _release(api, test_ca)
    assert "proxy stopped" in proxy.stderr.read()
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the port
        socket.create_connection(("127.0.0.1", port), timeout=5)
    with socket.socket() as s:  # and a server can have it again (its old connections may linger in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    assert not (home / "runs" / run_id).exists()
    late = cli(["attach", "--", "true"])
    assert late.code == 2 and "No proxy of this home runs" in late.err


def test_attach_names_the_proxy_when_several_run(cli, home, api, trusting_env):
    first, first_id, _ = _start_proxy(api, trusting_env)
    second, second_id, _ = _start_proxy(api, trusting_env, "--ui", "web")
    try:
        ambiguous = cli(["attach", "--", "true"])
        assert ambiguous.code == 2 and first_id in ambiguous.err and second_id in ambiguous.err
        assert cli(["attach", second_id[:8], "--", "true"]).code == 0
        assert cli(["attach", "nosuchrun", "--", "true"]).code == 2
        assert cli(["attach", second_id, "--", "/nonexistent/cmd"]).code == 127
        assert cli(["attach", "true"]).code == 2  # no --
    finally:
        for proc in (first, second):
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)


def test_quitting_the_console_asks_while_the_command_runs_then_stops_it(terminal, home, tmp_path):
    marker = tmp_path / "started"
    t = terminal([*AUTHSOME, "run", "--ui", "console", "--", "sh", "-c", f"touch {marker}; exec sleep 60"],
                 {"AUTHSOME_HOME": str(home)})
    t.wait_for("Flows")
    _wait(marker.exists, "the command to start")
    t.keys("C-c")  # the terminal's Ctrl-C reaches authsome, not the command (which has no terminal)
    t.wait_for("still runs. Quit and stop it")
    t.keys("n")
    t.keys("Q")
    t.wait_for("still runs. Quit and stop it")
    t.keys("y")
    assert t.status() == 128 + signal.SIGTERM
    assert "the command was stopped" in t.stderr()


def test_proxy_with_the_console_shows_attached_requests(terminal, home, api, trusting_env, test_ca):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 3600))
    t = terminal([*AUTHSOME, "proxy", "--ui", "console", *api.resolve("api.twitter.com")],
                 {**trusting_env, "AUTHSOME_HOME": str(home)})
    t.wait_for("in another terminal: authsome attach -- CMD")
    done = _attach("--", "sh", "-c", CURL.format(path="/echo"), stdout=subprocess.PIPE)
    assert PLACEHOLDER in done.communicate(timeout=30)[0] and done.returncode == 0
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"
    t.wait_for("/echo")
    t.keys("C-c")  # nothing of its own runs: Ctrl-C stops the proxy
    assert t.status() == 0
    assert all(TOKEN not in capture for capture in t.captures)


def test_the_run_ends_what_the_command_left_behind_and_ctrl_c_while_stopping_kills(terminal, home, tmp_path):
    background = tmp_path / "background-pid"
    stubborn = tmp_path / "stubborn-pid"
    script = (f"sleep 301 & echo $! > {background}; "
              f"sh -c 'trap \"\" TERM; echo $$ > {stubborn}; while :; do sleep 0.1; done' & wait")
    t = terminal([*AUTHSOME, "run", "--ui", "console", "--", "sh", "-c", script], {"AUTHSOME_HOME": str(home)})
    t.wait_for("Flows")
    _wait(lambda: background.exists() and stubborn.exists() and stubborn.read_text().strip(), "the command to start")
    pids = [int(background.read_text()), int(stubborn.read_text())]
    t.keys("q")
    t.wait_for("still runs. Quit and stop it")
    t.keys("y")
    time.sleep(0.5)
    t.keys("C-c")  # during the grace a stopped command gets: now, not never
    assert t.status() == 128 + signal.SIGTERM
    for pid in pids:
        _wait(lambda: not os.path.exists(f"/proc/{pid}"), f"process {pid} to end", timeout=10)


def test_a_console_command_that_cannot_start_leaves_no_output_file(terminal, home):
    t = terminal([*AUTHSOME, "run", "--ui", "console", "--", "/nonexistent/agent"], {"AUTHSOME_HOME": str(home)})
    assert t.status() == 127
    assert "Command not found: /nonexistent/agent" in t.stderr()
    assert list((home / "output").glob("*.log")) == []


def _planted_proxy(home, *, mode=0o600, owner=None, values=None) -> str:
    run_id = "0123456789abcdef"
    directory = home / "runs" / run_id
    directory.mkdir(parents=True, mode=0o700)
    (directory / "pid").write_text(f"{socket.gethostname()} {os.getpid()}")  # a live process of ours
    attach = directory / "attach.json"
    attach.write_text(json.dumps({"set": values or {"HTTPS_PROXY": "http://authsome:pw@127.0.0.1:9"}, "remove": [],
                                  "routed": []}))
    attach.chmod(mode)
    if owner is not None:
        os.chown(attach, owner, -1)
    return run_id


@pytest.mark.invariant
@pytest.mark.parametrize("plant, why", [
    (dict(mode=0o644), "not private to you"),
    (dict(owner=65534), "not private to you"),
    (dict(values={"LD_PRELOAD": "/tmp/evil.so"}), "sets variables `run` never sets"),
    (dict(values={"HTTPS_PROXY": "http://evil.example:8080"}), "sets variables `run` never sets"),
    (dict(values={"SSL_CERT_FILE": "/tmp/evil-ca.pem"}), "sets variables `run` never sets"),
])
def test_attach_refuses_an_attach_file_it_cannot_trust(cli, home, plant, why):
    cli(["list"])  # a home of ours
    if plant.get("owner") is not None and os.getuid() != 0:
        plant["owner"] = None
        plant["mode"] = 0o640  # as another user cannot be made without root: the other refusal
    run_id = _planted_proxy(home, **plant)
    r = cli(["attach", run_id, "--", "env"])
    assert r.code == 2 and why in r.err
    assert "evil" not in r.out


def test_attach_never_passes_authsomes_own_secrets(cli, home, tmp_path):
    cli(["list"])
    run_id = _planted_proxy(home, values={"HTTPS_PROXY": "http://authsome:pw@127.0.0.1:9", "X_ACCESS_TOKEN": PLACEHOLDER})
    r = cli(["attach", run_id, "--", "env"], env={"AUTHSOME_MASTER_KEY": "not-for-the-agent", "ALL_PROXY": "x"})
    assert r.code == 0
    assert "not-for-the-agent" not in r.out and "ALL_PROXY" not in r.out
    assert f"X_ACCESS_TOKEN={PLACEHOLDER}" in r.out


def test_a_fifo_planted_as_a_runs_pid_file_hangs_nothing(cli, home):
    cli(["list"])
    directory = home / "runs" / "0123456789abcdef"
    directory.mkdir(parents=True, mode=0o700)
    os.mkfifo(directory / "pid")
    assert cli(["attach", "--", "true"], timeout=20).code == 2  # no proxy: the FIFO is not one
    assert cli(["run", "--", "true"], timeout=20).code == 0  # the sweep of stale runs skips it

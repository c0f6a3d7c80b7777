"""The addons in stock `mitmdump -s ...`, as a user debugging injected traffic would load them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.addons.conftest import TOKEN

ADDONS = Path(__file__).resolve().parents[2] / "addons"
MITMDUMP = Path(sys.executable).parent / "mitmdump"


def _start(tool: str, x_home, api, test_ca, tmp_path, extra: list[str]):
    """Stock mitmdump/mitmweb with the addons loaded by -s; (proxy port, log, CA cert, process)."""
    confdir = tmp_path / "conf"
    confdir.mkdir(mode=0o700)
    from authsome.certs import ca as run_ca
    from authsome.providers.routes import parse_routes

    run_ca.create(confdir / "ca", parse_routes(["api.twitter.com", "api.x.com"]))
    argv = [str(MITMDUMP.parent / tool), "--listen-host", "127.0.0.1", "--listen-port", "0",
            *[a for name in ("guard", "route", "inject", "scrub", "refresh", "audit") for a in ("-s", str(ADDONS / f"{name}.py"))],
            "--set", f"confdir={confdir / 'ca'}", "--set", "upstream_cert=false",
            "--set", f"ssl_verify_upstream_trusted_ca={test_ca.cert}", "--set", "proxyauth=agent:s3cret",
            "--set", f"authsome_home={x_home}",
            "--set", f"save_stream_file={tmp_path / 'saved.flows'}",
            "--set", f"authsome_resolve=api.twitter.com:443:127.0.0.1:{api.port}",
            "--set", f"authsome_resolve=other.test:443:127.0.0.1:{api.port}", *extra]
    log = tmp_path / f"{tool}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(tmp_path)})
    deadline = time.monotonic() + 30
    port = None
    while port is None:
        m = re.search(r"proxy listening at \S*?:(\d+)", log.read_text(errors="replace"))
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{tool} did not start:\n{log.read_text(errors='replace')}")
        else:
            time.sleep(0.05)
    return port, log, confdir / "ca" / "authsome-ca-cert.pem", proc


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def mitmdump(x_home, api, test_ca, tmp_path):
    started = _start("mitmdump", x_home, api, test_ca, tmp_path, ["--set", "flow_detail=3"])
    yield started
    _stop(started[3])


@pytest.fixture
def mitmweb(x_home, api, test_ca, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        web_port = s.getsockname()[1]
    started = _start("mitmweb", x_home, api, test_ca, tmp_path,
                     ["--set", f"web_port={web_port}", "--set", "web_open_browser=false",
                      "--set", "web_password=web-ui-pass"])
    deadline = time.monotonic() + 30
    while "Web server listening" not in started[1].read_text(errors="replace"):
        assert time.monotonic() < deadline and started[3].poll() is None, started[1].read_text(errors="replace")
        time.sleep(0.05)
    yield (*started, f"http://127.0.0.1:{web_port}/")
    _stop(started[3])


@pytest.mark.invariant
def test_stock_mitmdump_injects_for_routed_hosts_and_never_prints_the_token(mitmdump, api, test_ca):
    port, log, ca_cert, proc = mitmdump
    proxy = f"http://agent:s3cret@127.0.0.1:{port}"
    routed = subprocess.run(["curl", "-sS", "--proxy", proxy, "--cacert", str(ca_cert),
                             "-H", "Authorization: Bearer authsome-proxy-managed", "https://api.twitter.com/2/users/me"],
                            capture_output=True, text=True, timeout=30)
    assert routed.returncode == 0, routed.stderr
    # Not routed: tunnelled, so the client sees the server's own certificate (the test CA's).
    other = subprocess.run(["curl", "-sS", "--proxy", proxy, "--cacert", str(test_ca.cert), "https://other.test/"],
                           capture_output=True, text=True, timeout=30)
    assert other.returncode == 0, other.stderr
    stranger = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--proxy",
                               f"http://127.0.0.1:{port}", "http://api.twitter.com/"], capture_output=True, text=True)
    assert stranger.stdout == "407"
    seen = {e["sni"]: e["headers"].get("authorization") for e in api.seen}
    assert seen == {"api.twitter.com": f"Bearer {TOKEN}", "other.test": None}
    proc.terminate()
    proc.wait(timeout=10)
    printed = log.read_text(errors="replace")  # flow_detail=3: every request header is printed
    assert "api.twitter.com" in printed and "Bearer authsome-proxy-managed" in printed
    assert TOKEN not in printed


@pytest.mark.invariant
def test_stock_mitmdump_saved_flows_hold_no_token_after_an_error_or_a_shutdown(mitmdump, api, test_ca, tmp_path):
    """`mitmdump -w`: a request the server dropped, and one still waiting when mitmdump stops."""
    port, log, ca_cert, proc = mitmdump
    curl = ["curl", "-sS", "--proxy", f"http://agent:s3cret@127.0.0.1:{port}", "--cacert", str(ca_cert),
            "-H", "Authorization: Bearer authsome-proxy-managed"]
    dropped = subprocess.Popen([*curl, "https://api.twitter.com/hold-drop"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not api.seen:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    api.release()
    dropped.wait(timeout=30)
    api.clear()
    held = subprocess.Popen([*curl, "https://api.twitter.com/hold"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not api.seen:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    proc.terminate()  # mitmproxy's Save writes the unanswered request at shutdown
    proc.wait(timeout=10)
    held.kill()
    api.release()
    saved = (tmp_path / "saved.flows").read_bytes()
    assert b"/hold-drop" in saved and b"/hold," in saved
    assert TOKEN.encode() not in saved


def _wait_seen(api) -> None:
    deadline = time.monotonic() + 30
    while not api.seen:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.invariant
def test_stock_mitmweb_never_hands_out_an_in_flight_token(mitmweb, api):
    """The addons in a stock `mitmweb -s` protect its UI as `authsome run --ui web` does."""
    import httpx

    port, log, ca_cert, proc, web = mitmweb
    held = subprocess.Popen(["curl", "-sS", "--proxy", f"http://agent:s3cret@127.0.0.1:{port}", "--cacert", str(ca_cert),
                             "-H", "Authorization: Bearer authsome-proxy-managed", "https://api.twitter.com/hold"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_seen(api)
    assert api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    with httpx.Client(base_url=web, headers={"Authorization": "Bearer web-ui-pass"}, trust_env=False) as ui:
        flows, dump, options = ui.get("flows"), ui.get("flows/dump"), ui.get("options")
    api.release()
    held.wait(timeout=30)
    assert flows.status_code == dump.status_code == options.status_code == 200
    assert "/hold" in flows.text and TOKEN not in flows.text
    assert b"/hold" in dump.content and TOKEN.encode() not in dump.content
    assert "s3cret" not in options.text


@pytest.mark.invariant
def test_stock_mitmdump_closes_connections_that_never_authenticate(x_home, api, test_ca, tmp_path):
    """Idle strangers cannot pile up until the proxy runs out of descriptors; the child's connections stay."""
    import socket

    port, log, ca_cert, proc = _start("mitmdump", x_home, api, test_ca, tmp_path, ["--set", "authsome_auth_timeout=1"])
    try:
        stranger = socket.create_connection(("127.0.0.1", port))
        stranger.settimeout(15)
        child = socket.create_connection(("127.0.0.1", port))
        child.sendall(b"CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n"
                      b"Proxy-Authorization: Basic YWdlbnQ6czNjcmV0\r\n\r\n")  # agent:s3cret
        assert b" 200 " in child.recv(200)
        assert stranger.recv(1) == b""  # closed after the timeout, not after mitmproxy's 10 minutes
        child.settimeout(3)
        with pytest.raises(socket.timeout):
            child.recv(1)  # the authenticated tunnel is still open
    finally:
        _stop(proc)

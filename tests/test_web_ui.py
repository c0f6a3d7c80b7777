"""`authsome run --ui web`: mitmproxy's web UI never shows or hands out a secret.

A request held by the test API keeps the injected credential on its way out;
every way the UI has to reach that flow (the live view, the flow list, the
flow download, commands, the options page) must see only the placeholder.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from authsome.models import PLACEHOLDER, Connection
from authsome.vault import Vault
from authsome.ui import HIDDEN
from tests.conftest import AUTHSOME

TOKEN = "web-ui-token-" + "W" * 24
CHILD = """\
import os, sys, requests
print(os.environ['HTTPS_PROXY'], flush=True)
r = requests.get('https://api.twitter.com' + sys.argv[1], headers={'Authorization': 'Bearer ' + os.environ['X_ACCESS_TOKEN']})
print(r.status_code, flush=True)
sys.stdin.readline()
"""


@contextlib.contextmanager
def held_run(api, trusting_env, test_ca, path="/hold", status="200"):
    """`authsome run --ui web` whose child's request waits at the API.

    Yields (UI URL, proxy URL, release): `release()` lets the API answer; the
    run goes on until the block ends.
    """
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 3600))
    proc = subprocess.Popen([*AUTHSOME, "run", "--ui", "web", *api.resolve("api.twitter.com"), "--", sys.executable, "-c", CHILD, path],
                            env={**os.environ, **trusting_env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        found = re.search(r"web UI at (\S+)", first)
        if found is None:
            proc.kill()
            pytest.fail(f"no web UI announced; stderr: {first + proc.stderr.read()}")
        url = found.group(1)
        proxy_url = proc.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while not api.seen:  # the request reached the server, which holds its answer
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"

        def release() -> None:
            trust = ssl.create_default_context(cafile=str(test_ca.cert))
            urllib.request.urlopen(f"https://127.0.0.1:{api.port}/release", context=trust).read()
            assert proc.stdout.readline().strip() == status

        yield url, proxy_url, release
    finally:
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.wait(timeout=30)
    assert proc.returncode == 0


@pytest.mark.invariant
def test_web_ui_never_shows_the_token_even_while_the_request_is_in_flight(home, api, trusting_env, test_ca, browser):
    with held_run(api, trusting_env, test_ca) as (url, _, release):
        browser.goto(url)
        browser.get_by_text("/hold").first.click()
        browser.get_by_text(PLACEHOLDER).first.wait_for()
        assert TOKEN not in browser.content()
        flows = browser.request.get(url.split("?")[0] + "flows").text()
        assert "/hold" in flows and TOKEN not in flows
        release()
        browser.reload()
        browser.get_by_text("/hold").first.click()
        browser.get_by_text(PLACEHOLDER).first.wait_for()
        assert TOKEN not in browser.content()


def _xsrf_cookie(page) -> str:
    """The UI's XSRF cookie, set once its scripts have talked to the server."""
    deadline = time.monotonic() + 30
    while True:
        for cookie in page.context.cookies():
            if cookie["name"] == "_mitmproxy_xsrf":
                return cookie["value"]
        assert time.monotonic() < deadline, "the web UI never set its XSRF cookie"
        time.sleep(0.05)


@pytest.mark.invariant
def test_web_ui_downloads_commands_and_options_hand_out_no_secret(home, api, trusting_env, test_ca, browser):
    with held_run(api, trusting_env, test_ca) as (url, proxy_url, release):
        base = url.split("?")[0]
        browser.goto(url)  # the token in the URL logs the browser in
        xsrf = _xsrf_cookie(browser)

        def command(name: str, *args: str):
            r = browser.request.post(f"{base}commands/{name}", data={"arguments": list(args)},
                                     headers={"X-XSRFToken": xsrf})
            assert r.ok, r.text()
            body = r.json()
            assert "error" not in body, body
            return body["value"]

        flow_id = browser.request.get(base + "flows").json()[0]["id"]
        # The saved-flows download, the way a bug report gets its attachment.
        dump = browser.request.get(base + "flows/dump").body()
        assert b"/hold" in dump and TOKEN.encode() not in dump and PLACEHOLDER.encode() in dump
        curl = command("export", "curl", f"@{flow_id}")
        assert PLACEHOLDER in curl and TOKEN not in curl
        cut = command("cut", "@all", "request.header[Authorization]")
        assert str(cut) == str([[f"Bearer {PLACEHOLDER}"]])
        # The proxy password would let any local process use this run's proxy.
        password = re.match(r"http://[^:]+:([^@]+)@", proxy_url).group(1)
        options = browser.request.get(base + "options").text()
        assert password not in options
        assert browser.request.get(base + "options").json()["proxyauth"]["value"] == HIDDEN
        release()


@pytest.mark.invariant
def test_web_ui_push_and_saved_flows_of_a_failed_request_show_no_token(home, api, trusting_env, test_ca, browser,
                                                                        tmp_path):
    # The upstream drops the held request: the error reaches the UI's live view and
    # mitmproxy's flow saving before the Redact addon has put the placeholder back.
    frames: list[str] = []
    browser.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    saved = tmp_path / "saved.flows"
    with held_run(api, trusting_env, test_ca, path="/hold-drop", status="502") as (url, _, release):
        browser.goto(url)
        browser.get_by_text("/hold-drop").first.wait_for()
        r = browser.request.put(url.split("?")[0] + "options", data={"save_stream_file": str(saved)},
                                headers={"X-XSRFToken": _xsrf_cookie(browser)})
        assert r.ok, r.text()
        release()
        browser.get_by_text("/hold-drop").first.click()
        browser.get_by_text(PLACEHOLDER).first.wait_for()
        deadline = time.monotonic() + 30
        while not any("/hold-drop" in f and '"error"' in f and "msg" in f for f in frames):
            assert time.monotonic() < deadline, f"no update with the error reached the UI: {frames}"
            browser.wait_for_timeout(50)  # lets Playwright deliver the websocket frames
    assert frames and not any(TOKEN in f for f in frames)
    assert b"/hold-drop" in saved.read_bytes() and TOKEN.encode() not in saved.read_bytes()

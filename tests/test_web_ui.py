"""`authsome run --ui web`: mitmproxy's web UI in a real browser shows the placeholder, never the token."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from authsome.models import Connection
from authsome.vault import Vault
from tests.conftest import AUTHSOME

TOKEN = "web-ui-token-" + "W" * 24
CHILD = """\
import os, sys, requests
r = requests.get('https://api.twitter.com/hold', headers={'Authorization': 'Bearer ' + os.environ['X_ACCESS_TOKEN']})
print(r.status_code, flush=True)
sys.stdin.readline()
"""


@pytest.mark.invariant
def test_web_ui_never_shows_the_token_even_while_the_request_is_in_flight(home, api, trusting_env, test_ca, browser):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 3600))
    proc = subprocess.Popen([*AUTHSOME, "run", "--ui", "web", *api.resolve("api.twitter.com"), "--", sys.executable, "-c", CHILD],
                            env={**os.environ, **trusting_env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"web UI at (\S+)", proc.stderr.readline()).group(1)
        deadline = time.monotonic() + 30
        while not api.seen:  # the request reached the server, which holds its answer
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
        browser.goto(url)
        browser.get_by_text("/hold").first.click()
        browser.get_by_text("authsome-proxy-managed").first.wait_for()
        assert TOKEN not in browser.content()
        flows = browser.request.get(url.split("?")[0] + "flows").text()
        assert "/hold" in flows and TOKEN not in flows
        release = ssl.create_default_context(cafile=str(test_ca.cert))
        urllib.request.urlopen(f"https://127.0.0.1:{api.port}/release", context=release).read()
        assert proc.stdout.readline().strip() == "200"
        browser.reload()
        browser.get_by_text("/hold").first.click()
        browser.get_by_text("authsome-proxy-managed").first.wait_for()
        assert TOKEN not in browser.content()
    finally:
        if proc.poll() is None:
            proc.stdin.write("\n")
            proc.stdin.flush()
        proc.wait(timeout=30)
    assert proc.returncode == 0

"""Shared fixtures. Every test gets its own AUTHSOME_HOME; nothing touches ~/.authsome.

Real-process fixtures (servers, browsers, proxies) live here too, each on a
free loopback port, waiting for readiness with a deadline and stopped by pid.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AUTHSOME = [sys.executable, "-m", "authsome"]

# Variables of the developer's own environment that would change what
# authsome does under test.
_SCRUB = ("AUTHSOME_MASTER_KEY", "CI", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy",
          "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh, not yet created AUTHSOME_HOME for every test."""
    root = tmp_path_factory.mktemp("authsome") / "home"
    monkeypatch.setenv("AUTHSOME_HOME", str(root))
    monkeypatch.setenv("AUTHSOME_KEYRING", "0")
    for name in _SCRUB:
        monkeypatch.delenv(name, raising=False)
    from authsome.cli import common

    common.reset()
    return root


@pytest.fixture
def master_key(monkeypatch) -> str:
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("AUTHSOME_MASTER_KEY", key)
    return key


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def run_cli(args: Sequence[str], *, input: str | None = None, env: dict | None = None,
            cwd: Path | None = None, timeout: float = 60) -> Result:
    """Run `python -m authsome ARGS` as a real subprocess."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [*AUTHSOME, *args], input=input, capture_output=True, text=True,
        env=full_env, cwd=cwd or REPO, timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """A CA standing in for the public web PKI; servers under test present its leaves."""
    from tests.support.tls import make_ca

    return make_ca(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def api_server(test_ca, tmp_path_factory):
    """HTTPS stand-in for api.twitter.com and friends (plus a plain-HTTP twin); records every request."""
    from tests.support.api import ApiServer

    server = ApiServer(test_ca, tmp_path_factory.mktemp("api"))
    yield server
    server.close()


@pytest.fixture
def api(api_server):
    api_server.clear()
    return api_server


@pytest.fixture
def trusting_env(test_ca) -> dict:
    """The environment of a user whose machine trusts the test CA (as a corporate CA would be)."""
    return {"SSL_CERT_FILE": str(test_ca.cert), "REQUESTS_CA_BUNDLE": str(test_ca.cert),
            "CURL_CA_BUNDLE": str(test_ca.cert)}

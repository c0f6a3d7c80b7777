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
            cwd: Path | None = None, timeout: float = 60, wrap=None) -> Result:
    """Run `python -m authsome ARGS` as a real subprocess (`wrap(argv)`: started through another command)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    argv = [*AUTHSOME, *args]
    proc = subprocess.run(
        wrap(argv) if wrap else argv, input=input, capture_output=True, text=True,
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


X_HOSTS = ["twitter.com", "api.twitter.com", "api.x.com"]


@pytest.fixture(scope="session")
def login_port() -> int:
    """127.0.0.1:7998, the seed's address, when it is free; another free port otherwise."""
    import socket

    for port in (7998, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


@pytest.fixture(scope="session")
def oauth_server(test_ca, login_port, tmp_path_factory):
    """oidc-provider standing in for all of X: twitter.com (authorize), api.twitter.com (token, API).

    The issuer is https://twitter.com; clients reach it through AUTHSOME_RESOLVE /
    --resolve and the browser through its host map, so the bundled `x`
    definition is used unchanged.
    """
    from tests.support.oidc import X_ROUTES, default_clients, oidc_server_available, start_oidc_server

    if not oidc_server_available():
        pytest.fail("the test OAuth server is not installed: run `bash scripts/setup`")
    server = start_oidc_server(
        tmp_path_factory.mktemp("oidc"), test_ca, hostnames=X_HOSTS, issuer="https://twitter.com",
        clients=default_clients([f"http://127.0.0.1:{login_port}/auth/callback/oauth"]),
        routes=X_ROUTES, access_token_ttl=600,
    )
    yield server
    server.stop()


@pytest.fixture
def oauth(oauth_server):
    oauth_server.reset()
    yield oauth_server
    if oauth_server.process is None or oauth_server.process.poll() is not None:
        pytest.fail(f"the OAuth server died:\n{oauth_server.log}")


@pytest.fixture
def x_env(oauth_server, trusting_env, login_port) -> dict:
    """Environment for CLI processes that talk to the X stand-in."""
    resolve = " ".join(f"{h}:443:127.0.0.1:{oauth_server.port}" for h in X_HOSTS)
    return {**trusting_env, "AUTHSOME_RESOLVE": resolve, "AUTHSOME_LOGIN_PORT": str(login_port)}


@pytest.fixture(scope="session")
def _chromium(oauth_server):
    from tests.support.browser import launch_browser

    host_map = {h: f"127.0.0.1:{oauth_server.port}" for h in X_HOSTS}
    with launch_browser(trust=[oauth_server.leaf], host_map=host_map) as context:
        yield context


@pytest.fixture
def browser(_chromium):
    """A page of headless Chromium that reaches the X stand-in; cookies cleared per test."""
    _chromium.clear_cookies()
    page = _chromium.new_page()
    yield page
    page.close()


@pytest.fixture
def connect_x(oauth, home):
    """Store an X connection whose tokens the stand-in just issued (a fresh grant each call).

    `revoke_access`: the API already refuses the access token (authsome does not know).
    `expires_in`: how long authsome believes the access token still lives, of `lifetime` in all.
    """
    import time

    from authsome.models import ClientCredentials, Connection
    from authsome.vault import Vault

    def make(*, name: str = "default", revoke_access: bool = False, expires_in: float = 600,
             account: str = "alice", lifetime: float = 600) -> dict:
        tokens = oauth.issue(revoke_access=revoke_access, account=account)
        vault = Vault.open()
        vault.put_client(ClientCredentials(provider="x", client_id="confidential-basic", client_secret="basic-secret"))
        vault.put_connection(Connection(
            provider="x", name=name, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            token_type="Bearer", expires_at=time.time() + expires_in, scopes=tuple(tokens["scope"].split()),
            issued_at=time.time() + expires_in - lifetime))  # a token of `lifetime` s with expires_in left
        return tokens

    return make


# -- a real PostgreSQL for the shared store (tests/support/postgres.py) ---------------------------------------------

@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    from tests.support.postgres import Postgres, binaries

    if binaries() is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/setup`")
    with Postgres.start(tmp_path_factory.mktemp("pg")) as pg:
        yield pg
    # a server left running by a failed test is stopped by __exit__


@pytest.fixture
def store(postgres, request, monkeypatch, master_key) -> str:
    """A fresh database with authsome's tables; this test's own home (machine A) uses it."""
    if postgres.sql("SELECT 1") != [(1,)]:  # a test may have stopped it
        postgres.start_again()
    url = postgres.create_database(f"t{abs(hash(request.node.nodeid)) % 10**8}")
    monkeypatch.setenv("AUTHSOME_STORE", url)
    assert run_cli(["store", "init"]).code == 0
    return url

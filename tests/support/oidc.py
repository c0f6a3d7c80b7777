"""Start the oidc-provider test server (tests/servers/oidc/server.mjs) from Python.

    ca = make_ca(tmp / "pki")
    with start_oidc_server(tmp / "oidc", ca, clients=[...], routes=X_ROUTES) as srv:
        httpx.get(srv.url + "/.well-known/openid-configuration", verify=srv.ca_path)

The node dependencies must be installed first:
``npm ci --prefix tests/servers/oidc`` (``oidc_server_available()`` tells whether they are).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .tls import CA, Leaf, make_leaf

__all__ = [
    "DEFAULT_REDIRECT",
    "SERVER_DIR",
    "X_ROUTES",
    "X_SCOPES",
    "DEVICE_GRANT",
    "OidcServer",
    "oidc_server_available",
    "start_oidc_server",
    "default_clients",
]

SERVER_DIR = Path(__file__).resolve().parent.parent / "servers" / "oidc"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# X (Twitter) OAuth 2.0 endpoint paths; the fake API serves /2/users/me and /2/tweets.
X_ROUTES = {
    "authorization": "/i/oauth2/authorize",
    "token": "/2/oauth2/token",
    "revocation": "/2/oauth2/revoke",
}
X_SCOPES = ["tweet.read", "tweet.write", "users.read", "offline.access"]

DEFAULT_REDIRECT = "http://127.0.0.1:7998/auth/callback/oauth"


def default_clients(redirect_uris: list[str] | None = None) -> list[dict[str, Any]]:
    """One client per token endpoint auth method, all with every grant we use.

    ``application_type`` is "web" (oidc-provider's default): http redirect URIs are
    allowed and matched exactly, port included. A "native" client may only use http
    with loopback hosts (localhost, 127.0.0.1, [::1]) but then any port matches
    (RFC 8252 section 7.3), and may not use https with a loopback host.
    """
    redirect_uris = redirect_uris or [DEFAULT_REDIRECT]
    grants = ["authorization_code", "refresh_token", DEVICE_GRANT]
    return [
        {
            "client_id": "confidential-basic",
            "client_secret": "basic-secret",
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": redirect_uris,
            "grant_types": grants,
            "response_types": ["code"],
        },
        {
            "client_id": "confidential-post",
            "client_secret": "post-secret",
            "token_endpoint_auth_method": "client_secret_post",
            "redirect_uris": redirect_uris,
            "grant_types": grants,
            "response_types": ["code"],
        },
        {
            # Public: PKCE S256 is mandatory (oidc-provider default for auth method none).
            "client_id": "public",
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "redirect_uris": redirect_uris,
            "grant_types": grants,
            "response_types": ["code"],
        },
    ]


def oidc_server_available() -> bool:
    """True when node is on PATH and oidc-provider is installed next to server.mjs."""
    return shutil.which("node") is not None and (SERVER_DIR / "node_modules" / "oidc-provider").is_dir()


@dataclass
class OidcServer:
    url: str  # where the server listens, e.g. https://127.0.0.1:41234
    ca_path: str  # PEM of the CA that signed the server cert: verify=ca_path
    leaf: Leaf
    config: dict[str, Any]
    config_path: Path
    log_path: Path
    issuer_url: str = ""  # the configured issuer; equals url unless overridden
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return self.issuer_url or self.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def endpoint(self, name: str) -> str:
        """Absolute URL of an oidc-provider route, honouring the routes overrides."""
        defaults = {
            "authorization": "/auth", "token": "/token", "revocation": "/token/revocation",
            "introspection": "/token/introspection", "registration": "/reg",
            "device_authorization": "/device/auth", "code_verification": "/device",
            "userinfo": "/me", "jwks": "/jwks",
        }
        return self.url + self.config.get("routes", {}).get(name, defaults[name])

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the test CA only (for httpx ``verify=``; requests takes ``ca_path``)."""
        return ssl.create_default_context(cafile=self.ca_path)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client that trusts only the test CA and ignores proxy env vars.

        No kept-alive connections: a test that pauses (a browser step) longer
        than Node's 5 s idle timeout would race the server closing the socket.
        """
        kwargs.setdefault("limits", httpx.Limits(max_keepalive_connections=0))
        return httpx.Client(
            base_url=self.url, verify=self.ssl_context(), trust_env=False, timeout=10, **kwargs
        )

    def stats(self) -> dict[str, Any]:
        with self.client() as c:
            r = c.get("/__test/stats")
            r.raise_for_status()
            return r.json()

    def issue(self, client_id: str = "confidential-basic", account: str = "alice",
              scope: str | None = None, revoke_access: bool = False) -> dict[str, Any]:
        """A fresh grant's tokens, minted server-side (see server.mjs `issue`)."""
        body: dict[str, Any] = {"client_id": client_id, "account": account, "revoke_access": revoke_access}
        if scope:
            body["scope"] = scope
        with self.client() as c:
            r = c.post("/__test/issue", json=body)
            r.raise_for_status()
            return r.json()

    def delay_token_endpoint(self, ms: int) -> None:
        """Hold token requests `ms` milliseconds before processing them (0: off)."""
        with self.client() as c:
            c.post("/__test/delay", json={"token_ms": ms}).raise_for_status()

    def slow_down(self, count: int) -> None:
        """Answer the next `count` token requests with `slow_down`."""
        with self.client() as c:
            c.post("/__test/slow_down", json={"count": count}).raise_for_status()

    def drop_token_requests(self, count: int) -> None:
        """Reset the connection of the next `count` token requests without an answer."""
        with self.client() as c:
            c.post("/__test/drop", json={"count": count}).raise_for_status()

    def access_token_ttl(self, seconds: int) -> None:
        """Issue access tokens that live `seconds` (until the next reset)."""
        with self.client() as c:
            c.post("/__test/ttl", json={"access_token_ttl": seconds}).raise_for_status()

    def token_requests_waiting(self) -> int:
        with self.client() as c:
            return c.get("/__test/waiting").json()["token"]

    def reset(self) -> None:
        with self.client() as c:
            c.post("/__test/reset").raise_for_status()

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> OidcServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_oidc_server(
    workdir: Path,
    ca: CA,
    *,
    port: int = 0,
    hostnames: list[str] | tuple[str, ...] = (),
    clients: list[dict[str, Any]] | None = None,
    routes: dict[str, str] | None = None,
    scopes: list[str] | None = None,
    access_token_ttl: int = 30,
    refresh_token_ttl: int | None = None,
    issuer: str | None = None,
    extra_config: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> OidcServer:
    """Write the config, start ``node server.mjs`` and wait for its READY line.

    ``port=0`` lets the server bind a free port itself (no race between picking a
    port and binding it); the real URL comes back in the READY line. ``hostnames``
    go into the leaf certificate besides localhost/127.0.0.1/::1. Raises
    RuntimeError with the server log if it exits or is not ready by ``timeout``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    leaf = make_leaf(ca, workdir, list(hostnames), stem="oidc-server")
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "cert": str(leaf.cert),
        "key": str(leaf.key),
        "clients": default_clients() if clients is None else clients,
        "routes": X_ROUTES if routes is None else routes,
        "scopes": X_SCOPES if scopes is None else scopes,
        "access_token_ttl": access_token_ttl,
    }
    if refresh_token_ttl is not None:
        config["refresh_token_ttl"] = refresh_token_ttl
    if issuer is not None:
        config["issuer"] = issuer
    config.update(extra_config or {})
    config_path = workdir / "oidc-config.json"
    config_path.write_text(json.dumps(config, indent=2))
    log_path = workdir / "oidc-server.log"

    server = OidcServer(
        url="", ca_path=str(ca.cert), leaf=leaf, config=config,
        config_path=config_path, log_path=log_path,
    )
    with log_path.open("wb") as log:
        # stdout and stderr share one file: READY is found there, and the
        # oidc-provider warnings/errors end up next to it for failure reports.
        server.process = subprocess.Popen(
            ["node", "server.mjs", str(config_path)],
            cwd=SERVER_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            for line in server.log.splitlines():
                if line.startswith("READY "):
                    _, issuer_url, bound = line.split()
                    server.url = f"https://127.0.0.1:{bound}"
                    server.issuer_url = issuer_url.rstrip("/")
                    return server
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"oidc server exited with {server.process.returncode}:\n{server.log}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"oidc server not ready after {timeout}s:\n{server.log}")
            time.sleep(0.05)  # polling the log file, bounded by the deadline
    except BaseException:
        server.stop()
        raise

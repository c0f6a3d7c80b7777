"""A remote MCP server protected by OAuth, built from the official MCP Python SDK, for the tests.

    python tests/servers/mcp_server.py CONFIG.json      (prints "ready PORT" when it listens)

The SDK provides the MCP server (`MCPServer`, streamable HTTP), protected
resource metadata (RFC 9728), authorization server metadata (RFC 8414),
dynamic client registration (RFC 7591), PKCE and the bearer check whose 401
names `resource_metadata`. This file adds what the tests need: HTTPS with a
test CA, an authorization endpoint that approves at once (sending RFC 9207
`iss`), rotating refresh tokens that revoke the whole grant when an old one
is used again, short access tokens, an audience check on the RFC 8707
`resource`, and `/__test/*` endpoints (what the server saw; revoke all).

Config: {"port", "cert", "key", "host", "access_ttl", "iss"} ("iss": another issuer to name, a mix-up).
After POST /__test/stepup, /mcp answers 403 insufficient_scope (a step-up challenge). The server's URL is
https://HOST:PORT/mcp; it is its own authorization server (issuer https://HOST:PORT).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import uvicorn
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class Stats:
    def __init__(self) -> None:
        self.token_requests: list[dict] = []  # the form fields of every /token request (values of secrets cut)
        self.authorize_requests: list[dict] = []
        self.mcp_authorizations: list[str | None] = []  # the Authorization header of every /mcp request
        self.mcp_methods: list[str] = []
        self.registrations = 0
        self.refreshes = 0
        self.reuse_detected = 0
        self.step_up = False


STATS = Stats()


class Provider:
    """An in-memory authorization server: one grant family per authorization code."""

    def __init__(self, issuer: str, resource: str, access_ttl: int, iss: str | None = None):
        self.issuer, self.resource, self.access_ttl = issuer, resource, access_ttl
        self.iss = iss or issuer  # what the authorization response names as its issuer (RFC 9207)
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, tuple[RefreshToken, str, bool]] = {}  # token -> (it, family, spent)
        self.access_tokens: dict[str, tuple[AccessToken, str]] = {}  # token -> (it, family)
        self.revoked_families: set[str] = set()

    async def get_client(self, client_id: str):
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        STATS.registrations += 1
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client, params: AuthorizationParams) -> str:
        STATS.authorize_requests.append({"resource": params.resource, "scopes": params.scopes})
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or [], expires_at=time.time() + 300, client_id=client.client_id,
            code_challenge=params.code_challenge, redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource, subject="alice")
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state, iss=self.iss)

    async def load_authorization_code(self, client, authorization_code: str):
        return self.codes.get(authorization_code)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None, family: str) -> OAuthToken:
        access, refresh = "mcp-at-" + secrets.token_urlsafe(24), "mcp-rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (AccessToken(token=access, client_id=client_id, scopes=scopes,
                                                  expires_at=int(time.time()) + self.access_ttl,
                                                  resource=resource, subject="alice"), family)
        self.refresh_tokens[refresh] = (RefreshToken(token=refresh, client_id=client_id, scopes=scopes,
                                                     resource=resource, subject="alice"), family, False)
        return OAuthToken(access_token=access, expires_in=self.access_ttl, refresh_token=refresh,
                          scope=" ".join(scopes) or None)

    async def exchange_authorization_code(self, client, authorization_code: AuthorizationCode) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource,
                           secrets.token_hex(8))

    async def load_refresh_token(self, client, refresh_token: str):
        entry = self.refresh_tokens.get(refresh_token)
        if entry is None or entry[1] in self.revoked_families:
            return None
        token, family, spent = entry
        if spent:  # an old refresh token used again: the whole grant dies (as X does)
            STATS.reuse_detected += 1
            self.revoked_families.add(family)
            return None
        return token

    async def exchange_refresh_token(self, client, refresh_token: RefreshToken, scopes: list[str]) -> OAuthToken:
        _, family, _ = self.refresh_tokens[refresh_token.token]
        self.refresh_tokens[refresh_token.token] = (refresh_token, family, True)
        STATS.refreshes += 1
        return self._issue(client.client_id, scopes or refresh_token.scopes, refresh_token.resource, family)

    async def load_access_token(self, token: str):
        entry = self.access_tokens.get(token)
        if entry is None or entry[1] in self.revoked_families:
            return None
        access, _ = entry
        if access.expires_at is not None and access.expires_at < time.time():
            return None
        return access

    async def revoke_token(self, token) -> None:
        for table in (self.access_tokens, self.refresh_tokens):
            entry = table.get(token.token)
            if entry is not None:
                self.revoked_families.add(entry[1])


def build(config: dict):
    host, port = config.get("host", "mcp.test"), config["port"]
    origin = f"https://{host}:{port}"
    resource = f"{origin}/mcp"
    provider = Provider(origin, resource, int(config.get("access_ttl", 600)), config.get("iss"))
    server = MCPServer(
        "authsome-test", auth_server_provider=provider,
        auth=AuthSettings(issuer_url=origin, resource_server_url=resource, validate_token_resource=True,
                          client_registration_options=ClientRegistrationOptions(enabled=True),
                          revocation_options=RevocationOptions(enabled=True), required_scopes=[]),
    )

    @server.tool()
    def whoami() -> str:
        """Who the token belongs to."""
        return "alice"

    @server.tool()
    def echo(text: str) -> str:
        """The text, back."""
        return text

    @server.tool()
    async def wait_for(path: str, ctx: Context) -> str:
        """Say "started" (a log message on the open event stream), then wait until PATH exists."""
        await ctx.info("started")
        deadline = time.monotonic() + 30
        while not Path(path).exists():
            if time.monotonic() > deadline:
                return "timed out"
            await asyncio.sleep(0.05)
        return "done"

    app = server.streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    return provider, app


async def _body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replaying(raw: bytes, receive):
    """A `receive` that hands the app the body read already, then whatever comes next."""
    sent = False

    async def again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return again


def wrap(app, provider: Provider):
    """/__test/* for the tests; every /token form and /mcp Authorization header recorded."""

    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        path = scope["path"]
        if path.startswith("/__test/"):
            if path == "/__test/revoke":
                provider.revoked_families.update(f for _, f in provider.access_tokens.values())
            if path == "/__test/stepup":
                STATS.step_up = True
            body = json.dumps(STATS.__dict__).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        headers = dict(scope["headers"])
        if path == "/mcp":
            STATS.mcp_authorizations.append(headers.get(b"authorization", b"").decode() or None)
            if STATS.step_up:
                challenge = (f'Bearer error="insufficient_scope", scope="admin", resource_metadata='
                             f'"{provider.issuer}/.well-known/oauth-protected-resource/mcp"')
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", challenge.encode())]})
                await send({"type": "http.response.body", "body": b'{"error": "insufficient_scope"}'})
                return
        if path == "/token" or (path == "/mcp" and scope["method"] == "POST"):
            raw = await _body(receive)
            if path == "/token":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                STATS.token_requests.append({k: (v if k in ("grant_type", "resource", "client_id") else "...")
                                             for k, v in form.items()})
            else:
                try:
                    STATS.mcp_methods.append(json.loads(raw).get("method"))
                except (ValueError, AttributeError):
                    pass
            return await app(scope, _replaying(raw, receive), send)
        return await app(scope, receive, send)

    return asgi


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    provider, app = build(config)
    server = uvicorn.Server(uvicorn.Config(wrap(app, provider), host="127.0.0.1", port=config["port"],
                                           ssl_certfile=config["cert"], ssl_keyfile=config["key"],
                                           log_level="warning", lifespan="on"))

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        print(f"ready {config['port']}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()

"""Remote MCP servers whose OAuth authsome owns: discovery, and the provider definition it becomes.

`authsome mcp add NAME URL` asks the MCP server itself where its
authorization server is (RFC 9728 protected resource metadata: the
`resource_metadata` of its 401, else the well-known path), reads that
server's metadata (RFC 8414, then OpenID Connect discovery, as the MCP
specification asks clients to try), and writes an ordinary custom provider:
its route is the MCP server's origin and path, its OAuth endpoints are the
authorization server's, and `oauth.resource` (RFC 8707, the canonical server
URL) goes into the authorization, token and refresh requests. The login is
the usual PKCE one (with dynamic client registration unless a client id is
given); the registered client is kept with its issuer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from authsome.envnames import env_prefix
from authsome.errors import LoginError, UsageError, given
from authsome.flows import oauth_client
from authsome.flows.dcr_pkce import discovery_urls

CLIENTS = ("claude", "cursor", "generic")
PLACEHOLDER_HEADER = "Bearer authsome-proxy-managed"
_RESOURCE_METADATA = re.compile(r'resource_metadata\s*=\s*"([^"]+)"')


def canonical(url: str, *, what: str = "The MCP server URL") -> str:
    """The MCP server's canonical URL (RFC 8707 / the MCP spec): https, lower-case host, no default port,
    no trailing slash; no credentials, query, fragment, dot segment or percent-encoding (each would make
    the route and the resource say different things)."""
    example = "for example: authsome mcp add notion https://mcp.notion.com/mcp"
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UsageError(f"{what} is not a URL that can be read ({given(url)}).", example) from None
    if parts.scheme.lower() != "https" or not host:
        raise UsageError(f"{what} must be an https:// URL, not {given(url)}.", example)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"{what} must not hold credentials, a query or a fragment.",
                         "give the server's address only (authsome logs in for you)")
    if "%" in parts.path or any(seg in (".", "..") for seg in parts.path.split("/")):
        raise UsageError(f"{what} must not hold percent-encoding or dot segments.", example)
    host = f"[{host}]" if ":" in host else host.lower()
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return urlunsplit(("https", netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class Discovered:
    url: str  # the canonical MCP server URL, the token's resource
    issuer: str
    metadata: dict[str, Any]  # the authorization server's
    scopes: tuple[str, ...]  # what the server says it supports (for a login without --scopes)


def _get_json(sess: requests.Session, url: str) -> dict[str, Any] | None:
    try:
        resp = sess.get(url, timeout=oauth_client.TIMEOUT, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        raise oauth_client.network_error(url, exc) from None
    if resp.status_code != 200:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _challenge(sess: requests.Session, url: str) -> str | None:
    """The `resource_metadata` URL of the server's 401 to a request without a token (None: no such 401)."""
    probe = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "authsome", "version": "discovery"}}}
    try:
        resp = sess.post(url, json=probe, timeout=oauth_client.TIMEOUT, allow_redirects=False,
                         headers={"Accept": "application/json, text/event-stream"})
    except requests.exceptions.RequestException as exc:
        raise oauth_client.network_error(url, exc) from None
    if resp.status_code != 401:
        if resp.status_code < 300:
            raise LoginError(f"The MCP server at {urlsplit(url).netloc} answered without asking for authorization.",
                             "it needs no login; connect your client to it directly")
        return None
    match = _RESOURCE_METADATA.search(resp.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None


def discover(url: str, sess: requests.Session | None = None) -> Discovered:
    sess = sess or oauth_client.http_session()
    url = canonical(url)
    parts = urlsplit(url)
    origin = f"https://{parts.netloc}"
    candidates = [c for c in (_challenge(sess, url),) if c]
    candidates += [f"{origin}/.well-known/oauth-protected-resource{parts.path}",
                   f"{origin}/.well-known/oauth-protected-resource"]
    prm = None
    for candidate in dict.fromkeys(candidates):
        if urlsplit(candidate).scheme != "https":
            continue
        prm = _get_json(sess, candidate)
        if prm is not None:
            break
    if prm is None:
        raise LoginError(f"The MCP server at {parts.netloc} publishes no protected resource metadata (RFC 9728).",
                         "check the URL (the MCP endpoint itself, for example https://mcp.example.com/mcp)")
    resource = prm.get("resource")
    try:
        same = isinstance(resource, str) and canonical(resource) == url
    except UsageError:
        same = False
    if not same:
        raise LoginError(f"The MCP server's metadata names another resource ({given(str(resource))}) "
                         f"than {url} (RFC 9728 3.3); its tokens would be for something else.",
                         "give the URL the server calls itself")
    servers = prm.get("authorization_servers")
    servers = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
    if not servers:
        raise LoginError(f"The MCP server at {parts.netloc} names no authorization server.",
                         "ask its operator; authsome cannot log in without one")
    issuer = servers[0]
    try:
        if canonical(issuer, what="The authorization server's issuer") != issuer.rstrip("/") or "?" in issuer:
            raise UsageError("not canonical")
    except UsageError:
        raise LoginError(f"The MCP server names an authorization server authsome will not use ({given(issuer)}): "
                         "it must be a plain https URL.", "ask the server's operator") from None
    for candidate in discovery_urls(issuer):
        metadata = _get_json(sess, candidate)
        if metadata is None:
            continue
        if metadata.get("issuer") != issuer:
            raise LoginError(f"The authorization server's metadata names another issuer than {issuer} (RFC 8414 3.3).",
                             "its operator must fix it; authsome will not log in to a server that names another")
        methods = metadata.get("code_challenge_methods_supported")
        endpoints = [metadata.get(k) for k in ("authorization_endpoint", "token_endpoint")]
        if not all(isinstance(e, str) and e.startswith("https://") for e in endpoints):
            raise LoginError(f"The authorization server {issuer} publishes no https authorization and token "
                             "endpoints.", "ask the server's operator")
        if not isinstance(methods, list) or "S256" not in methods:
            raise LoginError(f"The authorization server {issuer} does not say it offers PKCE with S256.",
                             "the MCP specification requires it; authsome does not log in without it")
        listed = prm.get("scopes_supported") or metadata.get("scopes_supported") or []
        scopes = tuple(s for s in listed if isinstance(s, str) and s and " " not in s and "," not in s) \
            if isinstance(listed, list) else ()
        return Discovered(url, issuer, metadata, scopes)
    raise LoginError(f"The authorization server {issuer} publishes no metadata (RFC 8414 or OpenID Connect).",
                     "check that it is reachable from here")


def definition(name: str, found: Discovered, *, client_id: str | None = None) -> dict[str, Any]:
    """The provider definition of an MCP server (written to the home as a custom definition)."""
    m = found.metadata
    oauth: dict[str, Any] = {
        "authorization_url": m["authorization_endpoint"],
        "token_url": m["token_endpoint"],
        "issuer": found.issuer,
        "scopes": list(found.scopes),
        "resource": found.url,
        "client_auth": "none",
    }
    def https(key: str) -> str | None:
        value = m.get(key)
        return value if isinstance(value, str) and value.startswith("https://") else None

    if https("revocation_endpoint"):
        oauth["revocation_url"] = https("revocation_endpoint")
    if https("registration_endpoint"):
        oauth["registration_endpoint"] = https("registration_endpoint")
        oauth["supports_dcr"] = True
    if client_id is None and not https("registration_endpoint"):
        raise LoginError(f"The authorization server {found.issuer} offers no dynamic client registration.",
                         f"register a client with its operator and run: authsome mcp add {name} {found.url} "
                         "--client-id ID")
    return {
        "name": name,
        "display_name": f"{name} (MCP)",
        "description": f"Remote MCP server {found.url}, added with `authsome mcp add`.",
        "auth_type": "oauth2",
        "flow": "pkce" if client_id else "dcr_pkce",
        "oauth": oauth,
        "api_url": [found.url],
        "export": {"access_token": f"{env_prefix(name)}_ACCESS_TOKEN"},
        "mcp": {"url": found.url},
    }


def client_config(name: str, url: str, client: str) -> str:
    """The snippet a client's MCP configuration needs: the URL, and where a client would start its own
    OAuth without one, the placeholder header (authsome puts the real token on the wire)."""
    if client == "claude":
        body = {"mcpServers": {name: {"type": "http", "url": url, "headers": {"Authorization": PLACEHOLDER_HEADER}}}}
    elif client == "cursor":
        body = {"mcpServers": {name: {"url": url, "headers": {"Authorization": PLACEHOLDER_HEADER}}}}
    else:
        body = {"name": name, "transport": "streamable-http", "url": url,
                "headers": {"Authorization": PLACEHOLDER_HEADER}}
    return json.dumps(body, indent=2)

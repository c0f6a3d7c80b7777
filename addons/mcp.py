"""Mcp: remote MCP servers whose OAuth authsome owns (`authsome mcp add`).

Three things, for hosts that serve a provider with an `mcp` block:

- The client never starts an OAuth of its own: the server's discovery
  documents (`/.well-known/oauth-protected-resource`, authorization server
  and OpenID metadata) are answered by the proxy with 404, and a 401 that
  reaches the client (no usable credential, or a refresh that failed) is
  turned into a JSON-RPC error naming `authsome login NAME`, with no
  `WWW-Authenticate` that would point the client at a login.
- The audit log gets each request's JSON-RPC method and the tool, prompt or
  resource it names (the `Mcp-Method` / `Mcp-Name` headers when sent, else
  read from the body), never the arguments.
- Everything else (injection, the refresh and re-send of a 401, server-sent
  events streaming through) is what every provider gets.

Loads into stock mitmproxy after the other authsome addons.
"""

from __future__ import annotations

import json

from mitmproxy import ctx, http

from authsome.addons._runtime import META, declare, held_for_refresh, runtime

DISCOVERY = ("/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server",
             "/.well-known/openid-configuration")
MAX_BODY = 1 << 20  # JSON-RPC bodies up to this size are read for the method and name
NO_CREDENTIAL = -32001  # a server error code (JSON-RPC reserves -32000..-32099 for them)


def _mcp_binding(flow: http.HTTPFlow):
    """The MCP provider's binding whose host this request goes to, or None."""
    meta = flow.metadata.get(META) or {}
    key = meta.get("binding") or meta.get("tunnel_binding")
    if key is None:
        return None
    binding = runtime(ctx.options).binding_for(key)
    return binding if binding is not None and binding.provider.mcp_url else None


def rpc(body: bytes | None) -> tuple[str | None, str | None, object]:
    """(method, name, id) of a JSON-RPC request body (the first of a batch); never its arguments."""
    if not body or len(body) > MAX_BODY:
        return None, None, None
    try:
        message = json.loads(body)
    except ValueError:
        return None, None, None
    if isinstance(message, list):
        message = message[0] if message else None
    if not isinstance(message, dict):
        return None, None, None
    method = message.get("method") if isinstance(message.get("method"), str) else None
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    name = params.get("name") if isinstance(params.get("name"), str) else None
    if name is None and method == "resources/read" and isinstance(params.get("uri"), str):
        name = params["uri"]
    ident = message.get("id") if isinstance(message.get("id"), (str, int)) else None
    return method, name, ident


def _short(text: str | None) -> str | None:
    return text[:200] if text else None


class Mcp:
    def load(self, loader) -> None:
        declare(loader)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or _mcp_binding(flow) is None:
            return
        if flow.request.path.split("?", 1)[0].startswith(DISCOVERY):
            flow.response = http.Response.make(
                404, json.dumps({"error": "not_found", "error_description":
                                 "authsome manages this server's authorization; run the client under `authsome run`"}),
                {"Content-Type": "application/json"})

    def request(self, flow: http.HTTPFlow) -> None:
        if _mcp_binding(flow) is None:
            return
        headers = flow.request.headers
        method, name, ident = rpc(flow.request.raw_content)
        flow.metadata[META]["mcp"] = {"method": _short(headers.get("mcp-method") or method),
                                      "name": _short(headers.get("mcp-name") or name), "id": ident}

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response.status_code == 401 and not held_for_refresh(flow) and _mcp_binding(flow) is not None:
            flow.response.stream = False  # replaced whole in `response`

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response.status_code != 401 or flow.is_replay:
            return
        binding = _mcp_binding(flow)
        if binding is None:
            return
        meta = flow.metadata[META]
        name = binding.provider.name
        why = {"not_connected": "it is not logged in", "invalid": "its grant was refused",
               "expired": "its token expired"}.get(meta.get("inject_error") or meta.get("refresh_error") or "",
                                                   "the server refused the token and it could not be refreshed")
        login = f"authsome login {name}" + ("" if binding.connection == "default" else f" --connection {binding.connection}")
        message = f"authsome has no usable credential for the MCP server '{name}' ({why}): run `{login} --force`"
        ident = (meta.get("mcp") or {}).get("id")
        flow.response = http.Response.make(
            403, json.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": NO_CREDENTIAL, "message": message}}),
            {"Content-Type": "application/json"})
        meta["mcp_refused"] = True


addons = [Mcp()]

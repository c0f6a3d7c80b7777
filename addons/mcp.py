"""Mcp: remote MCP servers whose OAuth authsome owns (`authsome mcp add`).

Three things, for hosts that serve a provider with an `mcp` block:

- The client never starts an OAuth of its own: the server's discovery
  documents (`/.well-known/oauth-protected-resource`, authorization server
  and OpenID metadata) are answered by the proxy with 404, no response
  carries `WWW-Authenticate`, and a 401 that reaches the client (no usable
  credential, or a refresh that failed) or a 403 Bearer challenge (a
  step-up) becomes a JSON-RPC error naming `authsome login NAME`.
- The audit log gets each request's JSON-RPC method(s) and the tool or
  prompt named, read from the body (every message of a batch; the
  `Mcp-Method` / `Mcp-Name` headers when the body has none, and recorded
  apart when they claim something else), never the arguments (a resource's
  URI is one).
- Everything else (injection, the refresh and re-send of a 401, server-sent
  events streaming through) is what every provider gets.

Loads into stock mitmproxy after the other authsome addons.
"""

from __future__ import annotations

import json

from mitmproxy import ctx, http

from authsome.addons._runtime import META, declare, held_for_refresh, runtime
from authsome.providers.routes import canonical_path

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
    """(methods, names, id) of a JSON-RPC body, every message of a batch; never the arguments.

    A tool or prompt is named by `params.name`; a resource's URI is an argument (it may carry a
    query, a document id) and is left out. A body that cannot be read says "unparsed".
    """
    if not body:
        return None, None, None
    if len(body) > MAX_BODY:
        return "unparsed", None, None
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return "unparsed", None, None
    messages = message if isinstance(message, list) else [message]
    methods, names, ident = [], [], None
    for m in messages:
        if not isinstance(m, dict):
            continue
        method = m.get("method") if isinstance(m.get("method"), str) else None
        params = m.get("params") if isinstance(m.get("params"), dict) else {}
        if method:
            methods.append(method)
            if method in ("tools/call", "prompts/get") and isinstance(params.get("name"), str):
                names.append(params["name"])
        if ident is None and isinstance(m.get("id"), (str, int)) and not isinstance(m.get("id"), bool):
            ident = m["id"]
    return ",".join(methods) or None, ",".join(names) or None, ident


def _short(text: str | None) -> str | None:
    return text[:200] if text else None


def _challenge(response: http.Response) -> bool:
    """A response that would send an MCP client into an OAuth of its own: a 401, or a Bearer challenge
    (a 403 `insufficient_scope` asks for a step-up login)."""
    return response.status_code == 401 or (
        response.status_code == 403 and "bearer" in response.headers.get("www-authenticate", "").lower())


class Mcp:
    def load(self, loader) -> None:
        declare(loader)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or _mcp_binding(flow) is None:
            return
        path = canonical_path(flow.request.path.split("?", 1)[0]).lower()
        raw = flow.request.path.split("?", 1)[0].lower()
        if any(p.startswith(DISCOVERY) or p.endswith(DISCOVERY[2]) or "/.well-known/oauth-" in p for p in (path, raw)):
            flow.response = http.Response.make(
                404, json.dumps({"error": "not_found", "error_description":
                                 "authsome manages this server's authorization; run the client under `authsome run`"}),
                {"Content-Type": "application/json"})

    def request(self, flow: http.HTTPFlow) -> None:
        if _mcp_binding(flow) is None:
            return
        method, name, ident = rpc(flow.request.raw_content)
        headers = flow.request.headers
        said = (headers.get("mcp-method"), headers.get("mcp-name"))
        record = {"method": _short(method or said[0]), "name": _short(name or said[1]), "id": ident}
        if method and said != (None, None) and said != (method, name):
            record["headers"] = [_short(said[0]), _short(said[1])]  # what the client claimed, when it differs
        flow.metadata[META]["mcp"] = record

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if _mcp_binding(flow) is None:
            return
        if _challenge(flow.response):
            flow.metadata[META]["mcp_challenge"] = True
            if not held_for_refresh(flow):
                flow.response.stream = False  # replaced whole in `response`
        flow.response.headers.pop("www-authenticate", None)  # never a pointer to a login of its own

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.is_replay:
            return
        binding = _mcp_binding(flow)
        if binding is None:
            return
        flow.response.headers.pop("www-authenticate", None)
        meta = flow.metadata[META]
        # A 403 is answered only when it carried a Bearer challenge (`responseheaders` took the header away).
        if not (flow.response.status_code == 401 or flow.response.status_code == 403 and meta.get("mcp_challenge")):
            return
        name = binding.provider.name
        login = f"authsome login {name}" + ("" if binding.connection == "default" else f" --connection {binding.connection}")
        if flow.response.status_code == 403:
            message = (f"the MCP server '{name}' asks for more scopes than authsome's login has: run `{login} "
                       "--force --scopes ...` with the scopes the server names")
        elif meta.get("refreshed") and not meta.get("refresh_error"):
            message = f"authsome refreshed the token of the MCP server '{name}': send the request again"
        else:
            why = {"not_connected": "it is not logged in", "invalid": "its grant was refused",
                   "expired": "its token expired"}.get(meta.get("inject_error") or meta.get("refresh_error") or "",
                                                       "the server refused the token and it could not be refreshed")
            message = f"authsome has no usable credential for the MCP server '{name}' ({why}): run `{login} --force`"
        ident = (meta.get("mcp") or {}).get("id")
        flow.response = http.Response.make(
            403, json.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": NO_CREDENTIAL, "message": message}}),
            {"Content-Type": "application/json"})
        meta["mcp_refused"] = True


addons = [Mcp()]

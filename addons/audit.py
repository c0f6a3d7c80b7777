"""Audit: one record per flow the proxy handled, appended to $AUTHSOME_HOME/audit.log.

Intercepted requests record method, host (the CONNECT target; the child's
Host header apart when it names another), path, status, provider,
connection and what authsome did (injected, refreshed, retried); tunnelled
and denied CONNECTs record the host. Never header values, bodies, or query
values: only the names of query parameters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from mitmproxy import ctx, http

from authsome import audit
from authsome.addons._runtime import META, declare, log, runtime


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


FLUSH_DELAY = 0.2  # seconds a record may wait in memory before it is written


class Audit:
    """Records are kept in memory and written together, at most FLUSH_DELAY after the first.

    No file work per request on the event loop; `done` writes what is left.
    Without a running loop (a script driving the addon by hand) each record
    is written at once.
    """

    def __init__(self) -> None:
        self.pending: list[dict] = []
        self.closing = False  # after `done`: flows still ending (an error hook) are written at once

    def load(self, loader) -> None:
        declare(loader)
        loader.add_option("authsome_run_id", str, "", "identifier written into every audit record")

    def _write(self, record: dict) -> None:
        self.pending.append({"ts": _now(), "run": ctx.options.authsome_run_id or None, **record})
        if self.closing:
            self.flush()
            return
        if len(self.pending) > 1:
            return  # a flush is already due
        try:
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
        except RuntimeError:
            self.flush()

    def flush(self) -> None:
        records, self.pending = self.pending, []
        if not records:
            return
        try:
            audit.append_all(records, Path(runtime(ctx.options).home))
        except OSError as exc:
            log.warning("cannot write the audit log: %s", exc.strerror)
        except Exception as exc:  # never lose the reason quietly
            log.error("cannot write the audit log: %s", type(exc).__name__)

    def done(self) -> None:
        self.closing = True
        self.flush()

    def http_connect(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get(META) or {}
        if meta.get("denied"):
            self._write({"event": "denied", "host": meta["host"], "port": meta["port"]})
        elif meta.get("tunnel"):
            self._write({"event": "tunnel", "host": meta["host"], "port": meta["port"]})

    def response(self, flow: http.HTTPFlow) -> None:
        if not flow.is_replay:
            self._write(self._record(flow, "request"))

    def error(self, flow: http.HTTPFlow) -> None:
        if not flow.is_replay and flow.request.method != "CONNECT":
            record = self._record(flow, "error")
            record["error"] = flow.error.msg if flow.error else None
            self._write(record)

    def _record(self, flow: http.HTTPFlow, event: str) -> dict:
        meta = flow.metadata.get(META) or {}
        req = flow.request
        started = req.timestamp_start  # mitmproxy's own: when the request's first byte arrived
        # Inside a tunnel, the CONNECT target is where the request went; the Host
        # header is the child's word, recorded apart when it names something else.
        host, port = meta.get("target") or (req.host, req.port)
        return {
            "event": event,
            "method": req.method,
            "scheme": req.scheme,
            "host": host,
            "port": port,
            "host_header": meta.get("host_header"),
            "path": req.path.split("?", 1)[0],
            "query_keys": (sorted(set(req.query.keys())) or None) if "?" in req.path else None,  # parsing costs
            "status": flow.response.status_code if flow.response else None,
            "provider": meta.get("provider"),
            "connection": meta.get("connection"),
            "injected": sorted(meta["injected"]) if meta.get("injected") else [],
            "refreshed": bool(meta.get("refreshed")),
            "retried": bool(meta.get("retried")),
            "problem": meta.get("inject_error") or meta.get("refresh_error"),
            **_mcp_fields(meta.get("mcp")),
            "ms": round((time.time() - started) * 1000) if started else None,
        }


def _mcp_fields(mcp: dict | None) -> dict:
    """An MCP request's JSON-RPC method(s) and tool or prompt name(s); what its headers claimed, if different."""
    if not mcp:
        return {}
    out = {"mcp_method": mcp["method"], "mcp_name": mcp["name"]}
    if mcp.get("headers"):
        out["mcp_headers"] = mcp["headers"]
    return out


addons = [Audit()]

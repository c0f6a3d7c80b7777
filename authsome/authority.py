"""Whether every name in a request agrees with the CONNECT target it travels in.

Inside a CONNECT tunnel a request carries more names than its tunnel: the
TLS server name (SNI), the Host header (several, if the client wants), the
HTTP/2 `:authority` and an absolute-form target (`GET https://other/ ...`).
A server or a shared front end (a CDN) may pick the virtual host by any of
them, so a credential is written only when all of them name the CONNECT
target; `disagreement` says which one does not. An absent SNI is accepted
(some clients send none); an absent Host is too (the server then goes by
the connection).

Requests are duck-typed: `authority` (str), `headers` (with `get_all`), as
on `mitmproxy.http.Request`.
"""

from __future__ import annotations

from typing import Any

from authsome.providers.routes import DEFAULT_PORT, memo_short, normalize_host


@memo_short(256, limit=300)  # the Host header of every request: a handful of values
def parse_authority(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int] | None:
    """`host[:port]` (IPv6 in brackets) -> (normalized host, port); None when malformed."""
    text = text.strip()
    if not text or any(c.isspace() or c in "/@?#" for c in text):
        return None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":") if ":" in text else (text, "", "")
        if ":" in host:
            return None
    if sep and port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    elif sep and not text.startswith("["):
        return None  # "host:" with nothing after it
    else:
        port = default_port
    host = normalize_host(host)
    return (host, port) if host else None


def target_problem(request: Any) -> str | None:
    """Why the request target is not a plain path (origin-form), or None.

    `https://other/x` or `other/x` as an HTTP/2 `:path`, or `//other/x`, can
    be read as another host by lenient front ends and URL parsers.
    """
    path = request.path
    if request.method == "OPTIONS" and path == "*":
        return None
    if not path.startswith("/") or path.startswith("//"):
        return f"its request target {path[:60]!r} is not a path starting with a single /"
    return None


def disagreement(target: tuple[str, int], *, sni: str | None, request: Any) -> str | None:
    """Which name of the request differs from the CONNECT target, or None when all agree."""
    host, port = target
    if sni is not None and normalize_host(sni) != host:
        return f"its TLS server name is {sni!r}"
    hosts = request.headers.get_all("Host")
    if len(hosts) > 1:
        return "it has more than one Host header"
    for label, value in (("its Host header", hosts[0] if hosts else None), ("its request target", request.authority or None)):
        if value is None:
            continue
        if parse_authority(value) != (host, port):
            return f"{label} names {value!r}"
    return None

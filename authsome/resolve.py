"""`--resolve HOST:PORT:ADDR:PORT`, as curl has it: connect elsewhere, keep the name.

For staging servers and for testing bundled definitions against a local
stand-in: connections to HOST:PORT go to ADDR:PORT, while the TLS server
name, certificate verification, routing and injection all still use HOST.

It works by wrapping `socket.getaddrinfo` in this process, which both
authsome's own HTTPS calls (token refresh, revocation) and the in-process
proxy's upstream connections go through. Entries come from `authsome run
--resolve` and from `AUTHSOME_RESOLVE` (comma- or space-separated).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

from authsome.errors import UsageError, given

ENV = "AUTHSOME_RESOLVE"
_SPEC = re.compile(r"^(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+):(?P<addr>\[[0-9a-fA-F:.]+\]|[0-9.]+):(?P<to>\d+)$")

_mapping: dict[tuple[str, int], tuple[str, int]] = {}
_original = socket.getaddrinfo


def parse(spec: str) -> tuple[tuple[str, int], tuple[str, int]]:
    m = _SPEC.match(spec.strip())
    if not m:
        raise UsageError(f"{given(spec)} is not HOST:PORT:ADDRESS:PORT.", "for example --resolve api.twitter.com:443:127.0.0.1:8443")
    addr = m["addr"].strip("[]")
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise UsageError(f"'{m['addr']}' in '{spec}' is not an IP address.") from None
    ports = int(m["port"]), int(m["to"])
    if not all(0 < p < 65536 for p in ports):
        raise UsageError(f"'{spec}' has a port outside 1-65535.")
    return (m["host"].lower().rstrip("."), ports[0]), (addr, ports[1])


def from_env() -> list[str]:
    return [s for s in re.split(r"[,\s]+", os.environ.get(ENV, "")) if s]


def install(specs: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """Add entries to this process's resolve table (and wrap getaddrinfo once)."""
    for spec in specs:
        source, target = parse(spec)
        _mapping[source] = target
    if _mapping and socket.getaddrinfo is _original:
        socket.getaddrinfo = _getaddrinfo
    return dict(_mapping)


def _getaddrinfo(host, port, *args, **kwargs):
    name = host.decode("idna") if isinstance(host, bytes) else host
    try:
        key = ((name or "").lower().rstrip("."), int(port))
    except (TypeError, ValueError):
        return _original(host, port, *args, **kwargs)
    target = _mapping.get(key)
    if target is None:
        return _original(host, port, *args, **kwargs)
    return _original(target[0], target[1], *args, **kwargs)

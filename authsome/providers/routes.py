"""Which hosts receive a provider's credential.

An `api_url` entry is one of:
    api.example.com                     exact host, port 443
    api.example.com:8443                exact host and port
    https://api.example.com[:port]/v1   exact host (and port), path prefix
    regex:^[a-z0-9-]+\\.example\\.com$   a pattern matched against the WHOLE host

Host matching is case-insensitive and ignores one trailing dot. A regex is
always applied with fullmatch, so an unanchored pattern cannot match a
lookalike such as `api.example.com.evil.test`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 443
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class RouteError(ValueError):
    """An api_url entry that cannot be parsed; the message says why."""


@dataclass(frozen=True)
class Route:
    text: str
    host: str | None = None
    pattern: re.Pattern[str] | None = None
    port: int = DEFAULT_PORT
    path_prefix: str = ""

    def matches_host(self, host: str, port: int = DEFAULT_PORT) -> bool:
        """True when a connection to host:port may carry the credential."""
        if port != self.port:
            return False
        host = normalize_host(host)
        if self.host is not None:
            return host == self.host
        assert self.pattern is not None
        return self.pattern.fullmatch(host) is not None

    def matches(self, host: str, port: int, path: str) -> bool:
        return self.matches_host(host, port) and _path_matches(self.path_prefix, path)


def normalize_host(host: str) -> str:
    host = host.strip().lower()
    return host[:-1] if host.endswith(".") else host


def _path_matches(prefix: str, path: str) -> bool:
    if not prefix:
        return True
    path = path.split("?", 1)[0]
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RouteError(f"'{entry}' has an invalid port")
    return int(text)


def _check_host(host: str, entry: str) -> str:
    host = normalize_host(host)
    if not _HOST.match(host):
        raise RouteError(f"'{entry}' is not a valid host name")
    return host


def parse_route(entry: str) -> Route:
    entry = entry.strip()
    if entry.startswith("regex:"):
        source = entry[len("regex:") :]
        if not source:
            raise RouteError("empty regex")
        try:
            pattern = re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise RouteError(f"invalid regular expression: {exc}") from None
        return Route(text=entry, pattern=pattern)
    if "://" in entry:
        parts = urlsplit(entry)
        if parts.scheme != "https":
            raise RouteError(f"'{entry}' must use https:// (credentials never travel over plain HTTP)")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise RouteError(f"'{entry}' may only contain a host, a port and a path prefix")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise RouteError(f"'{entry}' has an invalid port") from None
        return Route(
            text=entry,
            host=_check_host(parts.hostname or "", entry),
            port=port,
            path_prefix=parts.path.rstrip("/") if parts.path not in ("", "/") else "",
        )
    if "/" in entry:
        raise RouteError(f"'{entry}' has a path; write it as https://host/path")
    host, sep, port_text = entry.rpartition(":")
    if sep:
        return Route(text=entry, host=_check_host(host, entry), port=_parse_port(port_text, entry))
    return Route(text=entry, host=_check_host(entry, entry))


def parse_routes(entries: tuple[str, ...] | list[str]) -> tuple[Route, ...]:
    return tuple(parse_route(e) for e in entries)

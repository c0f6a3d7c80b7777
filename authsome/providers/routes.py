"""Which hosts receive a provider's credential.

An `api_url` entry is one of:
    api.example.com                     exact host, port 443
    api.example.com:8443                exact host and port
    https://api.example.com[:port]/v1   exact host (and port), path prefix
    regex:^[a-z0-9-]+\\.example\\.com$   a pattern matched against the WHOLE host
    !auth.example.com[:port]            never this host, even when another entry matches it

Every route pins a domain: an exact host pins itself, a pattern pins the
literal domain it ends with (`\\.example\\.com$` -> example.com) and never
matches a host outside it, whatever else the pattern says. A pinned domain
has two or more labels and is no IP address; `registrable_problem` also
refuses public suffixes (`co.uk`), for validating definitions. Patterns run
on a linear-time engine (`patterns`), so no host name can stall matching.

Host matching is case-insensitive and ignores one trailing dot. Paths are
compared twice, as sent and as a server would read them (`canonical_path`):
a path prefix admits a request only when both forms lie inside it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from authsome.errors import given
from authsome.providers.patterns import PatternError, compile_pattern

DEFAULT_PORT = 443
MAX_HOST = 253
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
# The literal domain a pattern ends with (`\.googleapis\.com$`), to pin it to.
_LITERAL_SUFFIX = re.compile(r"([a-z0-9-]+(?:\\\.[a-z0-9-]+)+)\$?$", re.IGNORECASE)


class RouteError(ValueError):
    """An api_url entry that cannot be parsed; the message says why."""


@dataclass(frozen=True)
class Route:
    text: str
    domain: str  # every host this route matches is this domain or inside it
    host: str | None = None  # an exact host (then equal to `domain`)
    pattern: str | None = None  # the source of a `regex:` route
    port: int = DEFAULT_PORT
    path_prefix: str = ""
    exclude: bool = False  # `!host`: an exception to the other entries, not a destination

    def matches_host(self, host: str, port: int = DEFAULT_PORT) -> bool:
        """True when a connection to host:port may carry the credential."""
        if port != self.port:
            return False
        host = normalize_host(host)
        if self.host is not None:
            return host == self.host
        if len(host) > MAX_HOST or not in_domain(host, self.domain):
            return False
        assert self.pattern is not None
        return compile_pattern(self.pattern, ignore_case=True).fullmatch(host) is not None

    def matches(self, host: str, port: int, path: str) -> bool:
        return self.matches_host(host, port) and path_in_prefix(self.path_prefix, path)


def in_domain(host: str, domain: str) -> bool:
    """True when `host` is `domain` or a name inside it (both normalized)."""
    return host == domain or host.endswith("." + domain)


def admitting(routes: Sequence[Route], host: str, port: int, path: str | None = None) -> Route | None:
    """The most specific of `routes` that admits host:port (and `path`), unless an `!host` exception
    among them names the host."""
    if any(r.exclude and r.matches_host(host, port) for r in routes):
        return None
    matching = [r for r in routes if not r.exclude
                and (r.matches_host(host, port) if path is None else r.matches(host, port, path))]
    return max(matching, key=specificity, default=None)


def normalize_host(host: str) -> str:
    host = host.strip().lower()
    return host[:-1] if host.endswith(".") else host


def _strip_query(path: str) -> str:
    return path.split("?", 1)[0].split("#", 1)[0]


def memo_short(maxsize: int, limit: int = 2048):
    """`functools.lru_cache` for calls whose text arguments are all at most `limit` long.

    For pure functions of what a request carries, asked several times per
    request: values repeat, and the child chooses them, so long ones are
    computed each time rather than kept.
    """
    def decorate(fn):
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if not kwargs and all(len(a) <= limit for a in args if isinstance(a, str)):
                return cached(*args)
            return fn(*args, **kwargs)

        call.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return call

    return decorate


@memo_short(1024)
def canonical_path(path: str) -> str:
    """The path as a lenient server would route it.

    Percent-escapes decoded (repeatedly: some servers decode twice),
    backslashes read as slashes, `;parameters` dropped from each segment,
    empty segments collapsed and dot segments resolved. Used to compare,
    never to send.
    """
    path = _strip_query(path)
    for _ in range(3):
        decoded = unquote(path, errors="replace")
        if decoded == path:
            break
        path = decoded
    out: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out)


def _within(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def path_in_prefix(prefix: str, path: str) -> bool:
    """True when `path` lies inside `prefix` both as sent and as a server reads it."""
    if not prefix:
        return True
    return _within(prefix, _strip_query(path)) and _within(prefix, canonical_path(path))


@memo_short(1024)
def path_names_endpoint(endpoint: str, path: str) -> bool:
    """True when a request path may reach `endpoint` (a canonical path) on some server.

    For exclusions, so it errs towards yes: case-insensitive, in either
    form, and also with a suffix such as `.json` or `/x` after the endpoint.
    """
    endpoint = endpoint.lower().rstrip("/") or "/"
    for form in (_strip_query(path).lower().rstrip("/") or "/", canonical_path(path).lower()):
        if form == endpoint or (form.startswith(endpoint) and not form[len(endpoint)].isalnum()):
            return True
    return False


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RouteError(f"'{entry}' has an invalid port")
    return int(text)


def _check_domain(domain: str, entry: str) -> str:
    """A host name of two or more labels, never an IP address."""
    if not _HOST.match(domain):
        raise RouteError(f"'{entry}' is not a valid host name")
    if _is_ip(domain):
        raise RouteError(f"'{entry}' is an IP address; routes name hosts (a credential must not follow an address)")
    if "." not in domain:
        raise RouteError(f"'{entry}' names a single label; a route must pin a domain of two or more labels")
    return domain


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return text.rsplit(".", 1)[-1].isdigit()  # no top-level domain is numeric: 10.1 or 0x7f.1 is an address


def _check_host(host: str, entry: str) -> str:
    return _check_domain(normalize_host(host), entry)


def parse_route(entry: str) -> Route:
    entry = entry.strip()
    if entry.startswith("!"):
        route = parse_route(entry[1:])
        if route.host is None or route.path_prefix:
            raise RouteError(f"'{entry}' must name one host (and port): exceptions are exact")
        return Route(text=entry, domain=route.domain, host=route.host, port=route.port, exclude=True)
    if entry.startswith("regex:"):
        source = entry[len("regex:") :]
        if not source:
            raise RouteError("empty regex")
        try:
            compile_pattern(source, ignore_case=True)
        except PatternError as exc:
            raise RouteError(f"invalid regular expression: {exc}") from None
        literal = _LITERAL_SUFFIX.search(source)
        if not literal:
            raise RouteError(f"'{entry}' must end with the literal domain it stays inside, such as \\.example\\.com$")
        domain = _check_domain(literal.group(1).replace("\\.", ".").lower(), entry)
        return Route(text=entry, domain=domain, pattern=source)
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
        prefix = parts.path.rstrip("/") if parts.path not in ("", "/") else ""
        if prefix and canonical_path(prefix) != prefix:
            raise RouteError(f"'{entry}' has a path prefix a server would read differently ({canonical_path(prefix)})")
        host = _check_host(parts.hostname or "", entry)
        return Route(text=entry, domain=host, host=host, port=port, path_prefix=prefix)
    if "/" in entry:
        raise RouteError(f"'{entry}' has a path; write it as https://host/path")
    host, sep, port_text = entry.rpartition(":")
    if sep:
        host = _check_host(host, entry)
        return Route(text=entry, domain=host, host=host, port=_parse_port(port_text, entry))
    host = _check_host(entry, entry)
    return Route(text=entry, domain=host, host=host)


def parse_routes(entries: tuple[str, ...] | list[str]) -> tuple[Route, ...]:
    return tuple(parse_route(e) for e in entries)


@functools.cache
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    # The ICANN section: registries' suffixes (com, co.uk). The private section
    # also lists hosting platforms (github.io, googleapis.com) whose owners serve
    # their own APIs under them, as Google does.
    return PublicSuffixList(only_icann=True)


def registrable_problem(route: Route) -> str | None:
    """Why a route's pinned domain covers more than one owner's hosts, or None.

    Loads the public suffix list (about 40 ms): for validating definitions,
    not for every lookup.
    """
    if _public_suffixes().privatesuffix(route.domain) is None:
        return f"'{route.text}' pins {route.domain}, a public suffix: it would send the credential to every domain under it"
    return None


def overlap(a: Route, b: Route) -> bool:
    """True when some request could match both routes (same port, nested domains and prefixes)."""
    if a.port != b.port:
        return False
    if a.host is not None and b.host is not None:
        same = a.host == b.host
    elif a.host is not None:
        same = b.matches_host(a.host, a.port)
    elif b.host is not None:
        same = a.matches_host(b.host, b.port)
    else:  # two patterns: overlap when one pinned domain contains the other
        same = in_domain(a.domain, b.domain) or in_domain(b.domain, a.domain)
    if not same:
        return False
    return _within(a.path_prefix or "/", b.path_prefix or "/") or _within(b.path_prefix or "/", a.path_prefix or "/")


def specificity(route: Route) -> tuple[int, int]:
    """Higher is more specific: an exact host beats a pattern, a longer prefix a shorter one."""
    return (1 if route.host is not None else 0, len(route.path_prefix))


def parse_allowed_host(entry: str) -> str:
    """An `--allow-host` entry: an exact host, or `*.domain` for the hosts under that domain."""
    text = entry.strip().lower().rstrip(".")
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if "*" in name or not _HOST.match(name) or _is_ip(name) or (wildcard and "." not in name):
        raise RouteError(f"{given(entry)} is not a host name or *.domain")
    return text


def host_allowed(host: str, allowed: tuple[str, ...] | list[str]) -> bool:
    host = normalize_host(host)
    return any(host == a or (a.startswith("*.") and host.endswith(a[1:])) for a in allowed)

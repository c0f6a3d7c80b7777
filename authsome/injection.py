"""Where a provider's credential travels in a request, and how it is put there.

The rules, for each slot (a header, a query parameter, or HTTP Basic):
  - the child sent nothing there: the credential is added;
  - the child sent the placeholder (anywhere in the value, also inside a
    Basic pair): the placeholder is swapped for the real value;
  - the child sent a value of its own: it is left alone.
`apply` returns what each changed slot held before, so `undo` can put the
request back exactly as the child sent it (for logs and the debugging UI)
without anyone keeping a copy of the secret.

Requests are duck-typed: `headers` (case-insensitive mapping) and `query`
(mapping), as on `mitmproxy.http.Request`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

from authsome.models import PLACEHOLDER, Connection, Provider

Original = str | None  # what the slot held before (None: absent)

# The key of mitmproxy's flow.metadata under which the addons record what they
# injected (slot -> the child's own value, never a secret), for Redact and the UIs.
FLOW_META = "authsome"


@dataclass(frozen=True)
class Slot:
    kind: Literal["header", "query", "basic"]
    name: str  # header or query parameter name
    field: str  # credential field that fills it
    prefix: str = ""
    user_field: str | None = None  # Basic: the user-name field
    user: str = ""  # Basic: a fixed user name, when there is no field

    @property
    def key(self) -> str:
        # Header names are case-insensitive, query parameter names are not.
        return f"query:{self.name}" if self.kind == "query" else f"header:{self.name.lower()}"


def slots(provider: Provider) -> list[Slot]:
    if provider.auth_type == "oauth2":
        return [Slot("header", "Authorization", "access_token", "Bearer")]
    cfg = provider.api_key
    assert cfg is not None
    if cfg.location == "query":
        out = [Slot("query", cfg.query_param or "api_key", "api_key")]
    elif cfg.location == "basic":
        out = [Slot("basic", "Authorization", "api_key", "Basic", user_field=cfg.basic_username_field,
                    user=cfg.basic_username or "")]
    else:
        out = [Slot("header", cfg.header_name, "api_key", cfg.header_prefix)]
    out += [Slot("header", f.header_name, f.name, f.header_prefix) for f in cfg.extra_fields if f.header_name]
    return out


def _fresh_value(slot: Slot, conn: Connection, value: str) -> str:
    if slot.kind == "basic":
        user = conn.credential(slot.user_field) if slot.user_field else slot.user
        return "Basic " + base64.b64encode(f"{user or ''}:{value}".encode()).decode()
    return f"{slot.prefix} {value}" if slot.prefix else value


def _swap_basic(current: str, value: str) -> str | None:
    """`Basic b64(user:placeholder)` -> the same with the real value, else None."""
    scheme, _, encoded = current.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if PLACEHOLDER not in decoded:
        return None
    return "Basic " + base64.b64encode(decoded.replace(PLACEHOLDER, value).encode()).decode()


def _new_value(slot: Slot, conn: Connection, current: str | None, value: str) -> str | None:
    """The slot's new content, or None to leave it as the child sent it."""
    if current is None or current == "":
        return _fresh_value(slot, conn, value)
    if PLACEHOLDER in current:
        return current.replace(PLACEHOLDER, value)
    return _swap_basic(current, value)


def apply(request: Any, provider: Provider, conn: Connection) -> dict[str, Original]:
    """Put the credential into `request`; return {slot key: original content} for each change."""
    changed: dict[str, Original] = {}
    for slot in slots(provider):
        value = conn.credential(slot.field)
        if not value:
            continue
        container = request.query if slot.kind == "query" else request.headers
        current = container.get(slot.name)
        new = _new_value(slot, conn, current, value)
        if new is not None and new != current:
            changed[slot.key] = current
            container[slot.name] = new
    # A placeholder in any other header (a client using its own header name)
    # gets the provider's main secret.
    primary = conn.credential("access_token" if provider.auth_type == "oauth2" else "api_key")
    if primary:
        for name in list(request.headers.keys()):
            key = f"header:{name.lower()}"
            current = request.headers.get(name)
            if key in changed or current is None or PLACEHOLDER not in current:
                continue
            changed[key] = current
            request.headers[name] = current.replace(PLACEHOLDER, primary)
    return changed


def _slot(request: Any, key: str) -> tuple[Any, str]:
    kind, _, name = key.partition(":")
    return (request.query if kind == "query" else request.headers), name


def _set(container: Any, name: str, value: Original) -> None:
    if value is None:
        if name in container:
            del container[name]
    else:
        container[name] = value


def undo(request: Any, changed: dict[str, Original]) -> None:
    """Put every changed slot back to what the child sent."""
    for key, original in changed.items():
        container, name = _slot(request, key)
        _set(container, name, original)


def is_applied(request: Any, changed: dict[str, Original]) -> bool:
    """True while some slot still holds what `apply` put there (not undone yet)."""
    for key, original in changed.items():
        container, name = _slot(request, key)
        if container.get(name) != original:
            return True
    return False


def hide(request: Any, changed: dict[str, Original]) -> dict[str, tuple[str, Original]]:
    """`undo` for a moment: return what the slots held (name as spelled, value), for `reveal`."""
    held = {}
    for key in changed:
        container, name = _slot(request, key)
        spelled = next((k for k in container.keys() if k.lower() == name), name) if key.startswith("header:") else name
        held[key] = (spelled, container.get(name))
    undo(request, changed)
    return held


def reveal(request: Any, changed: dict[str, Original], held: dict[str, tuple[str, Original]]) -> None:
    """Put back what `hide` took, in every slot nobody changed since."""
    for key, original in changed.items():
        container, name = _slot(request, key)
        if container.get(name) == original:
            spelled, value = held[key]
            _set(container, spelled, value)  # setting a header keeps its place, takes this spelling

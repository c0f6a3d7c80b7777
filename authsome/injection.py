"""Where a provider's credential travels in a request, and how it is put there.

The rules, for each slot the definition declares (a header, a query
parameter, or HTTP Basic), and for those slots only:
  - the child sent nothing there: the credential is added;
  - the child sent the placeholder: it is swapped for the real value where it
    stands (in a Basic slot, the whole pair is written from the definition);
  - the child sent a value of its own: it is left alone.
A placeholder anywhere else (another header, the body) stays as it is: a
server that echoes headers back would otherwise hand the child the secret.
A slot the child sent more than once is ambiguous, and refused (`conflict`).

`apply` changes the request it is given; the proxy gives it the copy that is
serialized onto the wire (`authsome.addons._wire`), never a flow's request.
`wire_values` lists every form in which the credential may come back in a
response, for the Scrub addon.

Requests are duck-typed: `headers` (case-insensitive mapping with
`get_all`) and `query` (mapping with `get_all`), as on `mitmproxy.http.Request`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from authsome.models import PLACEHOLDER, Connection, Provider

# The key of mitmproxy's flow.metadata under which the addons record their
# decisions (routes, slot names, versions; never a secret).
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


def _decoded_basic(current: str) -> str | None:
    scheme, _, encoded = current.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _placeholders(value: str) -> int:
    return value.count(PLACEHOLDER) + (_decoded_basic(value) or "").count(PLACEHOLDER)


def _new_value(slot: Slot, conn: Connection, current: str | None, value: str) -> str | None:
    """The slot's new content, or None to leave it as the child sent it.

    A Basic slot is written whole from the definition (the child's own user
    part is not kept). Any other slot gets the placeholder swapped in place,
    and never inside an encoding the child chose: `Basic b64(a:placeholder)`
    in a Bearer slot would come back from an echoing server as base64 that
    no scrubber knows, and decode to the secret.
    """
    if current is None or current == "":
        return _fresh_value(slot, conn, value)
    if slot.kind == "basic":
        return _fresh_value(slot, conn, value) if PLACEHOLDER in (_decoded_basic(current) or current) else None
    if PLACEHOLDER in current:
        return current.replace(PLACEHOLDER, value)
    return None


def apply(request: Any, provider: Provider, conn: Connection) -> list[str]:
    """Put the credential into `request`; return the keys of the slots that changed."""
    changed: list[str] = []
    for slot in slots(provider):
        value = conn.credential(slot.field)
        if not value:
            continue
        container = request.query if slot.kind == "query" else request.headers
        current = container.get(slot.name)
        new = _new_value(slot, conn, current, value)
        if new is not None and new != current:
            changed.append(slot.key)
            container[slot.name] = new
    return changed


def conflict(request: Any, provider: Provider) -> str | None:
    """Why the request's slots are ambiguous (one sent twice), or None."""
    for slot in slots(provider):
        container = request.query if slot.kind == "query" else request.headers
        values = container.get_all(slot.name)
        where = "query parameter" if slot.kind == "query" else "header"
        if len(values) > 1:
            return f"the {slot.name} {where} appears more than once"
        if values and _placeholders(values[0]) > 1:
            return f"the {slot.name} {where} holds the placeholder more than once"
    return None


def wire_values(provider: Provider, conn: Connection) -> set[str]:
    """Every secret of the connection, in each form a slot writes it or a server may quote it."""
    out: set[str] = set()
    for name in provider.secret_fields():
        value = conn.credential(name)
        if value:
            out |= {value, quote(value, safe=""), value.replace("/", "\\/")}
    for slot in slots(provider):
        value = conn.credential(slot.field)
        if value and slot.kind == "basic":
            encoded = _fresh_value(slot, conn, value).split(" ", 1)[1]
            out |= {encoded, encoded.rstrip("=")}
    return {v for v in out if len(v) >= 8}  # shorter "secrets" would scrub ordinary text

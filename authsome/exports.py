"""Which environment variables a connection fills, with real values or placeholders.

`authsome export` hands real values to the user's shell: access tokens, API
keys and the values of extra fields, never refresh or id tokens. `authsome
run` hands the child a placeholder for every secret name in `export`, and
real values only for fields the definition marks as not secret (an account id
that also appears in URLs).
"""

from __future__ import annotations

import shlex

from authsome.models import PLACEHOLDER, Connection, Provider

EXPORTABLE_OAUTH = frozenset({"access_token"})


def _is_exportable(provider: Provider, field: str) -> bool:
    if provider.auth_type == "oauth2":
        return field in EXPORTABLE_OAUTH
    return True  # api_key and extra fields


def real_values(provider: Provider, conn: Connection) -> dict[str, str]:
    """Env name -> real value, for `authsome export`."""
    out: dict[str, str] = {}
    for field, names in provider.export.items():
        if not _is_exportable(provider, field):
            continue
        value = conn.credential(field)
        if value:
            for name in names:
                out[name] = value
    return out


def child_values(provider: Provider, conn: Connection) -> dict[str, str]:
    """Env name -> value for a child under `authsome run`: placeholders for secrets."""
    secret = provider.secret_fields()
    out: dict[str, str] = {}
    for field, names in provider.export.items():
        value = PLACEHOLDER if field in secret else conn.credential(field)
        if value:
            for name in names:
                out[name] = value
    return out


def render(values: dict[str, str], fmt: str) -> str:
    """`env`: eval-able `export NAME='value'` lines; `shell`: plain `NAME='value'` lines."""
    if fmt == "json":
        import json

        return json.dumps(values, indent=2, sort_keys=True)
    prefix = "export " if fmt == "env" else ""
    return "\n".join(f"{prefix}{name}={shlex.quote(value)}" for name, value in sorted(values.items()))

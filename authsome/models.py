"""Plain, typed data: provider definitions, connections, client credentials.

Nothing here does I/O. Every type that holds a secret can produce a
`redacted()` copy of itself for logs, `--json` output and error messages.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

REDACTED = "<redacted>"
PLACEHOLDER = "authsome-proxy-managed"
# Refresh an access token this many seconds before it expires (authlib's default),
# but never earlier than this share of its lifetime before: a 20 s token is
# refreshed 2 s before it ends, not on every request.
REFRESH_LEEWAY = 60.0
LEEWAY_SHARE = 0.1

Status = Literal["connected", "not_connected", "expired", "invalid"]

# Credential fields that never leave authsome through `export`.
NEVER_EXPORTED = frozenset({"refresh_token"})
OAUTH_FIELDS = ("access_token", "refresh_token", "id_token")
# OAuthConfig's URLs, each of which may start with `{base_url}`.
OAUTH_URL_FIELDS = ("authorization_url", "token_url", "revocation_url", "device_authorization_url",
                    "registration_endpoint", "issuer")


@dataclass(frozen=True)
class OAuthConfig:
    token_url: str
    scopes: tuple[str, ...]
    authorization_url: str | None = None
    revocation_url: str | None = None
    device_authorization_url: str | None = None
    registration_endpoint: str | None = None
    issuer: str | None = None
    scope_separator: str = " "
    pkce: bool = True
    supports_device_code: bool = False
    supports_dcr: bool = False
    base_url: str | None = None
    client_auth: Literal["basic", "post", "none"] = "basic"
    authorize_params: dict[str, str] = field(default_factory=dict)
    token_response_path: str | None = None
    resource: str | None = None  # RFC 8707: sent in authorization, token and refresh requests


@dataclass(frozen=True)
class ExtraField:
    name: str
    label: str
    secret: bool = True
    header_name: str | None = None
    header_prefix: str = ""
    pattern: str | None = None
    pattern_hint: str | None = None
    env_var: str | None = None


@dataclass(frozen=True)
class ApiKeyConfig:
    header_name: str = "Authorization"
    header_prefix: str = "Bearer"
    key_pattern: str | None = None
    key_pattern_hint: str | None = None
    env_var: str | None = None
    location: Literal["header", "query", "basic"] = "header"
    query_param: str | None = None
    basic_username_field: str | None = None
    basic_username: str | None = None
    extra_fields: tuple[ExtraField, ...] = ()


@dataclass(frozen=True)
class Provider:
    name: str
    display_name: str
    auth_type: Literal["oauth2", "api_key"]
    flow: str
    api_url: tuple[str, ...]
    export: dict[str, tuple[str, ...]]
    oauth: OAuthConfig | None = None
    # api_url entries for a connection to a self-hosted deployment ({base_url}/...).
    self_hosted_api_url: tuple[str, ...] = ()
    api_key: ApiKeyConfig | None = None
    description: str | None = None
    docs_url: str | None = None
    user_info: tuple[str, str] | None = None  # (URL, dotted path of the account name in its JSON)
    mcp_url: str | None = None  # a remote MCP server whose OAuth authsome owns (`authsome mcp add`)
    source: Literal["bundled", "custom"] = "bundled"
    path: str | None = None
    # The definition exactly as written, for `inspect` (pipe-able back).
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def secret_fields(self) -> frozenset[str]:
        """Credential fields whose values must never reach the child."""
        if self.auth_type == "oauth2":
            return frozenset(OAUTH_FIELDS)
        extra = self.api_key.extra_fields if self.api_key else ()
        return frozenset({"api_key"} | {f.name for f in extra if f.secret})


@dataclass(frozen=True)
class Connection:
    """One logged-in account of one provider, as stored in the vault."""

    provider: str
    name: str = "default"
    auth_type: Literal["oauth2", "api_key"] = "oauth2"
    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str | None = None
    expires_at: float | None = None
    issued_at: float | None = None  # when the access token was received (its lifetime: expires_at - issued_at)
    scopes: tuple[str, ...] = ()
    api_key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    state: Literal["connected", "invalid"] = "connected"
    state_reason: str | None = None
    account: str | None = None
    base_url: str | None = None
    flow: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    # Incremented on every write: a writer that re-reads under the lock can
    # tell whether another process replaced the record meanwhile.
    version: int = 0
    # Handed to a CI bundle (`authsome ci export`): this machine no longer uses or
    # refreshes it, so a rotating grant is never forked.
    exported_at: float | None = None
    # Where the definition sent credentials when the user last confirmed it
    # (`authsome.providers.trust.snapshot`); None for records made before that.
    definition: dict[str, Any] | None = field(default=None, repr=False)

    def status(self, now: float | None = None) -> Status:
        if self.state == "invalid":
            return "invalid"
        if self.is_expired(now) and not self.refresh_token:
            return "expired"
        return "connected"

    def refresh_leeway(self, leeway: float = REFRESH_LEEWAY) -> float:
        """`leeway`, capped at a tenth of the token's lifetime (known from issued_at, else the last write)."""
        if self.expires_at is None:
            return leeway
        lifetime = self.expires_at - (self.issued_at or self.updated_at)
        return max(0.0, min(leeway, lifetime * LEEWAY_SHARE))

    def should_refresh(self, leeway: float = REFRESH_LEEWAY) -> bool:
        """A refreshable OAuth token within its refresh leeway of expiry (or past it)."""
        return (self.auth_type == "oauth2" and bool(self.refresh_token)
                and self.is_expired(leeway=self.refresh_leeway(leeway)))

    def is_expired(self, now: float | None = None, leeway: float = 0.0) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at - leeway <= (time.time() if now is None else now)

    def credential(self, field_name: str) -> str | None:
        """The value of a credential field named in a provider's `export`."""
        if field_name in ("access_token", "refresh_token", "id_token", "api_key"):
            return getattr(self, field_name)
        return self.extra.get(field_name)

    def with_changes(self, **changes: Any) -> Connection:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = list(self.scopes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["scopes"] = tuple(known.get("scopes") or ())
        known["extra"] = dict(known.get("extra") or {})
        return cls(**known)

    def redacted(self, secret_extra: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The record with every secret replaced, plus the derived status."""
        data = self.to_dict()
        for name in ("access_token", "refresh_token", "id_token", "api_key"):
            if data.get(name):
                data[name] = REDACTED
        data["extra"] = {
            k: (REDACTED if k in secret_extra else v) for k, v in self.extra.items()
        }
        data.pop("definition", None)  # bookkeeping, shown by `authsome trust`
        data["status"] = self.status()
        return data


@dataclass(frozen=True)
class ClientCredentials:
    """The OAuth client a provider knows authsome as (typed in, or registered)."""

    provider: str
    client_id: str
    client_secret: str | None = None
    source: Literal["form", "env", "prompt", "dcr"] = "form"
    registration: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    definition: dict[str, Any] | None = field(default=None, repr=False)  # as on Connection

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientCredentials:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["registration"] = dict(known.get("registration") or {})
        return cls(**known)

    def redacted(self) -> dict[str, Any]:
        data = self.to_dict()
        data.pop("definition", None)
        if data.get("client_secret"):
            data["client_secret"] = REDACTED
        if data.get("registration"):
            data["registration"] = {
                k: (REDACTED if "token" in k or "secret" in k else v)
                for k, v in data["registration"].items()
            }
        return data

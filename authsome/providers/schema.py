"""Validate a provider definition and turn it into a `Provider`.

Three passes: the JSON Schema (`providers/schema.json`, shipped as
`authsome.catalog`) checks shape and types; `semantic_problems` checks what a
schema cannot say (patterns compile on the linear-time engine, the flow is
supported, URLs are https, export names refer to real credential fields and
are no process, proxy or trust variables); `scope_problems` refuses routes
that pin a public suffix (it loads the public suffix list, so callers run it
with the schema pass, which is cached for files that passed before).
Problems come back as (field, reason) pairs so callers can name the file,
the field and the reason.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from authsome.envnames import reserved_problem
from authsome.models import OAUTH_FIELDS, OAUTH_URL_FIELDS, ApiKeyConfig, ExtraField, OAuthConfig, Provider
from authsome.providers.patterns import PatternError, compile_pattern
from authsome.providers.routes import RouteError, admitting, parse_route, registrable_problem

Problem = tuple[str, str]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@functools.cache
def schema_bytes() -> bytes:
    return resources.files("authsome.catalog").joinpath("schema.json").read_bytes()


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads(schema_bytes())


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def _pointer(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def schema_problems(raw: Any) -> list[Problem]:
    errors = sorted(_validator().iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for err in errors:
        # A failed if/then or oneOf reports on its parent; its deepest cause names the field.
        leaf = min(err.context or [err], key=lambda e: -len(e.absolute_path))
        problems.append((_pointer(leaf.absolute_path), leaf.message))
    return problems


def _check_url(value: str | None, field: str) -> list[Problem]:
    if not value:
        return []
    parts = urlsplit(value.replace("{base_url}", "https://base.invalid"))
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        return [(field, "must use https:// (plain http is allowed only for loopback test servers)")]
    return []


def _route_entries(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, entry) for every api_url and self_hosted_api_url entry, {base_url} filled with a stand-in."""
    out = []
    for key in ("api_url", "self_hosted_api_url"):
        value = raw.get(key)
        if value is None:
            continue
        for i, entry in enumerate(value if isinstance(value, list) else [value]):
            out.append((f"{key}[{i}]" if isinstance(value, list) else key, entry.replace("{base_url}", "https://base.example.com")))
    return out


def scope_problems(raw: dict[str, Any]) -> list[Problem]:
    """Routes whose pinned domain is a public suffix (`regex:^.*\\.co\\.uk$`, `com`)."""
    problems = []
    for field, entry in _route_entries(raw):
        try:
            reason = registrable_problem(parse_route(entry))
        except RouteError:
            continue  # reported by semantic_problems
        if reason:
            problems.append((field, reason))
    return problems


def _user_info_problems(raw: dict[str, Any]) -> list[Problem]:
    """The access token goes to user_info.url: it must be one of the definition's own API routes."""
    if raw["auth_type"] != "oauth2":
        return [("user_info", "applies to oauth2 definitions only")]
    url = raw["user_info"]["url"]
    api_url = raw["api_url"] if isinstance(raw["api_url"], list) else [raw["api_url"]]
    self_hosted = raw.get("self_hosted_api_url") or []
    checks = []  # (URL as some deployment fills it, the routes that deployment uses)
    if "{base_url}" not in url:
        checks.append((url, api_url))
    else:
        default = ((raw.get("oauth") or {}).get("base_url") or "").rstrip("/")
        if default:
            checks.append((url.replace("{base_url}", default), api_url))
        if self_hosted:
            base = "https://base.example.com"
            entries = [self_hosted] if isinstance(self_hosted, str) else self_hosted
            checks.append((url.replace("{base_url}", base), [e.replace("{base_url}", base) for e in entries]))
    for filled, entries in checks:
        parts = urlsplit(filled)
        if parts.scheme != "https" or not parts.hostname:
            return [("user_info.url", "must be an https URL")]
        try:
            routes = [parse_route(e) for e in entries]
        except RouteError:
            return []  # reported with api_url
        if admitting(routes, parts.hostname, parts.port or 443, parts.path or "/") is None:
            return [("user_info.url", f"{parts.hostname}{parts.path} is not one of the definition's routes, "
                                      "and the access token would go there")]
    return []


def semantic_problems(raw: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    routes = raw["api_url"] if isinstance(raw["api_url"], list) else [raw["api_url"]]
    for i, entry in enumerate(routes):
        field = f"api_url[{i}]" if isinstance(raw["api_url"], list) else "api_url"
        try:
            parse_route(entry)
        except RouteError as exc:
            problems.append((field, str(exc)))
    if all(entry.strip().startswith("!") for entry in routes):
        problems.append(("api_url", "lists only exceptions (!host); name at least one host that receives the credential"))

    known_fields: set[str]
    oauth = raw.get("oauth")
    if raw.get("self_hosted_api_url") is not None and not any(
        "{base_url}" in str((oauth or {}).get(name) or "")
        for name in ("authorization_url", "token_url", "device_authorization_url", "registration_endpoint", "issuer")
    ):
        problems.append(("self_hosted_api_url", "needs OAuth endpoints written as {base_url}/... (nothing else varies per deployment)"))
    self_hosted = raw.get("self_hosted_api_url") or []
    for i, entry in enumerate([self_hosted] if isinstance(self_hosted, str) else self_hosted):
        if "{base_url}" in entry[1:]:
            problems.append((f"self_hosted_api_url[{i}]", "{base_url} may only start an entry ({base_url}/path)"))
            continue
        try:
            parse_route(entry.replace("{base_url}", "https://base.invalid"))
        except RouteError as exc:
            problems.append((f"self_hosted_api_url[{i}]", str(exc)))
    if raw.get("user_info"):
        problems += _user_info_problems(raw)
    if raw["auth_type"] == "oauth2":
        known_fields = set(OAUTH_FIELDS)
        flow = raw["flow"]
        for name in (*OAUTH_URL_FIELDS, "base_url"):
            problems += _check_url(oauth.get(name), f"oauth.{name}")
        if flow in ("pkce", "dcr_pkce") and not oauth.get("authorization_url"):
            problems.append(("oauth.authorization_url", f"required for the '{flow}' flow"))
        if flow == "device_code" and not oauth.get("supports_device_code"):
            problems.append(("flow", "'device_code' needs oauth.supports_device_code: true"))
        if oauth.get("supports_device_code") and not oauth.get("device_authorization_url"):
            problems.append(("oauth.device_authorization_url", "required when supports_device_code is true"))
        if flow == "dcr_pkce" and not oauth.get("supports_dcr"):
            problems.append(("flow", "'dcr_pkce' needs oauth.supports_dcr: true"))
        if oauth.get("supports_dcr") and not (oauth.get("registration_endpoint") or oauth.get("issuer")):
            problems.append(("oauth.registration_endpoint", "DCR needs registration_endpoint or issuer (for discovery)"))
    else:
        api_key = raw.get("api_key", {})
        extra = [f["name"] for f in api_key.get("extra_fields", [])]
        known_fields = {"api_key", *extra}
        if len(set(extra)) != len(extra):
            problems.append(("api_key.extra_fields", "field names must be unique"))
        for field, pattern in [("api_key.key_pattern", api_key.get("key_pattern"))] + [
            (f"api_key.extra_fields[{i}].pattern", f.get("pattern"))
            for i, f in enumerate(api_key.get("extra_fields", []))
        ]:
            if pattern:
                try:
                    compile_pattern(pattern)
                except PatternError as exc:
                    problems.append((field, f"invalid regular expression: {exc}"))
        for field, env in [("api_key.env_var", api_key.get("env_var"))] + [
            (f"api_key.extra_fields[{i}].env_var", f.get("env_var")) for i, f in enumerate(api_key.get("extra_fields", []))
        ]:
            if env and (reason := reserved_problem(env)):
                problems.append((field, reason))
        user_field = api_key.get("basic_username_field")
        if user_field and user_field not in extra:
            problems.append(("api_key.basic_username_field", f"'{user_field}' is not one of api_key.extra_fields"))

    seen_env: dict[str, str] = {}
    for cred_field, names in raw["export"].items():
        if cred_field not in known_fields:
            problems.append((f"export.{cred_field}", f"'{cred_field}' is not a credential field of this provider"))
        for env in [names] if isinstance(names, str) else names:
            if reason := reserved_problem(env):
                problems.append((f"export.{cred_field}", reason))
            if env in seen_env:
                problems.append((f"export.{cred_field}", f"{env} is already used by export.{seen_env[env]}"))
            seen_env[env] = cred_field
    return problems


def build_provider(raw: dict[str, Any], *, source: str, path: str | None) -> Provider:
    """Turn a validated definition into the typed model."""
    oauth = api_key = None
    if "oauth" in raw:
        o = raw["oauth"]
        oauth = OAuthConfig(
            token_url=o["token_url"],
            scopes=tuple(o.get("scopes", ())),
            authorization_url=o.get("authorization_url"),
            revocation_url=o.get("revocation_url"),
            device_authorization_url=o.get("device_authorization_url"),
            registration_endpoint=o.get("registration_endpoint"),
            issuer=o.get("issuer"),
            scope_separator=o.get("scope_separator", " "),
            pkce=o.get("pkce", True),
            supports_device_code=o.get("supports_device_code", False),
            supports_dcr=o.get("supports_dcr", False),
            base_url=o.get("base_url"),
            client_auth=o.get("client_auth", "basic"),
            authorize_params=dict(o.get("authorize_params", {})),
            token_response_path=o.get("token_response_path"),
            resource=o.get("resource"),
        )
    if "api_key" in raw:
        a = raw["api_key"]
        api_key = ApiKeyConfig(
            header_name=a.get("header_name", "Authorization"),
            header_prefix=a.get("header_prefix", "Bearer"),
            key_pattern=a.get("key_pattern"),
            key_pattern_hint=a.get("key_pattern_hint"),
            env_var=a.get("env_var"),
            location=a.get("in", "header"),
            query_param=a.get("query_param"),
            basic_username_field=a.get("basic_username_field"),
            basic_username=a.get("basic_username"),
            extra_fields=tuple(ExtraField(**f) for f in a.get("extra_fields", ())),
        )
    routes = raw["api_url"]
    self_hosted = raw.get("self_hosted_api_url") or ()
    return Provider(
        name=raw["name"],
        display_name=raw["display_name"],
        auth_type=raw["auth_type"],
        flow=raw["flow"],
        api_url=tuple([routes] if isinstance(routes, str) else routes),
        self_hosted_api_url=tuple([self_hosted] if isinstance(self_hosted, str) else self_hosted),
        export={k: tuple([v] if isinstance(v, str) else v) for k, v in raw["export"].items()},
        oauth=oauth,
        api_key=api_key,
        description=raw.get("description"),
        docs_url=raw.get("docs_url"),
        user_info=(raw["user_info"]["url"], raw["user_info"]["account"]) if raw.get("user_info") else None,
        mcp_url=(raw.get("mcp") or {}).get("url"),
        source=source,  # type: ignore[arg-type]
        path=path,
        raw=raw,
    )

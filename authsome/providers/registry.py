"""Bundled and user provider definitions; the user's file always wins.

Bundled definitions ship as `authsome.catalog` (the repository's top-level
`providers/`). User definitions live in `$AUTHSOME_HOME/providers/NAME.json`.
A user file that does not validate is reported with its path, field and
reason; it never breaks listing, and it never silently falls back to the
bundled definition when that provider is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from authsome import paths
from authsome.errors import ProviderError, ProviderInvalid, ProviderNotFound, UsageError
from authsome.models import Provider
from authsome.providers import schema

SCHEMA_FILE = "schema.json"


def bundled_dir() -> Path:
    return Path(str(resources.files("authsome.catalog")))


def parse_definition(text: bytes, path: str, *, source: str = "custom", schema_checked: bool = False) -> Provider:
    """Validate one definition; raise ProviderInvalid naming the first problem."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ProviderInvalid(path, "(file)", f"not valid JSON: {exc}") from None
    problems = [] if schema_checked else schema.schema_problems(raw)
    if not problems:
        problems = schema.semantic_problems(raw)
    if not problems and not schema_checked:
        problems = schema.scope_problems(raw)
    if problems:
        field_name, reason = problems[0]
        raise ProviderInvalid(path, field_name, reason)
    return schema.build_provider(raw, source=source, path=path)


class _SchemaPassCache:
    """Digests of custom files that already passed the JSON Schema and the route-scope check.

    Importing jsonschema costs about 0.3 s and the public suffix list 40 ms,
    more than the rest of `authsome get`; a file whose exact bytes (under this
    exact schema and these checks) passed before is not checked again.
    Bundled files skip both: the test suite validates every one of them. The
    semantic checks always run. The cache is no defence against someone who
    can write the home: a changed definition of a provider with credentials is
    caught by `authsome.providers.trust` instead.
    """

    CHECKS = b"routes-pin-registrable-domain-v1"

    def __init__(self, home: Path) -> None:
        self.path = home / "cache" / "schema-passed"

    def _digest(self, text: bytes) -> str:
        return hashlib.sha256(schema.schema_bytes() + b"\0" + self.CHECKS + b"\0" + text).hexdigest()

    def _entries(self) -> set[str]:
        try:
            return set(self.path.read_text().split())
        except OSError:
            return set()

    def passed(self, text: bytes) -> bool:
        return self._digest(text) in self._entries()

    def remember(self, text: bytes) -> None:
        entries = self._entries() | {self._digest(text)}
        try:
            paths.write_private(self.path, "\n".join(sorted(entries)[-500:]).encode() + b"\n")
        except OSError:
            pass  # only a cache


def _load_file(path: Path, source: str) -> Provider:
    """One definition file; a custom one's schema pass is cached in the home it lives in."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ProviderInvalid(str(path), "(file)", f"cannot be read: {exc.strerror}") from None
    cache = _SchemaPassCache(path.parent.parent) if source == "custom" else None
    checked = source == "bundled" or (cache is not None and cache.passed(text))
    provider = parse_definition(text, str(path), source=source, schema_checked=checked)
    if cache is not None and not checked:
        cache.remember(text)
    if provider.name != path.stem:
        raise ProviderInvalid(str(path), "name", f"'{provider.name}' does not match the file name '{path.stem}.json'")
    return provider


def _definition_files(directory: Path) -> dict[str, Path]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {
        n[:-5]: directory / n
        for n in names
        if n.endswith(".json") and n != SCHEMA_FILE and not n.startswith(".")
    }


@dataclass
class Catalog:
    """Every provider that loaded, and every file that did not."""

    providers: dict[str, Provider] = field(default_factory=dict)
    problems: list[ProviderInvalid] = field(default_factory=list)
    # Names whose user file is invalid: using them must fail, not fall back.
    broken: set[str] = field(default_factory=set)


class Registry:
    def __init__(self, user_dir: Path | None = None, bundled: Path | None = None):
        self.user_dir = user_dir if user_dir is not None else paths.providers_dir()
        self.bundled = bundled if bundled is not None else bundled_dir()

    def get(self, name: str) -> Provider:
        """The effective definition of one provider (user file first)."""
        user_file = self.user_file(name)
        if user_file.is_file():
            return _load_file(user_file, "custom")
        return self.get_bundled(name)

    def get_bundled(self, name: str) -> Provider:
        if not self.is_bundled(name):
            raise ProviderNotFound(name)
        return _load_file(self.bundled / f"{name}.json", "bundled")

    def user_file(self, name: str) -> Path:
        return self.user_dir / f"{name}.json"

    def catalog(self) -> Catalog:
        out = Catalog()
        for source, directory in (("bundled", self.bundled), ("custom", self.user_dir)):
            for name, path in sorted(_definition_files(directory).items()):
                try:
                    out.providers[name] = _load_file(path, source)
                    out.broken.discard(name)
                except ProviderInvalid as exc:
                    out.problems.append(exc)
                    if source == "custom":
                        out.broken.add(name)
        return out

    def mcp_servers(self) -> list[str]:
        """Custom providers that are remote MCP servers (`authsome mcp add`); invalid files are left out."""
        out = []
        for name, path in sorted(_definition_files(self.user_dir).items()):
            try:
                if b'"mcp"' not in path.read_bytes():  # cheap: most runs have none, and validating costs
                    continue
                if _load_file(path, "custom").mcp_url:
                    out.append(name)
            except (OSError, ProviderInvalid):
                continue
        return out

    def is_bundled(self, name: str) -> bool:
        return (self.bundled / f"{name}.json").is_file() and name != SCHEMA_FILE[:-5]

    def register(self, text: bytes, origin: str, *, force: bool = False) -> tuple[Provider, bool]:
        """Validate and install a user definition. Returns (provider, overrides_bundled)."""
        provider = parse_definition(text, origin)
        target = self.user_dir / f"{provider.name}.json"
        if target.exists() and not force:
            raise UsageError(
                f"A custom definition for '{provider.name}' already exists at {target}.",
                f"add --force to replace it, or `authsome remove {provider.name}` first",
            )
        paths.ensure_dir(self.user_dir)
        paths.atomic_write(target, _pretty(provider.raw))
        return schema.build_provider(provider.raw, source="custom", path=str(target)), self.is_bundled(provider.name)

    def overlapping(self, provider: Provider) -> list[tuple[str, str]]:
        """(route, other provider) for each of `provider`'s routes another definition routes too."""
        from authsome.providers.routes import overlap, parse_routes

        mine = [r for r in parse_routes(provider.api_url) if not r.exclude]
        out = []
        for name, other in sorted(self.catalog().providers.items()):
            if name != provider.name:
                theirs = [r for r in parse_routes(other.api_url) if not r.exclude]
                out += [(a.text, name) for a in mine if any(overlap(a, b) for b in theirs)]
        return out

    def remove(self, name: str) -> Path:
        target = self.user_dir / f"{name}.json"
        if not target.exists():
            if self.is_bundled(name):
                raise ProviderError(
                    f"'{name}' is a bundled provider; only custom definitions can be removed.",
                    "bundled definitions are overridden by registering a custom file with the same name",
                )
            raise ProviderNotFound(name)
        target.unlink()
        return target


def _pretty(raw: dict[str, Any]) -> bytes:
    return (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode()

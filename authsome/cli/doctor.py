"""`authsome doctor`: check the installation, the home, the vault and the definitions."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import NamedTuple

from authsome import render
from authsome.cli.common import add_json, registry, vault


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str
    severity: str = "error"  # or "warning": reported, but does not fail doctor


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the installation, home, vault and provider files",
        description="Run every self-check and report problems with the command that fixes them.\n"
        "Exits 1 when any check fails (warnings do not fail).",
        epilog="examples:\n  authsome doctor\n  authsome doctor --json | jq '.checks[] | select(.ok | not)'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_json(p)
    p.set_defaults(func=cmd_doctor)


def _home_checks() -> list[Check]:
    from authsome import paths

    root = paths.ensure_home()
    out = []
    mode = stat.S_IMODE(root.stat().st_mode)
    out.append(Check("home", mode & 0o077 == 0, f"{root} (mode {mode:o})"))
    probe = root / f"{paths.TMP_PREFIX}doctor-{os.getpid()}"
    try:
        paths.atomic_write(probe, b"")
        probe.unlink()
        out.append(Check("home writable", True, "files can be written and replaced atomically"))
    except OSError as exc:
        out.append(Check("home writable", False, f"cannot write in {root}: {exc.strerror}; {paths.HOME_HINT}"))
    loose = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if stat.S_IMODE(os.lstat(path).st_mode) & 0o077:
                loose.append(os.path.relpath(path, root))
    out.append(Check(
        "file modes", not loose,
        "every file is 0600" if not loose else f"readable by others: {', '.join(sorted(loose)[:5])}; fix with chmod 600",
        severity="warning",
    ))
    return out


def _vault_checks() -> list[Check]:
    v = vault()
    entries = v.list_connections()
    out = []
    if entries or (v.root.parent / "master.key").exists() or "AUTHSOME_MASTER_KEY" in os.environ:
        try:
            key = v.key
            out.append(Check("master key", True, f"from {key.source} ({key.location})"))
        except Exception as exc:  # reported, not raised: doctor shows everything
            out.append(Check("master key", False, getattr(exc, "message", type(exc).__name__)))
            return out
    bad = [e for e in entries if e.error is not None]
    out.append(Check(
        "vault", not bad,
        f"{len(entries)} connection(s) readable" if not bad
        else "; ".join(f"{e.provider}/{e.name}: {e.error.message}" for e in bad if e.error),
    ))
    return out


def _provider_checks() -> list[Check]:
    from authsome.providers import trust

    catalog = registry().catalog()
    problems = catalog.problems
    out = [Check(
        "providers", not problems,
        f"{len(catalog.providers)} definitions valid" if not problems
        else "; ".join(p.message for p in problems),
    )]
    changed = []
    for name in vault().providers_with_records():
        provider = catalog.providers.get(name)
        try:
            if provider is not None and trust.pending(vault(), provider):
                changed.append(name)
        except Exception:  # an unreadable record is the vault check's to report
            continue
    out.append(Check(
        "definitions", not changed,
        "stored credentials match their definitions" if not changed
        else "changed since their credentials were confirmed: " + ", ".join(
            f"{n} (`authsome trust {n}`)" for n in changed),
    ))
    return out


def _runtime_checks() -> list[Check]:
    from importlib import metadata

    import socket

    out = [Check("python", sys.version_info >= (3, 12), sys.version.split()[0])]
    try:
        out.append(Check("mitmproxy", True, metadata.version("mitmproxy")))
    except metadata.PackageNotFoundError:
        out.append(Check("mitmproxy", False, "not installed; reinstall authsome"))
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 7998))
            out.append(Check("login port", True, "127.0.0.1:7998 is free", severity="warning"))
        except OSError:
            out.append(Check("login port", False, "127.0.0.1:7998 is in use; browser logins will fail until it is free", severity="warning"))
    return out


def cmd_doctor(args) -> int:
    checks = _runtime_checks() + _home_checks() + _vault_checks() + _provider_checks()
    failed = [c for c in checks if not c.ok and c.severity == "error"]
    if args.json:
        render.as_json({"ok": not failed, "checks": [c._asdict() for c in checks]})
    else:
        for c in checks:
            mark = "ok  " if c.ok else ("FAIL" if c.severity == "error" else "warn")
            render.out(f"{mark}  {c.name:<12} {c.detail}")
    return 1 if failed else 0

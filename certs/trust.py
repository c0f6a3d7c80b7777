"""Which certificate authorities authsome trusts, and the bundle a child trusts.

authsome's own HTTPS calls (token endpoints, revocation, registration) and the
proxy's upstream connections trust the same set: certifi's roots, the
system's roots, and whatever the user's environment already adds through
SSL_CERT_FILE / REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (corporate CAs, test
CAs). The child of `authsome run` additionally trusts the per-run CA.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path

# Variables that name a CA bundle a program of the user's already trusts.
ENV_BUNDLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def source_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """Existing bundle files to trust, in a stable order, without duplicates."""
    env = os.environ if env is None else env
    candidates: list[str | None] = [_certifi(), ssl.get_default_verify_paths().cafile, *SYSTEM_BUNDLES]
    candidates += [env.get(name) for name in ENV_BUNDLES]
    out: list[Path] = []
    seen: set[Path] = set()
    for c in candidates:
        if not c:
            continue
        p = Path(c)
        try:
            real = p.resolve()
        except OSError:
            continue
        if real in seen or not real.is_file():
            continue
        seen.add(real)
        out.append(p)
    return out


def split_pem(text: str) -> list[str]:
    certs, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if line == _BEGIN:
            current = [line]
        elif line == _END and current is not None:
            current.append(line)
            certs.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return certs


def bundle_pem(extra: Iterable[Path] = (), env: Mapping[str, str] | None = None) -> str:
    """One PEM bundle: every trusted root (deduplicated), then `extra` files."""
    return concat_pem([*source_files(env), *extra])


def concat_pem(files: Iterable[Path]) -> str:
    """The certificates of `files`, in order, each once; unreadable files are skipped."""
    seen: set[str] = set()
    parts: list[str] = []
    for path in files:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        for cert in split_pem(text):
            if cert not in seen:
                seen.add(cert)
                parts.append(cert)
    return "".join(parts)


def ssl_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A verifying client context for authsome's own HTTPS calls."""
    ctx = ssl.create_default_context()
    for path in source_files(env):
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, OSError):
            continue  # an unreadable or non-PEM file in the environment is skipped, not fatal
    return ctx

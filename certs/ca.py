"""The per-run certificate authority the proxy signs routed hosts with.

A fresh CA is made for every `authsome run` and deleted when it ends. Where
the routes allow it, the CA is X.509 name-constrained to the routed hosts
(permitted DNS subtrees) and to no IP address at all, so even a stolen CA key
cannot impersonate any other site to a verifying client. A regex route whose
pattern does not end in a fixed domain (`\\.example\\.com$`) cannot be turned
into a subtree; then the CA carries no DNS constraint (IP addresses stay excluded) and `constrained` is
False.

EC P-256: generating it costs about a millisecond (RSA 2048: 30-45 ms), and
mitmproxy loads the CA twice. Critical basicConstraints, keyUsage
keyCertSign/cRLSign and a subjectKeyIdentifier are required by strict
verifiers (Python 3.13's default context among them).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from authsome.providers.routes import Route

# mitmproxy reads the CA (key and certificate, PEM) from this file in its confdir.
MITMPROXY_CA_FILE = "mitmproxy-ca.pem"
CA_CERT_FILE = "authsome-ca-cert.pem"
NOTHING = "authsome.invalid"
# The literal domain a pattern ends with: at least two labels, so a subtree is never a bare TLD.
_LITERAL_SUFFIX = re.compile(r"([a-z0-9-]+(?:\\\.[a-z0-9-]+)+)\$$")


@dataclass(frozen=True)
class RunCA:
    confdir: Path
    cert_path: Path  # the certificate alone, for the child's trust
    key_path: Path  # key + certificate, as mitmproxy wants it (0600)
    permitted: tuple[str, ...]  # DNS subtrees; empty when unconstrained
    constrained: bool


def subtree_for(route: Route) -> str | None:
    """The DNS subtree that covers a route, or None when none can be derived."""
    if route.host is not None:
        return route.host
    assert route.pattern is not None
    m = _LITERAL_SUFFIX.search(route.pattern.pattern)
    if not m:
        return None
    # `^[a-z0-9-]+\.googleapis\.com$` -> googleapis.com (a subtree includes subdomains). A
    # subtree narrower than the pattern only makes TLS fail; it can never widen trust.
    return m.group(1).replace("\\.", ".")


def permitted_subtrees(routes: Iterable[Route]) -> tuple[str, ...] | None:
    """Subtrees covering every route, or None when any route cannot be covered."""
    out: list[str] = []
    for route in routes:
        subtree = subtree_for(route)
        if subtree is None:
            return None
        if subtree not in out:
            out.append(subtree)
    return tuple(out)


def create(confdir: Path, routes: Iterable[Route], *, days: int = 2) -> RunCA:
    """Write a new CA into `confdir` (created 0700); the key file is 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    confdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(confdir, 0o700)
    routes = list(routes)
    # Nothing routed: nothing is intercepted, so the CA may sign nothing real (RFC 2606 .invalid).
    subtrees = permitted_subtrees(routes) if routes else (NOTHING,)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authsome"),
        x509.NameAttribute(NameOID.COMMON_NAME, "authsome per-run CA"),
    ])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # No IP address ever; DNS names only inside the routed subtrees when they can be derived.
    builder = builder.add_extension(
        x509.NameConstraints(
            permitted_subtrees=[x509.DNSName(s) for s in subtrees] if subtrees else None,
            excluded_subtrees=[x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
                               x509.IPAddress(ipaddress.ip_network("::/0"))],
        ),
        critical=True,
    )
    cert = builder.sign(key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_path = confdir / MITMPROXY_CA_FILE
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem + cert_pem)
    cert_path = confdir / CA_CERT_FILE
    fd = os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cert_pem)
    return RunCA(confdir, cert_path, key_path, subtrees or (), bool(subtrees))

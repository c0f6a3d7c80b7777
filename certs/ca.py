"""The per-run certificate authority the proxy signs routed hosts with.

A fresh CA is made for every `authsome run` and deleted when it ends. It is
X.509 name-constrained to the routed hosts (permitted DNS subtrees: each
route's pinned domain, see `authsome.providers.routes`) and to no IP address
at all, so even a stolen CA key cannot impersonate any other site to a
verifying client.

EC P-256: generating it costs about a millisecond (RSA 2048: 30-45 ms), and
mitmproxy loads the CA twice. Critical basicConstraints, keyUsage
keyCertSign/cRLSign and a subjectKeyIdentifier are required by strict
verifiers (Python 3.13's default context among them).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from authsome.providers.routes import Route

# mitmproxy reads the CA (key and certificate, PEM) from this file in its confdir.
MITMPROXY_CA_FILE = "mitmproxy-ca.pem"
CA_CERT_FILE = "authsome-ca-cert.pem"
NOTHING = "authsome.invalid"


@dataclass(frozen=True)
class RunCA:
    confdir: Path
    cert_path: Path  # the certificate alone, for the child's trust
    key_path: Path  # key + certificate, as mitmproxy wants it (0600)
    permitted: tuple[str, ...]  # DNS subtrees


def permitted_subtrees(routes: Iterable[Route]) -> tuple[str, ...]:
    r"""The DNS subtrees covering every route: their pinned domains, each once.

    A subtree includes subdomains, so `^[a-z0-9-]+\.googleapis\.com$` is covered
    by googleapis.com; a subtree narrower than a pattern only makes TLS fail,
    it can never widen trust.
    """
    return tuple(dict.fromkeys(route.domain for route in routes))


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
    # No IP address ever; DNS names only inside the routed subtrees.
    builder = builder.add_extension(
        x509.NameConstraints(
            permitted_subtrees=[x509.DNSName(s) for s in subtrees],
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
    return RunCA(confdir, cert_path, key_path, subtrees)

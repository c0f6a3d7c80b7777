"""Throw-away TLS material for test servers: one CA, any number of leaf certs.

Usage::

    ca = make_ca(tmp_path / "pki")
    leaf = make_leaf(ca, tmp_path / "pki", ["oidc.test", "api.x.com"])
    # leaf.cert / leaf.key -> give to the server; ca.cert -> verify=... on clients

Keys are EC P-256 (fast to generate). 127.0.0.1 and ::1 are always in the
leaf's subjectAltName, so a server on loopback verifies by IP as well.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA", "Leaf", "make_ca", "make_leaf", "spki_sha256_b64"]

LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class CA:
    cert: Path  # PEM certificate: pass as verify=str(ca.cert) / SSL_CERT_FILE
    key: Path  # PEM private key (PKCS#8, unencrypted)


@dataclass(frozen=True)
class Leaf:
    cert: Path  # PEM: leaf certificate followed by the CA certificate (a chain)
    key: Path
    names: tuple[str, ...]
    spki_sha256: str  # base64 SHA-256 of the leaf's SubjectPublicKeyInfo (for Chromium pinning)


def _now() -> dt.datetime:
    # Back-date a little so clock skew between processes never makes a cert "not yet valid".
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def spki_sha256_b64(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def make_ca(directory: Path, name: str = "authsome test CA") -> CA:
    """Create a self-signed CA valid for one day; writes ca.pem and ca-key.pem."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = CA(cert=directory / "ca.pem", key=directory / "ca-key.pem")
    ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, ca.key)
    return ca


def make_leaf(ca: CA, directory: Path, names: list[str] | tuple[str, ...] = (), stem: str | None = None) -> Leaf:
    """Issue a server certificate for ``names`` (DNS names or IPs) plus loopback IPs.

    Files are ``<stem>.pem`` (leaf + CA chain) and ``<stem>-key.pem``; ``stem``
    defaults to the first name (or "localhost").
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)

    all_names: list[str] = []
    for n in [*names, "localhost", *LOOPBACK_IPS]:
        if n not in all_names:
            all_names.append(n)
    sans: list[x509.GeneralName] = []
    for n in all_names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, all_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    stem = stem or all_names[0].replace(":", "_").replace("*", "wildcard")
    leaf = Leaf(
        cert=directory / f"{stem}.pem",
        key=directory / f"{stem}-key.pem",
        names=tuple(all_names),
        spki_sha256=spki_sha256_b64(cert),
    )
    leaf.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.cert.read_bytes())
    _write_key(key, leaf.key)
    return leaf

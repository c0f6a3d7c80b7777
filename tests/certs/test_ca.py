"""The per-run CA: which subtrees it is constrained to, and how it is built."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from authsome.certs import ca
from authsome.providers.routes import parse_route, parse_routes


@pytest.mark.parametrize("route, subtree", [
    ("api.twitter.com", "api.twitter.com"),
    ("api.example.test:8443", "api.example.test"),
    ("https://api.example.test/v1", "api.example.test"),
    (r"regex:^[a-z0-9-]+\.googleapis\.com$", "googleapis.com"),
    (r"regex:^[a-z0-9-]+\.svc\.([a-z0-9-]+\.)*pinecone\.io$", "pinecone.io"),
])
def test_the_ca_permits_each_routes_pinned_domain(route, subtree):
    assert ca.permitted_subtrees([parse_route(route)]) == (subtree,)


def test_routes_in_one_domain_share_a_subtree():
    routes = parse_routes(["api.twitter.com", "api.x.com", "api.twitter.com:8443"])
    assert ca.permitted_subtrees(routes) == ("api.twitter.com", "api.x.com")


@pytest.mark.invariant
def test_ca_is_ec_p256_constrained_and_private(tmp_path):
    run_ca = ca.create(tmp_path / "ca", parse_routes(["api.twitter.com", "api.x.com"]))
    assert stat.S_IMODE(os.stat(run_ca.confdir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(run_ca.key_path).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(run_ca.cert_path.read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    names = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert basic.critical and basic.value.ca and usage.critical and usage.value.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert names.critical
    assert [n.value for n in names.value.permitted_subtrees] == ["api.twitter.com", "api.x.com"]
    assert {str(n.value) for n in names.value.excluded_subtrees} == {"0.0.0.0/0", "::/0"}
    assert b"PRIVATE KEY" not in run_ca.cert_path.read_bytes()


@pytest.mark.invariant
def test_a_run_without_routes_gets_a_ca_that_can_sign_nothing_real(tmp_path):
    run_ca = ca.create(tmp_path / "ca", [])
    cert = x509.load_pem_x509_certificate(run_ca.cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    assert [n.value for n in names.permitted_subtrees] == ["authsome.invalid"]

"""What authsome trusts, and the bundles a child gets."""

from __future__ import annotations

from authsome.certs import trust


def test_bundle_adds_the_environments_own_cas(test_ca, tmp_path):
    own = test_ca.cert.read_text()
    bundle = trust.bundle_pem(env={"SSL_CERT_FILE": str(test_ca.cert)})
    assert own.strip() in bundle
    assert bundle.count("BEGIN CERTIFICATE") > 50  # the public roots are still there
    assert trust.bundle_pem(env={}).count(own.strip()) == 0


def test_bundle_deduplicates_and_appends_extra(test_ca, tmp_path):
    env = {"SSL_CERT_FILE": str(test_ca.cert), "REQUESTS_CA_BUNDLE": str(test_ca.cert)}
    bundle = trust.bundle_pem([test_ca.cert], env=env)
    assert bundle.count(test_ca.cert.read_text().strip()) == 1


def test_missing_or_broken_env_files_are_skipped(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    env = {"SSL_CERT_FILE": str(tmp_path / "missing.pem"), "REQUESTS_CA_BUNDLE": str(junk)}
    assert trust.bundle_pem(env=env).count("BEGIN CERTIFICATE") > 50
    ctx = trust.ssl_context(env)
    assert ctx.cert_store_stats()["x509_ca"] > 50

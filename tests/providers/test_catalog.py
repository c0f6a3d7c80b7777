"""The bundled catalog: every definition loads, routes narrowly, and is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from authsome.providers.registry import Registry
from authsome.providers.routes import parse_routes, registrable_problem

REPO = Path(__file__).resolve().parents[2]
CATALOG = Registry(user_dir=Path("/nonexistent")).catalog()
PROVIDERS = sorted(CATALOG.providers.values(), key=lambda p: p.name)
REQUIRED = """x github gitlab google microsoft slack notion linear atlassian discord hubspot zoom dropbox salesforce
openai anthropic gemini mistral groq openrouter perplexity together fireworks cohere deepseek elevenlabs
huggingface replicate stripe sendgrid resend postmark mailchimp brevo twilio airtable cloudflare vercel
sentry datadog pinecone tavily exa serpapi firecrawl""".split()


def test_catalog_is_complete_and_loads_cleanly():
    assert CATALOG.problems == []
    assert len(PROVIDERS) >= 45
    assert set(REQUIRED) <= set(CATALOG.providers)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_definition_is_documented_and_uses_https(provider):
    assert provider.docs_url and provider.docs_url.startswith("https://")
    if provider.oauth is not None:
        base = (provider.oauth.base_url or "").rstrip("/")
        for name in ("authorization_url", "token_url", "revocation_url", "device_authorization_url", "registration_endpoint"):
            url = getattr(provider.oauth, name)
            if url:
                assert urlsplit(url.replace("{base_url}", base)).scheme == "https", name


@pytest.mark.invariant
@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_routes_are_narrow_and_reject_lookalikes(provider):
    routes = parse_routes(provider.api_url)
    for route in routes:
        assert registrable_problem(route) is None
        if route.pattern is not None:
            source = route.pattern
            assert source.startswith("^") and source.endswith("$"), f"unanchored: {source}"
            domain = route.domain
            for lookalike in (f"api.{domain}.evil.test", f"evil{domain}", f"{domain}.evil.test", f"x.evil-{domain}"):
                assert not route.matches_host(lookalike), lookalike
        else:
            host = route.host
            for lookalike in (f"{host}.evil.test", f"evil{host}", f"{host}.attacker.test"):
                assert not route.matches_host(lookalike), lookalike


def test_no_two_providers_route_the_same_host():
    """Bundled providers never compete for a request, even when both are connected in one run."""
    from authsome.bindings import Binding

    bindings = [Binding(p, "default", tuple(r for r in parse_routes(p.api_url) if not r.exclude),
                        excluded=tuple(r for r in parse_routes(p.api_url) if r.exclude)) for p in PROVIDERS]
    for a in bindings:
        for route in a.routes:
            if route.host is None:
                continue
            owners = [b.provider.name for b in bindings if b.match_host(route.host, route.port)]
            assert owners == [a.provider.name], f"{route.host} routed by {owners}"


def test_env_names_are_unique_across_the_catalog():
    owners: dict[str, str] = {}
    for p in PROVIDERS:
        for names in p.export.values():
            for name in names:
                assert name not in owners, f"{name} exported by {owners[name]} and {p.name}"
                owners[name] = p.name


def test_sdk_env_conventions_for_common_providers():
    env = {p.name: {n for names in p.export.values() for n in names} for p in PROVIDERS}
    assert "OPENAI_API_KEY" in env["openai"]
    assert "ANTHROPIC_API_KEY" in env["anthropic"]
    assert {"GITHUB_TOKEN", "GH_TOKEN"} <= env["github"]
    assert "X_ACCESS_TOKEN" in env["x"]


def test_generated_provider_doc_is_current():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_providers_doc.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

"""Self-hosted deployments: which hosts receive a connection's token, and which base URLs a login accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authsome.errors import UsageError
from authsome.providers import Registry, parse_definition
from authsome.providers import deployment
from authsome.providers.routes import parse_routes


def _bundled(name: str):
    return Registry(user_dir=Path("/nonexistent")).get(name)


def _definition(**changes):
    raw = {"name": "forge", "display_name": "Forge", "auth_type": "oauth2", "flow": "pkce",
           "oauth": {"authorization_url": "{base_url}/oauth/authorize", "token_url": "{base_url}/oauth/token",
                     "scopes": [], "base_url": "https://forge.example"},
           "api_url": "https://forge.example/api", "export": {"access_token": "FORGE_TOKEN"}}
    for key, value in changes.items():
        if key == "base_url":
            raw["oauth"]["base_url"] = value
        elif value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return parse_definition(json.dumps(raw).encode(), "forge.json")


@pytest.mark.parametrize("text, want", [
    ("https://gitlab.corp.test", "https://gitlab.corp.test"),
    ("https://GitLab.Corp.Test/", "https://gitlab.corp.test"),
    ("https://gitlab.corp.test:443/", "https://gitlab.corp.test"),
    ("https://gitlab.corp.test:8443/gitlab/", "https://gitlab.corp.test:8443/gitlab"),
])
def test_base_urls_are_normalized(text, want):
    assert deployment.normalize(text) == want


@pytest.mark.parametrize("text", [
    "http://gitlab.corp.test", "gitlab.corp.test", "https://", "https://user:pw@gitlab.corp.test",
    "https://gitlab.corp.test/?next=evil", "https://gitlab.corp.test/#x", "https://gitlab.corp.test:99999",
])
def test_bad_base_urls_are_refused(text):
    with pytest.raises(UsageError):
        deployment.normalize(text)


@pytest.mark.invariant
def test_a_self_hosted_gitlab_token_goes_only_to_its_own_instance():
    gitlab = _bundled("gitlab")
    public = parse_routes(deployment.api_url_routes(gitlab, None))
    corp = parse_routes(deployment.api_url_routes(gitlab, "https://gitlab.corp.test/"))
    assert any(r.matches("gitlab.com", 443, "/api/v4/user") for r in public)
    assert not any(r.matches("gitlab.corp.test", 443, "/api/v4/user") for r in public)
    assert any(r.matches("gitlab.corp.test", 443, "/api/v4/user") for r in corp)
    assert not any(r.matches("gitlab.com", 443, "/api/v4/user") for r in corp)
    assert not any(r.matches("gitlab.corp.test", 443, "/users/sign_in") for r in corp)
    # The default deployment named explicitly is the default deployment.
    assert deployment.api_url_routes(gitlab, "https://gitlab.com/") == gitlab.api_url


def test_github_enterprise_routes_its_api_prefix_not_api_github_com():
    github = _bundled("github")
    ghes = parse_routes(deployment.api_url_routes(github, "https://github.corp.test"))
    assert any(r.matches("github.corp.test", 443, "/api/v3/user") for r in ghes)
    assert any(r.matches("github.corp.test", 443, "/api/graphql") for r in ghes)
    assert not any(r.matches("api.github.com", 443, "/user") for r in ghes)


def test_login_refuses_a_base_url_it_could_not_route():
    forge = _definition()  # a default deployment, and no self_hosted_api_url
    assert deployment.check_login(forge, "https://forge.example/") == "https://forge.example"
    with pytest.raises(UsageError, match="which hosts serve the API of https://forge.corp.test") as refused:
        deployment.check_login(forge, "https://forge.corp.test")
    assert "self_hosted_api_url" in refused.value.hint
    assert deployment.api_url_routes(forge, "https://forge.corp.test") is None


def test_a_definition_for_one_instance_routes_its_api_url():
    # No default base URL: the person wrote the definition for their own instance.
    forge = _definition(base_url=None, api_url="forge.corp.test")
    assert deployment.check_login(forge, "https://forge.corp.test") == "https://forge.corp.test"
    assert deployment.api_url_routes(forge, "https://forge.corp.test") == ("forge.corp.test",)


def test_base_url_is_refused_for_fixed_endpoints():
    with pytest.raises(UsageError, match="fixed endpoints"):
        deployment.check_login(_bundled("x"), "https://twitter.example")


def test_salesforce_sandbox_login_keeps_the_my_domain_routes():
    salesforce = _bundled("salesforce")
    assert deployment.check_login(salesforce, "https://test.salesforce.com") == "https://test.salesforce.com"
    sandbox = parse_routes(deployment.api_url_routes(salesforce, "https://test.salesforce.com"))
    assert any(r.matches_host("acme--dev.sandbox.my.salesforce.com") for r in sandbox)
    assert not any(r.matches_host("test.salesforce.com") for r in sandbox)

"""Bundled and custom definitions; malformed files are reported, never fatal."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from authsome.errors import ProviderInvalid, ProviderNotFound
from authsome.providers import Registry
from authsome.providers.registry import bundled_dir
from authsome.providers.schema import schema

SEED_X = {
    "name": "x",
    "display_name": "X (Twitter)",
    "auth_type": "oauth2",
    "flow": "pkce",
    "scopes": ("tweet.read", "tweet.write", "users.read", "offline.access"),
    "export": {"access_token": ("X_ACCESS_TOKEN",), "refresh_token": ("X_REFRESH_TOKEN",)},
}


def _x_raw() -> dict:
    return json.loads((bundled_dir() / "x.json").read_text())


def _registry(home) -> Registry:
    (home / "providers").mkdir(parents=True, exist_ok=True)
    return Registry(user_dir=home / "providers")


def test_bundled_x_carries_every_value_of_the_seed_page(home):
    x = _registry(home).get("x")
    assert x.source == "bundled"
    assert (x.name, x.display_name, x.auth_type, x.flow) == (SEED_X["name"], SEED_X["display_name"], SEED_X["auth_type"], SEED_X["flow"])
    assert x.oauth.scopes == SEED_X["scopes"]
    assert x.oauth.pkce is True
    assert x.oauth.supports_device_code is False
    assert x.oauth.supports_dcr is False
    assert x.oauth.authorization_url == "https://twitter.com/i/oauth2/authorize"
    assert x.oauth.client_auth == "basic"
    assert x.export == SEED_X["export"]
    assert set(x.api_url) == {"api.twitter.com", "api.x.com"}


def test_every_bundled_definition_validates_against_the_schema():
    validator = jsonschema.Draft202012Validator(schema())
    jsonschema.Draft202012Validator.check_schema(schema())
    files = [p for p in bundled_dir().glob("*.json") if p.name != "schema.json"]
    assert files
    for path in files:
        validator.validate(json.loads(path.read_text()))


def test_user_file_wins_over_bundled(home):
    reg = _registry(home)
    raw = _x_raw()
    raw["oauth"]["scopes"] = ["tweet.read"]
    (home / "providers" / "x.json").write_text(json.dumps(raw))
    x = reg.get("x")
    assert x.source == "custom"
    assert x.oauth.scopes == ("tweet.read",)
    assert reg.catalog().providers["x"].source == "custom"


def _mutate(fn):
    raw = _x_raw()
    fn(raw)
    return json.dumps(raw)


MALFORMED = [
    pytest.param('{"name": "x", ', "(file)", "not valid JSON", id="bad-json"),
    pytest.param(_mutate(lambda r: r.pop("display_name")), "(top level)", "'display_name' is a required property", id="missing-field"),
    pytest.param(_mutate(lambda r: r.update(api_url=["regex:(unclosed"])), "api_url[0]", "invalid regular expression", id="bad-regex"),
    pytest.param(_mutate(lambda r: r.update(flow="magic")), "flow", "'magic' is not one of", id="unknown-flow"),
    pytest.param(_mutate(lambda r: r.update(flow="device_code")), "flow", "supports_device_code", id="unsupported-flow"),
    pytest.param(_mutate(lambda r: r["oauth"].update(token_url="http://api.twitter.com/token")), "oauth.token_url", "https", id="plain-http-endpoint"),
    pytest.param(_mutate(lambda r: r.update(export={"access_token": "lower_case"})), "export.access_token", "does not match", id="bad-env-name"),
    pytest.param(_mutate(lambda r: r.update(export={"api_key": "X_KEY"})), "export.api_key", "not a credential field", id="export-unknown-field"),
    pytest.param(_mutate(lambda r: r.update(name="y")), "name", "does not match the file name", id="name-mismatch"),
    pytest.param(_mutate(lambda r: r.update(surprise=1)), "(top level)", "Additional properties", id="unknown-key"),
    pytest.param(_mutate(lambda r: r.update(self_hosted_api_url=["{base_url}/2"])), "self_hosted_api_url",
                 "needs OAuth endpoints written as {base_url}", id="self-hosted-without-template"),
    pytest.param(_mutate(lambda r: (r["oauth"].update(token_url="{base_url}/2/oauth2/token", base_url="https://api.twitter.com"),
                                    r.update(self_hosted_api_url=["regex:^{base_url}$"]))), "self_hosted_api_url[0]",
                 "may only start an entry", id="self-hosted-template-inside"),
]


@pytest.mark.parametrize("text, field, reason", MALFORMED)
def test_malformed_user_file_is_reported_with_path_field_and_reason(home, text, field, reason):
    reg = _registry(home)
    path = home / "providers" / "x.json"
    path.write_text(text)
    catalog = reg.catalog()
    [problem] = catalog.problems
    assert problem.path == str(path)
    assert problem.field == field
    assert reason in problem.reason
    # Using the broken provider fails; it never falls back to the bundled one.
    with pytest.raises(ProviderInvalid):
        reg.get("x")
    assert "x" in catalog.broken


def test_register_installs_0600_file_and_refuses_to_overwrite(home):
    from authsome.errors import UsageError

    reg = _registry(home)
    raw = copy.deepcopy(_x_raw())
    raw["name"] = "acme"
    provider, overrides = reg.register(json.dumps(raw).encode(), "acme.json")
    assert provider.source == "custom" and not overrides
    target = home / "providers" / "acme.json"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(UsageError, match="already exists") as info:
        reg.register(json.dumps(raw).encode(), "acme.json")
    assert "--force" in info.value.hint
    reg.register(json.dumps(raw).encode(), "acme.json", force=True)


def test_remove_only_custom_definitions(home):
    from authsome.errors import ProviderError

    reg = _registry(home)
    with pytest.raises(ProviderError, match="bundled"):
        reg.remove("x")
    with pytest.raises(ProviderNotFound):
        reg.remove("nope")


def test_unknown_provider(home):
    with pytest.raises(ProviderNotFound):
        _registry(home).get("nope")
    with pytest.raises(ProviderNotFound):
        _registry(home).get("schema")


def test_schema_pass_is_remembered_per_exact_content(home):
    reg = _registry(home)
    path = home / "providers" / "x.json"
    path.write_text(json.dumps(_x_raw()))
    assert reg.get("x").source == "custom"
    assert (home / "cache" / "schema-passed").exists()
    # Same name, new content: checked again, so the new problem is found.
    raw = _x_raw()
    raw["surprise"] = True
    path.write_text(json.dumps(raw))
    with pytest.raises(ProviderInvalid, match="Additional properties"):
        reg.get("x")

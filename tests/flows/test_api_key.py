"""API keys: the local form in a real browser, a hidden prompt at a real terminal."""

from __future__ import annotations

import json

import pytest

from tests.conftest import AUTHSOME, run_cli
from tests.support.terminal import Terminal

KEY = "sk-acme-" + "k" * 24


@pytest.fixture
def acme(cli, tmp_path):
    definition = {"name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
                  "api_key": {"header_name": "X-Api-Key", "header_prefix": "", "key_pattern": "^sk-acme-[a-z]{20,}$",
                              "key_pattern_hint": "Acme keys start with sk-acme-", "env_var": "ACME_API_KEY"},
                  "api_url": "api.acme.test", "export": {"api_key": "ACME_API_KEY"}}
    (tmp_path / "acme.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "acme.json")]).code == 0


@pytest.fixture
def recording_browser(tmp_path):
    opened = tmp_path / "opened"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    script.chmod(0o755)
    return script, opened


def test_key_typed_into_the_local_form(home, acme, browser, recording_browser, login_port, trusting_env):
    script, opened = recording_browser
    term = Terminal([*AUTHSOME, "login", "acme"], {**trusting_env, "BROWSER": str(script),
                                                 "AUTHSOME_LOGIN_PORT": str(login_port)})
    try:
        term.read_until("waiting up to")
        url = opened.read_text().strip()
        assert url == f"http://127.0.0.1:{login_port}/"
        browser.goto(url)
        assert browser.get_attribute("#api_key", "type") == "password"  # masked
        browser.fill("#api_key", "not-a-key")
        browser.click("#submit")
        assert "Acme keys start with sk-acme-" in browser.inner_text(".error")  # shown again, login goes on
        assert browser.input_value("#api_key") == ""  # a secret is never echoed back into the page
        browser.fill("#api_key", KEY)
        browser.click("#submit")
        browser.wait_for_selector("h1.ok")
        assert term.wait() == 0
    finally:
        term.close()
    assert KEY not in term.output.decode(errors="replace")
    assert run_cli(["get", "acme", "--field", "status"]).out == "connected\n"
    assert run_cli(["get", "acme", "--field", "api_key", "--show-secret"]).out == KEY + "\n"


def test_key_typed_at_a_hidden_prompt(home, acme, trusting_env):
    term = Terminal([*AUTHSOME, "login", "acme", "--no-browser"], trusting_env)
    try:
        term.read_until("Acme API key:")
        term.type(KEY + "\n")
        assert term.wait() == 0
    finally:
        term.close()
    assert KEY not in term.output.decode(errors="replace")  # not echoed
    assert run_cli(["get", "acme", "--field", "status"]).out == "connected\n"


def test_no_key_in_ci_fails_fast_even_at_a_terminal(home, acme):
    term = Terminal([*AUTHSOME, "login", "acme"], {"CI": "true"})
    try:
        assert term.wait() == 6
    finally:
        term.close()
    text = term.output.decode(errors="replace")
    assert "nobody to ask (CI=true)" in text and "set ACME_API_KEY" in text


def test_empty_stdin_is_refused(home, acme):
    r = run_cli(["login", "acme"], input="")
    assert r.code == 6 and "No API key arrived on standard input" in r.err

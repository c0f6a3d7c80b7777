"""The CLI boundary: help for every command, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import pytest

from authsome.cli import main

COMMANDS = ["list", "inspect", "register", "remove", "login", "get", "export", "logout",
            "revoke", "whoami", "doctor"]


def test_top_level_help_lists_every_command(cli):
    r = cli(["--help"])
    assert r.code == 0
    for name in COMMANDS:
        assert name in r.out
    assert "exit codes" in r.out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: authsome {command}" in out
    assert len(out.splitlines()) > 3


def test_no_command_prints_help():
    assert main([]) == 0


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "hint: " in err
    assert "Traceback" not in err


def test_unknown_provider_exits_3_with_hint(cli):
    r = cli(["get", "nope"])
    assert r.code == 3
    assert r.err.splitlines() == ["error: No provider named 'nope'.", "hint: run `authsome list` to see the providers"]


def test_json_errors_are_machine_readable(capsys):
    import json

    assert main(["inspect", "nope", "--json"]) == 3
    data = json.loads(capsys.readouterr().err)
    assert data["error"] == "provider_not_found"


def test_help_does_not_import_mitmproxy_or_rich(cli):
    import subprocess
    import sys

    code = ("import sys\nfrom authsome.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "main(['get', 'x', '--field', 'status'])\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mitmproxy', 'rich', 'authlib', 'jsonschema')]\n"
            "print('HEAVY', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_version(cli):
    r = cli(["--version"])
    assert r.code == 0 and r.out.startswith("authsome ")


def test_get_with_a_custom_definition_skips_jsonschema_once_validated(cli):
    import subprocess
    import sys

    assert cli(["inspect", "x"]).code == 0
    from authsome import paths

    (paths.home() / "providers" / "x.json").write_text(cli(["inspect", "x"]).out)
    assert cli(["list"]).code == 0  # validates and remembers
    code = ("import sys\nfrom authsome.cli import main\nmain(['get', 'x', '--field', 'status'])\n"
            "print('SCHEMA', 'jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["not_connected", "SCHEMA False"]


def test_a_secret_pasted_as_an_argument_is_not_echoed(cli):
    secret = "sk-live-" + "9" * 30
    r = cli(["login", "openai", secret])
    assert r.code == 2
    assert secret not in r.both
    assert "not shown" in r.err


def test_the_bundle_variable_the_cli_checks_first_is_the_bundles():
    from authsome import bundle
    from authsome.cli import BUNDLE_ENV

    assert BUNDLE_ENV == bundle.ENV

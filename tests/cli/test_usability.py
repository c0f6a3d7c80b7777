"""What a new (or careless) user hits, through the CLI in subprocesses: nothing lost, nothing confusing."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.conftest import AUTHSOME
from tests.support.terminal import Terminal

KEY_1, KEY_2 = "sk-" + "a" * 40, "sk-" + "b" * 40


def _key(home, connection="default") -> str:
    from authsome.vault import Vault

    return Vault.open().get_connection("openai", connection).api_key


# -- 5. Replacing a connection ---------------------------------------------------------------------------

def test_replacing_a_connection_asks_on_a_terminal_and_needs_force_elsewhere(cli, home):
    assert cli(["login", "openai"], input=KEY_1).code == 0
    piped = cli(["login", "openai"], input=KEY_2)
    assert piped.code == 2 and "add --force" in piped.err and _key(home) == KEY_1
    env = {"AUTHSOME_HOME": str(home), "AUTHSOME_KEYRING": "0"}
    term = Terminal([*AUTHSOME, "login", "openai", "--no-browser"], env)
    try:
        term.read_until("Replace it? [y/N]")
        term.type("n\n")
        assert term.wait() == 2 and "Not replaced" in term.output.decode()
    finally:
        term.close()
    term = Terminal([*AUTHSOME, "login", "openai", "--no-browser"], env)
    try:
        term.read_until("Replace it? [y/N]")
        term.type("y\n")
        term.read_until("API key:")
        term.type(KEY_2 + "\n")
        assert term.wait() == 0
    finally:
        term.close()
    assert _key(home) == KEY_2


# -- 6. Named connections and the default ----------------------------------------------------------------

def test_a_provider_with_only_named_connections_says_how_to_choose(cli, home):
    assert cli(["login", "openai", "--connection", "work"], input=KEY_1).code == 0
    export = cli(["export", "openai"])
    assert export.code == 4 and "no default connection, only: work" in export.err
    assert "authsome default openai work" in export.err
    run = cli(["run", "--", "true"])
    assert run.code == 0 and "'openai' has connections work but no default" in run.err
    assert "--connection openai=work" in run.err
    assert cli(["default", "openai", "work"]).out.strip() == "work"
    assert cli(["export", "openai", "--format", "json"]).out.count(KEY_1) == 1
    child = cli(["run", "--", "sh", "-c", "echo $OPENAI_API_KEY"])
    assert child.out.strip() == "authsome-proxy-managed" and "no default" not in child.err
    assert cli(["default", "openai"]).out.strip() == "work"


def test_login_default_makes_the_new_connection_the_default(cli, home):
    assert cli(["login", "openai"], input=KEY_1).code == 0
    assert cli(["login", "openai", "--connection", "personal", "--default"], input=KEY_2).code == 0
    assert cli(["get", "openai", "--field", "connection"]).out.strip() == "personal"
    assert json.loads(cli(["export", "openai", "--format", "json"]).out)["OPENAI_API_KEY"] == KEY_2
    assert cli(["default", "openai", "nope"]).code == 4


# -- 8. Errors that name what went wrong ------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["login", "x", "--conection", "work"], "Unknown option --conection for `authsome login`; did you mean --connection?"),
    (["get", "x", "--feild=status"], "Unknown option --feild for `authsome get`; did you mean --field?"),
    (["logn", "x"], "Unknown command 'logn'; did you mean login?"),
    (["login", "x", "--flow", "pkc"], "did you mean pkce?"),
])
def test_typos_are_named_with_a_suggestion(cli, argv, message):
    r = cli(argv)
    assert r.code == 2 and message in r.err and "hint:" in r.err


@pytest.mark.parametrize("argv", [
    ["login", "openai", "sk-this-looks-like-a-secret", "--conection=sk-another-secret"],
    ["login", "openai", "-ksk-stuck-to-a-short-option"],  # shown as -k
    ["get", "x", "--show-secret=sk-given-to-a-flag"],  # argparse: "ignored explicit argument '...'"
    ["ci", "export", "--format", "sk-not-a-choice", "x"],
    ["sk-PastedAsTheCommand"],
    ["login", "x", "--f=sk-live-AbC1234567890123"],  # argparse: "ambiguous option: --f=... could match"
    ["log", "-n", "sk-live-SECRET'x"],  # a quote inside: argparse quotes it with "
    ["ci", "export", "x", "--format", "sk-live-SECRET'"],
    ["--sk-SECRET10"],
    ["get", "sk-AbC1234567890123"],  # where a name belongs: a provider, a connection, a field, a host
    ["default", "x", "sk-AbC123456789012345"],
    ["get", "x", "--field", "sk-AbC1234567890123"],
    ["run", "--resolve", "sk-AbC1234567890123", "--", "true"],
    ["run", "--deny-unmatched", "--allow-host", "sk-AbC1234567890123/", "--", "true"],
])
def test_values_and_stray_words_are_never_echoed(cli, argv):
    r = cli(argv)
    assert r.code != 0 and "sk-" not in r.both and "hint:" in r.err, r.err


@pytest.mark.parametrize("argv, shown", [
    (["get", "twiter"], "No provider named 'twiter'"),
    (["default", "x", "work-2"], "has no connection 'work-2'"),
    (["run", "--resolve", "api.twitter.com:443", "--", "true"], "'api.twitter.com:443' is not HOST:PORT:ADDRESS:PORT"),
])
def test_names_are_still_shown(cli, argv, shown):
    assert shown in cli(argv).err


def test_verbose_works_after_the_command_too(cli):
    assert "Traceback" not in cli(["export", "x"]).err
    r = cli(["export", "x", "-v"])
    assert r.code == 4 and "Traceback" in r.err and "run -- sh -v" not in r.err
    assert "Traceback" not in cli(["run", "--", "sh", "-v", "-c", "exit 3"]).err  # after --, -v is the command's


# -- 9. Exit codes scripts can use -----------------------------------------------------------------------------

def test_run_exits_as_a_shell_does_when_the_command_cannot_start(cli, tmp_path):
    script = tmp_path / "no-shebang"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    unexecutable = tmp_path / "plain"
    unexecutable.write_text("#!/bin/sh\n")
    missing = cli(["run", "--", "no-such-command-xyz"])
    assert missing.code == 127 and "Command not found" in missing.err
    noexec = cli(["run", "--", str(unexecutable)])
    assert noexec.code == 126 and "chmod +x" in noexec.err
    format_error = cli(["run", "--", str(script)])
    assert format_error.code == 126 and "exec format error" in format_error.err and "#!" in format_error.err


def test_revoke_of_an_unknown_provider_is_an_error_and_revoke_asks_first(cli, home):
    assert cli(["revoke", "no-such-provider", "--yes"]).code == 3
    assert cli(["login", "openai"], input=KEY_1).code == 0
    refused = cli(["revoke", "openai"])
    assert refused.code == 2 and "--yes" in refused.err and _key(home) == KEY_1
    env = {"AUTHSOME_HOME": str(home), "AUTHSOME_KEYRING": "0"}
    term = Terminal([*AUTHSOME, "revoke", "openai"], env)
    try:
        term.read_until("[y/N]")
        term.type("n\n")
        assert term.wait() == 2
    finally:
        term.close()
    assert _key(home) == KEY_1
    assert cli(["revoke", "openai", "--yes"]).code == 0
    assert cli(["get", "openai", "--field", "status"]).code == 4


# -- 10. No internal error for ordinary situations ----------------------------------------------------------------

@pytest.mark.parametrize("home_path", ["/proc/self", "/dev/null", "/etc/passwd/sub", "a-file"])
def test_an_unusable_home_is_an_error_with_a_hint(cli, tmp_path, home_path):
    if home_path == "a-file":
        (tmp_path / "a-file").write_text("")
        home_path = str(tmp_path / "a-file")
    r = cli(["login", "openai"], input=KEY_1, env={"AUTHSOME_HOME": home_path})
    assert r.code == 1 and "internal error" not in r.err and "hint: point AUTHSOME_HOME" in r.err


def test_a_shared_directory_is_not_made_private(cli, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "someone-elses-file").write_text("")
    shared.chmod(0o777)
    r = cli(["whoami"], env={"AUTHSOME_HOME": str(shared)})
    assert r.code == 1 and "will not be made private" in r.err
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777


@pytest.mark.parametrize("mode", [0o1777, 0o1700, 0o707])
def test_an_empty_sticky_or_world_writable_directory_is_not_made_private(cli, tmp_path, mode):
    shared = tmp_path / "tmp-like"  # AUTHSOME_HOME=/tmp: empty of strangers' files now, not later
    shared.mkdir()
    shared.chmod(mode)
    r = cli(["login", "openai"], input=KEY_1, env={"AUTHSOME_HOME": str(shared)})
    assert r.code == 1 and "shared directory" in r.err and KEY_1 not in r.both
    assert stat.S_IMODE(shared.stat().st_mode) == mode and not list(shared.iterdir())


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_timeouts_must_be_real_numbers_of_seconds(cli, value):
    r = cli(["login", "x", "--timeout", value])
    assert r.code == 2 and "internal error" not in r.err and "--timeout" in r.err


def test_ctrl_d_at_a_prompt_is_not_an_internal_error(cli, home):
    term = Terminal([*AUTHSOME, "login", "openai", "--no-browser"], {"AUTHSOME_HOME": str(home), "AUTHSOME_KEYRING": "0"})
    try:
        term.read_until("API key:")
        term.type("\x04")
        assert term.wait() == 2
    finally:
        term.close()
    assert "internal error" not in term.output.decode() and "No input" in term.output.decode()


def test_every_error_has_a_hint(cli):
    for argv in (["login", "x", "--timeout", "nan"], ["get", "nope"], ["export", "x"], ["run"], ["inspect", "zz"],
                 ["log", "-n", "-1"], ["login", "openai", "--scopes", "a"], ["run", "--resolve", "a.test:443:x.y:443", "--", "true"],
                 ["login", "gitlab", "--base-url", "https://gitlab.example.test:99999"]):
        r = cli(argv)
        assert r.code != 0 and r.err.count("error: ") == 1 and "hint: " in r.err, argv


# -- 11. Bounded input ---------------------------------------------------------------------------------------------

def test_register_reads_a_bounded_definition(cli):
    r = cli(["register", "/dev/zero"], timeout=30)
    assert r.code == 2 and "larger than 256 KiB" in r.err


def test_a_key_of_several_lines_or_megabytes_is_refused_not_cut(cli, home):
    several = cli(["login", "openai"], input=KEY_1 + "\nsecond line\n")
    assert several.code == 6 and "never cut to its first line" in several.err
    huge = cli(["login", "openai"], input="sk-" + "a" * (20 << 20))
    assert huge.code == 6 and "longer than 4096" in huge.err
    assert not (home / "vault" / "openai").exists()


def test_register_from_a_terminal_says_it_reads_stdin(home):
    term = Terminal([*AUTHSOME, "register", "-"], {"AUTHSOME_HOME": str(home), "AUTHSOME_KEYRING": "0"})
    try:
        term.read_until("reading the definition from standard input; end it with Ctrl-D")
    finally:
        term.close()


# -- 12. get ------------------------------------------------------------------------------------------------------------

def test_get_status_exits_4_unless_connected_and_an_empty_field_is_an_error(cli, home):
    assert cli(["get", "openai", "--field", "status"]).code == 4
    assert cli(["login", "openai"], input=KEY_1).code == 0
    assert cli(["get", "openai", "--field", "status"]).code == 0
    empty = cli(["get", "openai", "--field", "account"])
    assert empty.code == 4 and "has no account" in empty.err and empty.out == ""


def test_get_show_secret_refreshes_an_expired_token_as_export_does(oauth, connect_x, x_env):
    issued = connect_x(expires_in=-1)
    r = cli_run(["get", "x", "--field", "access_token", "--show-secret"], x_env)
    assert r.code == 0 and r.out.strip() and r.out.strip() != issued["access_token"]
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1


def cli_run(argv, env):
    from tests.conftest import run_cli

    return run_cli(argv, env=env)


# -- 13. log and list ------------------------------------------------------------------------------------------------------

def test_log_counts_records_not_lines_and_ctrl_c_ends_follow_cleanly(cli, home):
    import signal
    import subprocess
    import time

    home.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"ts": f"2026-12-01T00:00:0{i}", "event": "tunnel", "host": f"h{i}.test", "port": 443}) for i in range(5)]
    (home / "audit.log").write_text("\n".join([lines[0], "{cut short", lines[1], "", lines[2], "garbage", lines[3], lines[4]]) + "\n")
    shown = cli(["log", "-n", "3", "--json"]).out.splitlines()
    assert [json.loads(line)["host"] for line in shown] == ["h2.test", "h3.test", "h4.test"]
    follow = subprocess.Popen([*AUTHSOME, "log", "--follow"], env={**os.environ, "AUTHSOME_HOME": str(home)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while "h4.test" not in (line := follow.stdout.readline()):
        assert line and time.monotonic() < deadline
    follow.send_signal(signal.SIGINT)
    assert follow.wait(timeout=20) == 0


def test_list_shows_each_connection_on_its_own_row(cli, home):
    import time

    from authsome.models import Connection
    from authsome.vault import Vault

    v = Vault.open()
    v.put_connection(Connection(provider="x", name="personal", access_token="t1", expires_at=time.time() - 10))
    v.put_connection(Connection(provider="x", name="work", access_token="t2", refresh_token="r", expires_at=time.time() + 7200, account="bob"))
    rows = [line.split() for line in cli(["list"]).out.splitlines() if line.startswith("x ")]
    assert [(r[3], r[4]) for r in rows] == [("personal", "expired"), ("work", "connected")]
    assert rows[0][5:8] != rows[1][5:8] and rows[1][-1] == "bob"  # each its own expiry


# -- 14. Completion and examples ------------------------------------------------------------------------------------------

def test_bash_completion_completes_commands_options_and_choices(cli, tmp_path):
    import subprocess

    script = tmp_path / "authsome.bash"
    script.write_text(cli(["completion", "bash"]).out)
    probe = (f"source {script}\n"
             "COMP_WORDS=(authsome lo); COMP_CWORD=1; _authsome; echo \"${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(authsome login x --re); COMP_CWORD=3; _authsome; echo \"${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(authsome export --format ''); COMP_CWORD=3; _authsome; echo \"${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(authsome ci export --format ''); COMP_CWORD=4; _authsome; echo \"${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(authsome ci export --acc); COMP_CWORD=3; _authsome; echo \"${COMPREPLY[*]}\"\n")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.splitlines()
    assert out == ["login logout log", "--reset-client", "env shell json", "env github", "--access-token-only"]


def test_zsh_and_fish_completion_load_in_those_shells(cli, tmp_path):
    import subprocess

    (tmp_path / "c.zsh").write_text(cli(["completion", "zsh"]).out)
    (tmp_path / "c.fish").write_text(cli(["completion", "fish"]).out)
    zsh = subprocess.run(["zsh", "-c", f"source {tmp_path / 'c.zsh'} && print ${{+_comps[authsome]}}"],
                         capture_output=True, text=True)
    assert zsh.stdout.strip() == "1", zsh.stderr
    fish = subprocess.run(["fish", "-c", f"source {tmp_path / 'c.fish'}; complete -C 'authsome login x --flow '"],
                          capture_output=True, text=True)
    assert [line.split("\t")[0] for line in fish.stdout.splitlines()] == ["api_key", "dcr_pkce", "device_code", "pkce"]


def test_every_command_has_examples_in_its_help(cli):
    from authsome.cli import build_parser
    from authsome.cli.completion import _commands

    for name in _commands(build_parser()):
        assert "example" in cli([name, "--help"]).out, name


# -- 15. Getting started ----------------------------------------------------------------------------------------------------

def test_doctor_checks_that_the_home_is_writable(cli):
    r = cli(["doctor", "--json"])
    assert {c["name"]: c["ok"] for c in json.loads(r.out)["checks"]}["home writable"] is True


def test_setup_says_how_to_get_a_python_when_there_is_none(tmp_path):
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    fake = tmp_path / "repo"
    (fake / "scripts").mkdir(parents=True)
    shutil.copy(repo / "scripts" / "setup", fake / "scripts" / "setup")
    (fake / ".python-version").write_text("3.99.0\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat", "bash", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    r = subprocess.run(["bash", str(fake / "scripts" / "setup")], capture_output=True, text=True,
                       env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert r.returncode == 1 and "need Python >= 3.12" in r.stderr and "pyenv install 3.99.0" in r.stderr

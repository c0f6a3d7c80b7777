"""The encrypted vault: sealing, modes, wrong keys, damage, and many writers at once."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from authsome.errors import ExitCode, VaultCorrupt, WrongKey
from authsome.models import ClientCredentials, Connection
from authsome.vault import Vault
from authsome.vault.crypto import load_master_key

SECRET = "tok-" + "s3cr3t" * 6


def _vault() -> Vault:
    return Vault.open()


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.invariant
def test_round_trip_keeps_every_field_and_never_writes_plaintext(home):
    v = _vault()
    conn = Connection(provider="x", name="default", access_token=SECRET, refresh_token=SECRET + "r",
                      expires_at=1234.5, scopes=("tweet.read", "users.read"), account="alice")
    stored = v.put_connection(conn)
    assert stored.version == 1
    again = _vault().get_connection("x", "default")
    assert again == stored
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
            assert b"alice" not in path.read_bytes() or path.name == "master.key"


@pytest.mark.invariant
def test_home_is_0700_and_every_file_0600(home):
    v = _vault()
    v.put_connection(Connection(provider="x", access_token=SECRET))
    v.put_client(ClientCredentials(provider="x", client_id="cid", client_secret=SECRET))
    assert _mode(home) == 0o700
    for path in home.rglob("*"):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_existing_loose_home_is_tightened(home):
    home.mkdir(parents=True, mode=0o755)
    os.chmod(home, 0o755)
    _vault().put_connection(Connection(provider="x", access_token=SECRET))
    assert _mode(home) == 0o700


def test_client_credentials_round_trip(home):
    v = _vault()
    v.put_client(ClientCredentials(provider="x", client_id="cid", client_secret=SECRET))
    assert v.get_client("x").client_secret == SECRET
    assert v.delete_client("x") is True
    assert v.get_client("x") is None


@pytest.mark.invariant
def test_wrong_key_is_reported_and_the_file_is_untouched(home, monkeypatch):
    _vault().put_connection(Connection(provider="x", access_token=SECRET))
    path = home / "vault" / "x" / "conn.default.json"
    before = path.read_bytes()
    monkeypatch.setenv("AUTHSOME_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    v = _vault()
    with pytest.raises(WrongKey) as info:
        v.get_connection("x", "default")
    assert "AUTHSOME_MASTER_KEY" in info.value.message
    with pytest.raises(WrongKey):
        v.update_connection("x", "default", lambda c: Connection(provider="x", access_token="new"))
    assert path.read_bytes() == before


@pytest.mark.invariant
@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_record_is_reported_and_never_overwritten(home, damage):
    _vault().put_connection(Connection(provider="x", access_token=SECRET))
    path = home / "vault" / "x" / "conn.default.json"
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        envelope = json.loads(data)
        ct = bytearray(base64.b64decode(envelope["ciphertext"]))
        ct[3] ^= 0x01
        envelope["ciphertext"] = base64.b64encode(bytes(ct)).decode()
        data = json.dumps(envelope).encode()
    elif damage == "garbage":
        data = os.urandom(200)
    else:
        data = b""
    path.write_bytes(data)
    v = _vault()
    with pytest.raises(VaultCorrupt) as info:
        v.get_connection("x", "default")
    assert info.value.exit_code == ExitCode.VAULT
    assert str(path) in info.value.message
    with pytest.raises(VaultCorrupt):
        v.update_connection("x", "default", lambda c: Connection(provider="x", access_token="new"))
    assert path.read_bytes() == data


@pytest.mark.invariant
def test_record_moved_onto_another_identity_fails_authentication(home):
    v = _vault()
    v.put_connection(Connection(provider="x", name="personal", access_token=SECRET))
    v.put_connection(Connection(provider="x", name="work", access_token="work-token"))
    d = home / "vault" / "x"
    (d / "conn.work.json").write_bytes((d / "conn.personal.json").read_bytes())
    with pytest.raises(VaultCorrupt, match="moved"):
        v.get_connection("x", "work")


@pytest.mark.parametrize("value, reason", [("not-base64-of-32-bytes", "not base64 of 32 bytes"),
                                           ("", "set but empty"), ("   ", "set but empty")])
def test_a_bad_master_key_in_the_environment_is_a_vault_error_never_a_fallback(cli, home, value, reason):
    """A CI secret that did not arrive must not quietly become the key file's key (or a new one)."""
    r = cli(["whoami"], env={"AUTHSOME_MASTER_KEY": value})
    assert r.code == 5 and reason in r.err and "hint:" in r.err
    assert not (home / "master.key").exists()


def test_a_missing_key_file_with_records_present_is_an_error_never_a_new_key(cli, home):
    assert cli(["login", "openai"], input="sk-" + "a" * 40).code == 0
    (home / "master.key").rename(home / "master.key.moved")
    for command in (["whoami"], ["get", "openai"], ["login", "openai", "-c", "other"]):
        r = cli(command, input="sk-" + "b" * 40)
        assert r.code == 5 and "no master key was found" in r.err and "restore master.key" in r.err, command
    assert not (home / "master.key").exists()  # nothing was created
    (home / "master.key.moved").rename(home / "master.key")
    assert cli(["get", "openai", "--field", "status"]).out.strip() == "connected"


def test_a_write_never_mixes_two_keys(cli, home):
    import base64
    import os

    assert cli(["login", "openai"], input="sk-" + "a" * 40).code == 0
    other = {"AUTHSOME_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    r = cli(["login", "openai", "-c", "other"], input="sk-" + "b" * 40, env=other)
    assert r.code == 5 and "another master key" in r.err and "authsome doctor" in r.err
    assert sorted(p.name for p in (home / "vault" / "openai").glob("conn.*")) == ["conn.default.json"]
    doctor = cli(["doctor"], env=other)
    assert doctor.code == 1 and "openai/default" in doctor.out and "different master key" in doctor.out


def test_key_file_is_created_once_and_reused(home):
    home.mkdir(parents=True)
    first = load_master_key(home)
    assert first.source == "file"
    assert _mode(home / "master.key") == 0o600
    assert load_master_key(home).key == first.key


def test_env_key_wins_over_key_file(home, master_key):
    home.mkdir(parents=True)
    key = load_master_key(home)
    assert key.source == "env"
    assert key.key == base64.b64decode(master_key)
    assert not (home / "master.key").exists()
    assert master_key not in repr(key)


KEYRING_BACKEND = textwrap.dedent('''
    import json, os
    from keyring.backend import KeyringBackend

    class FileBackedKeyring(KeyringBackend):
        """A real keyring backend class, storing into a test file."""
        priority = 10
        path = os.environ["TEST_KEYRING_FILE"]

        def _load(self):
            try:
                with open(self.path) as fh:
                    return json.load(fh)
            except FileNotFoundError:
                return {}

        def get_password(self, service, username):
            return self._load().get(f"{service}/{username}")

        def set_password(self, service, username, password):
            data = self._load()
            data[f"{service}/{username}"] = password
            with open(self.path, "w") as fh:
                json.dump(data, fh)

        def delete_password(self, service, username):
            pass
''')


def test_usable_keyring_holds_the_key_and_no_key_file_is_written(home, tmp_path, monkeypatch):
    (tmp_path / "testkeyring.py").write_text(KEYRING_BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TEST_KEYRING_FILE", str(tmp_path / "store.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "testkeyring.FileBackedKeyring")
    monkeypatch.setenv("AUTHSOME_KEYRING", "1")
    import keyring.core

    keyring.core._keyring_backend = None  # keyring caches its backend per process
    try:
        home.mkdir(parents=True)
        key = load_master_key(home)
        assert key.source == "keyring"
        assert not (home / "master.key").exists()
        assert load_master_key(home).key == key.key
    finally:
        keyring.core._keyring_backend = None


def test_existing_key_file_wins_over_a_new_empty_keyring(home, tmp_path, monkeypatch):
    home.mkdir(parents=True)
    file_key = load_master_key(home)
    (tmp_path / "testkeyring.py").write_text(KEYRING_BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TEST_KEYRING_FILE", str(tmp_path / "store.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "testkeyring.FileBackedKeyring")
    monkeypatch.setenv("AUTHSOME_KEYRING", "1")
    import keyring.core

    keyring.core._keyring_backend = None
    try:
        assert load_master_key(home).key == file_key.key
    finally:
        keyring.core._keyring_backend = None


WRITER = textwrap.dedent('''
    import sys
    from authsome.models import Connection
    from authsome.vault import Vault
    mode, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    v = Vault.open()
    if mode == "distinct":
        for i in range(rounds):
            v.put_connection(Connection(provider="x", name=name, access_token=f"{name}-{i}"))
    else:
        def bump(current):
            n = int(current.account) if current else 0
            return Connection(provider="x", name="shared", account=str(n + 1))
        for _ in range(rounds):
            v.update_connection("x", "shared", bump)
''')


def _spawn_writers(tmp_path, mode: str, count: int, rounds: int) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), mode, f"c{i}", str(rounds)])
        for i in range(count)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * count


@pytest.mark.invariant
def test_twenty_processes_writing_different_connections_lose_nothing(home, tmp_path):
    # No key exists yet: the processes also race to create it, and must agree.
    _spawn_writers(tmp_path, "distinct", 20, 5)
    v = _vault()
    assert v.connection_names("x") == sorted(f"c{i}" for i in range(20))
    for i in range(20):
        conn = v.get_connection("x", f"c{i}")
        assert conn.access_token == f"c{i}-4"
        assert conn.version == 5


@pytest.mark.invariant
def test_concurrent_read_modify_write_of_one_connection_loses_no_update(home, tmp_path):
    _spawn_writers(tmp_path, "shared", 10, 10)
    conn = _vault().get_connection("x", "shared")
    assert conn.account == "100"
    assert conn.version == 100


def test_list_reports_damaged_records_without_raising(home):
    v = _vault()
    v.put_connection(Connection(provider="x", name="good", access_token=SECRET))
    v.put_connection(Connection(provider="x", name="bad", access_token=SECRET))
    (home / "vault" / "x" / "conn.bad.json").write_bytes(b"{")
    entries = {e.name: e for e in v.list_connections()}
    assert entries["good"].connection is not None
    assert isinstance(entries["bad"].error, VaultCorrupt)


def test_names_that_could_escape_the_vault_are_refused(home):
    from authsome.errors import UsageError

    v = _vault()
    for provider, name in [("../x", "default"), ("x", "../../etc"), ("x", ".hidden"), ("X", "a")]:
        with pytest.raises(UsageError):
            v.put_connection(Connection(provider=provider, name=name))


KILLED_WRITER = textwrap.dedent('''
    import sys
    from authsome.models import Connection
    from authsome.vault import Vault
    v = Vault.open()
    i = 0
    while True:
        v.put_connection(Connection(provider="x", access_token=f"token-{i}", account="w" * 4000))
        if i == 0:
            print("writing", flush=True)
        i += 1
''')


@pytest.mark.invariant
def test_kill_9_in_the_middle_of_writes_leaves_a_readable_record(home, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        proc.kill()  # SIGKILL, wherever it is: mid-encryption, mid-write, mid-rename
        proc.wait()
        conn = Vault.open().get_connection("x")
        assert conn.access_token.startswith("token-")
    leftovers = [p.name for p in (home / "vault" / "x").iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) <= 5  # at most one abandoned temporary file per kill, never read

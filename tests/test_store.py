"""A team's shared store: several "machines" (homes) on one real PostgreSQL, one master key.

The cluster is started once per session (tests/support/postgres.py); each test
gets its own database. The X stand-in (oidc-provider) rotates refresh tokens
and revokes the whole grant when an old one comes back, so a second refresh
of the same token anywhere would show up as a failed request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from authsome.vault import Vault
from tests.conftest import AUTHSOME, X_HOSTS, run_cli

pytestmark = pytest.mark.slow
ME = "https://api.twitter.com/2/users/me"


@pytest.fixture
def machine(tmp_path, store, master_key, trusting_env):
    """The environment of another machine: its own home, the same store and key."""
    def make(name: str, **extra: str) -> dict:
        return {**trusting_env, "AUTHSOME_HOME": str(tmp_path / name), "AUTHSOME_STORE": store,
                "AUTHSOME_MASTER_KEY": master_key, **extra}
    return make


def resolve_args(oauth) -> list[str]:
    return [a for host in X_HOSTS for a in ("--resolve", f"{host}:443:127.0.0.1:{oauth.port}")]


def curl_me(oauth) -> list[str]:
    return ["run", *resolve_args(oauth), "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", ME]


def secrets_of(vault: Vault, master_key: str) -> list[str]:
    conn, client = vault.get_connection("x"), vault.get_client("x")
    return [conn.access_token, conn.refresh_token, client.client_secret, master_key]


# -- the commands -----------------------------------------------------------------------------------------------------

def test_a_team_moves_its_records_into_the_store_and_every_machine_uses_them(
        oauth, connect_x, postgres, master_key, tmp_path, trusting_env, monkeypatch, home):
    monkeypatch.delenv("AUTHSOME_STORE", raising=False)
    issued = connect_x()  # logged in on machine A, in its own files
    url = postgres.create_database("team")

    used = run_cli(["store", "use", url])
    assert used.code == 0 and "authsome store init" in used.err, used.err
    assert run_cli(["store", "status"]).code == 5  # no tables yet: said, exit 5
    first, again = run_cli(["store", "init"]), run_cli(["store", "init"])
    assert (first.code, again.code) == (0, 0) and "created" in first.err and "checked" in again.err
    pushed = run_cli(["store", "push", "--json"])
    assert pushed.code == 0, pushed.err
    assert {(r["rid"], r["outcome"]) for r in json.loads(pushed.out)} == {("connection:x/default", "moved"),
                                                                          ("client:x", "copied")}
    assert json.loads(run_cli(["store", "push", "--json"]).out) == [{"rid": "client:x", "outcome": "same",
                                                                     "detail": None}]
    assert not list((home / "vault" / "x").glob("conn.*"))  # one live copy of the refresh token: the store's
    status = json.loads(run_cli(["store", "status", "--json"]).out)
    assert status["shared"] and status["schema"] == 1 and status["opens"] == 2 and not status["foreign"]
    assert "@" in status["location"] and status["location"].startswith("postgresql://postgres@127.0.0.1:")

    b = {**trusting_env, "AUTHSOME_HOME": str(tmp_path / "b"), "AUTHSOME_STORE": url, "AUTHSOME_MASTER_KEY": master_key}
    assert run_cli(["get", "x", "--field", "status"], env=b).out == "connected\n"
    r = run_cli(curl_me(oauth), env=b)
    assert r.out == "200", r.err
    assert oauth.stats()["api_authorization_headers"] == [f"Bearer {issued['access_token']}"]

    dump = postgres.dump("team")
    assert "connection:x/default" in dump
    for secret in (issued["access_token"], issued["refresh_token"], "basic-secret", master_key):
        assert secret not in dump

    c = {**b, "AUTHSOME_HOME": str(tmp_path / "c")}  # leaving the store: the connection moves out of it
    pulled = run_cli(["store", "pull"], env=c)
    assert pulled.code == 0 and "moved      connection:x/default" in pulled.out, pulled.err
    assert run_cli(["get", "x", "--field", "status"], env={**c, "AUTHSOME_STORE": "local"}).out == "connected\n"
    assert run_cli(["get", "x", "--field", "status"], env=b).out == "not_connected\n"

    assert run_cli(["store", "use", "local"]).code == 0
    assert json.loads(run_cli(["store", "status", "--json"]).out)["shared"] is False


def test_store_use_never_takes_a_password_or_another_kind_of_url(cli, postgres):
    with_password = postgres.url("team").replace("postgres@", "postgres:hunter2-Secret@")
    r = cli(["store", "use", with_password])
    assert r.code == 2 and "password" in r.err and "hunter2" not in r.both
    assert cli(["store", "use", "mysql://db/x"]).code == 2
    assert cli(["store", "status"], env={"AUTHSOME_STORE": "sqlite:///x"}).code == 2
    for url in (postgres.url("team").replace("postgres@", "ci:S3cr?etPw-9x@"),  # libpq's reading, not urlsplit's
                postgres.url("team").replace("postgres@", "ci:S3cr#etPw-9x@"),
                postgres.url("team") + "?pass%77ord=S3cr-etPw-9x"):
        r = cli(["store", "use", url])
        assert r.code == 2 and "etPw-9x" not in r.both, r.both
    for url in ("postgresql://ci:S3cret@Pw-9x@127.0.0.1/team",  # an @ left unencoded in the password
                "postgresql://ci@127.0.0.1/team?sslpassword=S3cretPw-9x"):
        r = cli(["store", "use", url])
        assert r.code == 2 and "Pw-9x" not in r.both, r.both
    broken = cli(["store", "use", "postgresql://ci:S3cretPw-9x@[::1/team"])
    assert broken.code == 2 and "S3cretPw" not in broken.both and "internal error" not in broken.both
    for url in ("postgresql://ci@127.0.0.1:1/team?password=Sec%zzret-9x",
                "postgresql://ci:S3cretPw-9x@[::1]x/team?password=S3cretPw-9x"):
        r = cli(["list"], env={"AUTHSOME_STORE": url})
        assert r.code in (2, 5) and "9x" not in r.both and "Traceback" not in r.both, r.both
    inside = cli(["store", "use", postgres.url()], env={"AUTHSOME_RUN": "1"})
    assert inside.code == 2 and "refused inside `authsome run`" in inside.err


def test_the_child_never_sees_the_store_url(store, connect_x, trusting_env):
    connect_x()
    secret_url = store.replace("postgres@", "postgres:pw-Not-For-The-Child@")  # trust auth ignores it
    r = run_cli(["run", "--", "sh", "-c", "env; cat /proc/$PPID/environ | tr '\\0' '\\n'"],
                env={**trusting_env, "AUTHSOME_STORE": secret_url})
    assert r.code == 0, r.err
    assert "pw-Not-For-The-Child" not in r.out + r.err
    with_pgpassword = run_cli(["run", "--", "sh", "-c", "echo PGPASSWORD=${PGPASSWORD:-unset}"],
                              env={**trusting_env, "PGPASSWORD": "pg-Not-For-The-Child"})
    assert with_pgpassword.out == "PGPASSWORD=unset\n", with_pgpassword.both
    assert "AUTHSOME_STORE=postgresql" not in r.out  # not in its environment; in its parent's, emptied


# -- exactly one refresh across machines ------------------------------------------------------------------------------

@pytest.mark.invariant
@pytest.mark.parametrize("expired", [True, False], ids=["expired", "refused-with-401"])
def test_ten_runs_on_two_machines_with_a_dead_token_refresh_once_and_all_succeed(
        oauth, connect_x, machine, postgres, master_key, store, expired):
    # Expired: every proxy refreshes before sending; refused: the API answers 401 first.
    issued = connect_x(revoke_access=True, expires_in=-1 if expired else 600)
    homes = [machine("a"), machine("b")]
    procs = [subprocess.Popen([*AUTHSOME, *curl_me(oauth)], env={**os.environ, **homes[i % 2]},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(10)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [out for out, _ in results] == ["200"] * 10, [err for _, err in results]
    assert oauth.stats()["grants"]["refresh_token"] == {"success": 1, "error": 0, "errors": {}}
    stored = Vault.open().get_connection("x")
    assert stored.version == 2 and stored.refresh_token != issued["refresh_token"]
    dump = postgres.dump(store.rsplit("/", 1)[1])
    for secret in [*secrets_of(Vault.open(), master_key), issued["access_token"], issued["refresh_token"]]:
        assert secret not in dump


@pytest.mark.invariant
def test_a_refresher_killed_inside_the_transaction_does_not_block_the_others(oauth, connect_x, machine, postgres):
    connect_x(revoke_access=True)
    oauth.delay_token_endpoint(5000)
    a = subprocess.Popen([*AUTHSOME, *curl_me(oauth)], env={**os.environ, **machine("a")},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while oauth.token_requests_waiting() == 0:  # machine A holds the record's lock across the token call
        assert time.monotonic() < deadline and a.poll() is None
        time.sleep(0.05)
    assert postgres.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0] == 2  # lock, lease
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    oauth.delay_token_endpoint(0)
    while postgres.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0]:
        assert time.monotonic() < deadline, "the killed holder's lock was never released"
        time.sleep(0.05)
    r = run_cli(curl_me(oauth), env=machine("b"), timeout=60)
    assert r.out == "200", r.err
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1
    assert Vault.open().get_connection("x").state == "connected"


# -- running proxies follow -------------------------------------------------------------------------------------------

FOLLOWER = '''
curl -sS -o /dev/null -w '%{{http_code}}\\n' {me}
while [ ! -e {flag} ]; do sleep 0.05; done; sleep 0.5
curl -sS -o /dev/null -w '%{{http_code}}\\n' {me}
'''


def _wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("drop_listener", [False, True], ids=["notified", "listener-dropped"])
def test_a_proxy_on_one_machine_uses_the_token_another_machine_refreshed(
        oauth, connect_x, machine, postgres, tmp_path, drop_listener, x_env, monkeypatch):
    from authsome.flows.refresh import refresh
    from authsome.providers import Registry

    issued = connect_x()
    flag = tmp_path / "go"
    b = subprocess.Popen([*AUTHSOME, "run", *resolve_args(oauth), "--", "sh", "-c", FOLLOWER.format(me=ME, flag=flag)],
                         env={**os.environ, **machine("b")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: oauth.stats()["api_authorization_headers"], "machine B's first request")
    if drop_listener:  # notifications sent while B listens nowhere are lost: B reads every revision again
        postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'authsome-watch'")
    from authsome import resolve

    for name, value in x_env.items():  # machine A: this process
        monkeypatch.setenv(name, value)
    resolve.install(resolve.from_env())
    vault = Vault.open()
    new = refresh(vault, Registry().get("x"), "default", stale_version=vault.get_connection("x").version)
    flag.touch()
    out, err = b.communicate(timeout=60)
    assert out.split() == ["200", "200"], err
    assert oauth.stats()["api_authorization_headers"] == [f"Bearer {issued['access_token']}",
                                                          f"Bearer {new.access_token}"]
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1  # B used A's refresh, made none


# -- failures ---------------------------------------------------------------------------------------------------------

def test_the_database_stopped_mid_run_gives_clear_errors_and_loses_nothing(
        oauth, connect_x, machine, postgres, tmp_path, cli):
    connect_x(expires_in=30)  # inside the 60 s refresh leeway: the proxy wants to refresh it
    before = Vault.open().get_connection("x")
    flag = tmp_path / "go"
    child = f"while [ ! -e {flag} ]; do sleep 0.05; done; curl -sS -o /dev/null -w '%{{http_code}}' {ME}"
    b = subprocess.Popen([*AUTHSOME, "run", *resolve_args(oauth), "--", "sh", "-c", child],
                         env={**os.environ, **machine("b")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: postgres.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'authsome-watch'")
              [0][0] == 1, "machine B's proxy to listen")
    postgres.stop()
    try:
        flag.touch()
        out, err = b.communicate(timeout=60)
        assert out == "200", err  # the token it holds still works, and it said why it did not refresh
        assert "cannot refresh yet" in err and "cannot be used" in err
        assert oauth.stats()["api_authorization_headers"] == [f"Bearer {before.access_token}"]
        for args in (["get", "x", "--field", "status"], ["store", "status"], ["login", "x", "--force"],
                     ["logout", "x"]):
            r = cli(args, env={"CI": "true"})
            assert r.code == 5, (args, r.both)
            assert "cannot be used" in r.both and "Traceback" not in r.both
        broken = cli(["run", "--", "true"])
        assert broken.code == 5 and "cannot be used" in broken.err
    finally:
        postgres.start_again()
    after = Vault.open().get_connection("x")
    assert after == before  # nothing lost, nothing half-written
    assert cli(["get", "x", "--field", "status"]).out == "connected\n"


@pytest.mark.invariant
def test_a_machine_with_another_key_is_told_and_overwrites_nothing(connect_x, machine, postgres, store, cli):
    import base64

    connect_x()
    database = store.rsplit("/", 1)[1]
    rows = "SELECT id, version, revision, data, updated_at FROM authsome_records ORDER BY id"
    before = postgres.sql(rows, database)
    other = machine("other", AUTHSOME_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    got = cli(["get", "x", "--field", "status"], env=other)
    assert got.code == 5 and "different master key" in got.err
    status = cli(["store", "status", "--json"], env=other)
    assert status.code == 5 and json.loads(status.out)["foreign"] == ["client:x", "connection:x/default"]
    for args in (["logout", "x"], ["run", "--", "true"]):
        r = cli(args, env=other)
        assert r.code == 5, (args, r.both)
    from authsome.models import Connection
    from authsome.vault import MasterKey

    # Records of its own, sealed with its key, pushed into the team's store: refused, all of them.
    key = MasterKey(base64.b64decode(other["AUTHSOME_MASTER_KEY"]), "env", "AUTHSOME_MASTER_KEY")
    Vault(Path(other["AUTHSOME_HOME"]) / "vault", key=key).put_connection(Connection(provider="x", name="mine",
                                                                                     access_token="t"))
    pushed = cli(["store", "push"], env=other)
    assert pushed.code == 5 and "different master key" in pushed.err, pushed.both
    assert postgres.sql(rows, database) == before


def test_help_and_the_local_vault_never_import_the_database_driver(home):
    import sys

    code = ("import sys\nfrom authsome.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'psycopg' not in sys.modules, 'psycopg imported'\nprint('checked')")
    for args in (["--help"], ["list"], ["get", "x", "--field", "status"]):
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert r.stdout.endswith("checked\n") and "psycopg imported" not in r.stderr, (args, r.stderr)


# -- rotating the master key ------------------------------------------------------------------------------------------

def test_rotating_the_master_key_reseals_every_record_and_machines_on_the_old_key_change_nothing(
        connect_x, machine, postgres, store, master_key, cli, home):
    issued = connect_x()
    database = store.rsplit("/", 1)[1]
    versions = "SELECT id, version FROM authsome_records ORDER BY id"
    before = postgres.sql(versions, database)
    r = cli(["store", "rekey"])  # machine A, its key from AUTHSOME_MASTER_KEY: the new one is printed
    assert r.code == 0 and "sealed 2 record(s)" in r.err, r.both
    new_key = r.out.strip().removeprefix("AUTHSOME_MASTER_KEY=")
    assert new_key != master_key and len(r.out.splitlines()) == 1
    assert (home / "master.key.new").read_text().strip() == new_key  # until the user has put it in place

    old = cli(["get", "x", "--field", "status"], env=machine("b"))
    assert old.code == 5 and "different master key" in old.err
    assert cli(["run", "--", "true"], env=machine("b")).code == 5
    assert cli(["get", "x", "--field", "status"], env=machine("c", AUTHSOME_MASTER_KEY=new_key)).out == "connected\n"
    assert postgres.sql(versions, database) == before  # the same records, only sealed anew
    dump = postgres.dump(database)
    for secret in (master_key, new_key, issued["access_token"], issued["refresh_token"], "basic-secret"):
        assert secret not in dump


def test_rotating_a_key_kept_in_the_key_file_replaces_the_file(home, monkeypatch, cli):
    from authsome.models import Connection

    monkeypatch.delenv("AUTHSOME_STORE", raising=False)
    Vault.open().put_connection(Connection(provider="x", access_token="t-" + "7" * 30))
    old_key = (home / "master.key").read_text()
    r = cli(["store", "rekey"])
    assert r.code == 0 and r.out == "" and "master.key" in r.err, r.both  # nothing printed: the file holds it
    assert (home / "master.key").read_text() != old_key and not (home / "master.key.new").exists()
    assert oct((home / "master.key").stat().st_mode & 0o777) == "0o600"
    assert Vault.open().get_connection("x").access_token == "t-" + "7" * 30


@pytest.mark.invariant
def test_a_refresh_whose_connection_is_cut_during_the_token_call_is_still_saved(oauth, connect_x, machine, postgres):
    """The provider has spent the old refresh token by then: losing the new one would lose the grant."""
    issued = connect_x(revoke_access=True)
    oauth.delay_token_endpoint(3000)
    a = subprocess.Popen([*AUTHSOME, *curl_me(oauth)], env={**os.environ, **machine("a")},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: oauth.token_requests_waiting() > 0, "the token call")
    cut = postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'authsome' AND state LIKE 'idle in transaction%'")
    assert cut == [(True,)]  # the lock holder's connection, in the middle of its transaction
    # Its transaction's locks are gone with it; machine B must still not refresh with the token A spent.
    b = subprocess.Popen([*AUTHSOME, *curl_me(oauth)], env={**os.environ, **machine("b")},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # B is waiting for A's lease by now
    oauth.delay_token_endpoint(0)
    out, err = a.communicate(timeout=60)
    assert out == "200", err
    assert "saved on a new connection" in err
    b_out, b_err = b.communicate(timeout=60)
    assert b_out == "200", b_err
    stored = Vault.open().get_connection("x")
    assert stored.refresh_token != issued["refresh_token"] and stored.state == "connected"
    assert oauth.stats()["grants"]["refresh_token"] == {"success": 1, "error": 0, "errors": {}}
    again = run_cli(["get", "x", "--field", "status"], env=machine("b"))
    assert again.out == "connected\n"


def test_two_new_machines_cannot_put_two_keys_into_one_store(machine, cli):
    import base64

    keys = [base64.b64encode(os.urandom(32)).decode() for _ in range(2)]
    a, b = (machine(name, AUTHSOME_MASTER_KEY=k) for name, k in zip("ab", keys))

    first = cli(["login", "openai", "--no-browser"], env={**a, "OPENAI_API_KEY": "sk-" + "a" * 40}, input="")
    second = cli(["login", "openai", "--no-browser"], env={**b, "OPENAI_API_KEY": "sk-" + "b" * 40}, input="")
    assert first.code == 0, first.both
    assert second.code == 5 and "different master key" in second.err, second.both


def test_a_store_without_the_driver_is_a_clear_error(cli, postgres, tmp_path):
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['psycopg'] = None\n")  # as if the extra were not installed
    r = cli(["list"], env={"AUTHSOME_STORE": postgres.url(), "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"})
    assert r.code == 5 and "pip install 'authsome[postgres]'" in r.err, r.both


def test_push_never_replaces_another_login_with_an_older_one(oauth, connect_x, machine, store, cli, monkeypatch, home):
    from authsome.models import Connection

    connect_x()  # the team's current login, in the store
    in_store = Vault.open().get_connection("x")
    monkeypatch.setenv("AUTHSOME_STORE", "local")  # an old login of this home, refreshed many times since
    Vault.open().put_connection(Connection(provider="x", access_token="old-" + "1" * 30, refresh_token="old-rt",
                                           created_at=in_store.created_at - 3600, version=9))
    Vault.open().update_connection("x", "default", lambda c: c.with_changes(version=9))
    monkeypatch.setenv("AUTHSOME_STORE", store)
    pushed = cli(["store", "push", "--json"])
    outcomes = {r["rid"]: r["outcome"] for r in json.loads(pushed.out)}
    assert outcomes["connection:x/default"] == "kept", pushed.both
    assert Vault.open().get_connection("x").refresh_token == in_store.refresh_token
    assert list((home / "vault" / "x").glob("conn.default.json"))  # kept here too: nothing lost


@pytest.mark.invariant
def test_whoever_writes_the_table_cannot_roll_a_connection_back_or_repoint_the_default(
        oauth, connect_x, store, postgres, cli, x_env, monkeypatch):
    from authsome import resolve
    from authsome.flows.refresh import refresh
    from authsome.providers import Registry

    database = store.rsplit("/", 1)[1]
    connect_x()
    connect_x(name="personal", account="bob")
    assert cli(["default", "x", "default"]).code == 0
    old = postgres.sql("SELECT data FROM authsome_records WHERE id = 'connection:x/default'", database)[0][0]
    for name, value in x_env.items():
        monkeypatch.setenv(name, value)
    resolve.install(resolve.from_env())
    vault = Vault.open()
    refresh(vault, Registry().get("x"), "default", stale_version=vault.get_connection("x").version)

    # The spent refresh token put back under the current version: refused, not used.
    postgres.sql(f"UPDATE authsome_records SET data = '\\x{old.hex()}' WHERE id = 'connection:x/default'", database)
    rolled = cli(["get", "x", "--field", "status"])
    assert rolled.code == 5 and "rolled back or altered" in rolled.err, rolled.both
    # A plain name where the sealed default pointer was: ignored.
    postgres.sql("INSERT INTO authsome_records (id, version, revision, data) VALUES "
                 "('default:x', 1, nextval('authsome_revision'), 'personal') ON CONFLICT (id) DO UPDATE "
                 "SET data = EXCLUDED.data", database)
    assert cli(["default", "x"]).out == "default\n"


def test_rotating_a_shared_stores_key_reseals_this_homes_own_files_too(
        connect_x, store, master_key, cli, home, monkeypatch):
    from authsome.models import Connection

    connect_x()
    monkeypatch.setenv("AUTHSOME_STORE", "local")  # a record of this home not pushed (yet)
    Vault.open().put_connection(Connection(provider="x", name="mine", access_token="t-" + "5" * 30))
    monkeypatch.setenv("AUTHSOME_STORE", store)
    r = cli(["store", "rekey"])
    assert r.code == 0 and "sealed 3 record(s)" in r.err, r.both
    new_key = r.out.strip().removeprefix("AUTHSOME_MASTER_KEY=")
    monkeypatch.setenv("AUTHSOME_MASTER_KEY", new_key)
    monkeypatch.setenv("AUTHSOME_STORE", "local")
    assert Vault.open().get_connection("x", "mine").access_token == "t-" + "5" * 30
    monkeypatch.setenv("AUTHSOME_STORE", store)
    assert cli(["get", "x", "--field", "status"]).out == "connected\n"
    assert json.loads(cli(["store", "status", "--json"]).out)["store_key"] != \
        json.loads(cli(["store", "status", "--json"], env={"AUTHSOME_MASTER_KEY": master_key}).out)["key"]["id"]


def test_a_refused_key_is_refused_again_by_the_same_process(connect_x, store, monkeypatch):
    import base64

    from authsome.errors import WrongKey
    from authsome.models import Connection

    connect_x()
    monkeypatch.setenv("AUTHSOME_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    vault = Vault.open()
    for _ in range(2):  # a long-running proxy retries with the same vault
        with pytest.raises(WrongKey):
            vault.put_connection(Connection(provider="x", name="other", access_token="t"))
    assert "connection:x/other" not in vault.record_ids()


def test_the_urls_own_settings_are_kept(postgres, cli, monkeypatch):
    url = postgres.create_database("opts")
    postgres.sql("CREATE SCHEMA team", "opts")
    monkeypatch.setenv("AUTHSOME_STORE", url + "?options=-csearch_path%3Dteam")
    assert cli(["store", "init"]).code == 0
    tables = postgres.sql("SELECT table_schema FROM information_schema.tables WHERE table_name = 'authsome_records'",
                          "opts")
    assert tables == [("team",)]


@pytest.mark.invariant
def test_a_forged_notification_changes_nothing_for_running_proxies(oauth, connect_x, machine, postgres, store,
                                                                   tmp_path):
    """Anyone who may connect can NOTIFY, without any right on the tables: it only says "read this again"."""
    issued = connect_x()
    database = store.rsplit("/", 1)[1]
    postgres.sql("DROP ROLE IF EXISTS intruder")
    postgres.sql("CREATE ROLE intruder LOGIN")
    flag = tmp_path / "go"
    b = subprocess.Popen([*AUTHSOME, "run", *resolve_args(oauth), "--", "sh", "-c", FOLLOWER.format(me=ME, flag=flag)],
                         env={**os.environ, **machine("b")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: oauth.stats()["api_authorization_headers"], "machine B's first request")
    import psycopg

    with psycopg.connect(postgres.url(database).replace("postgres@", "intruder@"), autocommit=True) as c:
        for payload in ("-999999999 connection:x/default", "999999999 connection:x/default"):
            c.execute("SELECT pg_notify('authsome_records', %s)", (payload,))
    time.sleep(0.3)
    flag.touch()
    out, err = b.communicate(timeout=60)
    assert out.split() == ["200", "200"], err
    assert oauth.stats()["api_authorization_headers"] == [f"Bearer {issued['access_token']}"] * 2

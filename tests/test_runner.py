"""`authsome run` end to end: real proxy, real HTTPS server, real curl/requests/httpx children.

The refusals come first (lookalikes, plain HTTP, other ports, strangers
without the proxy credentials), then the happy paths, then the process
behaviour (exit codes, signals, streaming, clean-up).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from authsome.models import PLACEHOLDER, Connection
from authsome.vault import Vault
from tests.conftest import AUTHSOME, run_cli

TOKEN = "x-real-access-" + "T0k3n" * 6
LOOKALIKES = ["api.twitter.com.evil.test", "evilapi.twitter.com", "api.x.com.attacker.test", "other.test"]


@pytest.fixture
def x_connected(home):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, refresh_token="r-" + TOKEN,
                                           expires_at=time.time() + 3600, scopes=("tweet.read",)))


def run(args, env, **kw):
    return run_cli(["run", *args], env=env, **kw)


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


@pytest.mark.invariant
def test_real_token_never_reaches_lookalike_hosts(api, x_connected, trusting_env):
    urls = " ".join(f"https://{h}/2/users/me" for h in LOOKALIKES)
    r = run([*api.resolve(*LOOKALIKES), "--", "sh", "-c",
             f'for u in {urls}; do curl -sS -H "Authorization: Bearer $X_ACCESS_TOKEN" "$u"; '
             f'curl -sS "$u"; done'], trusting_env)
    assert r.code == 0, r.err
    seen = api.seen
    assert {e["sni"] for e in seen} == set(LOOKALIKES)  # every request did arrive, tunnelled
    assert TOKEN not in api.everything_seen()
    assert TOKEN not in r.both


@pytest.mark.invariant
def test_real_token_never_travels_over_plain_http(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com", port=80), "--", "sh", "-c",
             'curl -sS http://api.twitter.com/2/users/me; '
             'curl -sS -H "Authorization: Bearer $X_ACCESS_TOKEN" http://api.twitter.com/2/users/me'], trusting_env)
    assert r.code == 0, r.err
    assert len(api.seen) == 2 and not any(e["tls"] for e in api.seen)
    assert TOKEN not in api.everything_seen()


@pytest.mark.invariant
def test_real_token_never_goes_to_an_undeclared_port(api, x_connected, trusting_env):
    r = run(["--resolve", f"api.twitter.com:8443:127.0.0.1:{api.port}", "--", "curl", "-sS",
             "-H", f"Authorization: Bearer {PLACEHOLDER}", "https://api.twitter.com:8443/2/users/me"], trusting_env)
    assert r.code == 0, r.err
    assert api.seen[0]["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"
    assert TOKEN not in api.everything_seen()


@pytest.mark.invariant
def test_redirect_to_another_host_carries_no_token(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com", "other.test"), "--", "curl", "-sSL",
             "https://api.twitter.com/redirect?to=https://other.test/landing"], trusting_env)
    assert r.code == 0, r.err
    first, second = api.seen
    assert first["headers"]["authorization"] == f"Bearer {TOKEN}"  # the routed host got it
    assert second["sni"] == "other.test" and "authorization" not in second["headers"]


@pytest.mark.invariant
def test_strangers_get_407_and_the_port_is_released(api, x_connected, trusting_env):
    probe = _child('''
        import os, json, socket, urllib.parse, requests
        url = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
        base = f"http://127.0.0.1:{url.port}"
        out = {"port": url.port}
        for name, proxy in [("none", base), ("wrong", f"http://authsome:wrong@127.0.0.1:{url.port}"),
                            ("other_user", f"http://someone:{url.password}@127.0.0.1:{url.port}"),
                            ("right", os.environ["HTTPS_PROXY"])]:
            try:
                r = requests.get("https://api.twitter.com/2/users/me", proxies={"https": proxy}, timeout=10)
                out[name] = r.status_code
            except requests.exceptions.ProxyError as exc:
                out[name] = 407 if "407" in str(exc) else str(exc)
        s = socket.create_connection(("127.0.0.1", url.port))
        s.sendall(b"GET http://api.twitter.com/ HTTP/1.1\\r\\nHost: api.twitter.com\\r\\n\\r\\n")
        out["plain"] = s.recv(200).split(b"\\r\\n")[0].decode()
        print(json.dumps(out))
    ''')
    r = run([*api.resolve("api.twitter.com"), "--", *probe], trusting_env)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["none"], out["wrong"], out["other_user"], out["right"]) == (407, 407, 407, 200)
    assert " 407 " in out["plain"]
    # Only the authenticated request arrived.
    assert len(api.seen) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", out["port"]))  # free again once the run is over


@pytest.mark.invariant
def test_child_environment_holds_placeholders_only(master_key, api, x_connected, trusting_env):
    env = {**trusting_env, "X_CLIENT_SECRET": "client-secret-value", "NO_PROXY": "corp.test,.twitter.com"}
    r = run(["--", "env"], env)
    assert r.code == 0, r.err
    child = dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)
    assert child["X_ACCESS_TOKEN"] == PLACEHOLDER
    assert child["X_REFRESH_TOKEN"] == PLACEHOLDER
    assert "AUTHSOME_MASTER_KEY" not in child and "X_CLIENT_SECRET" not in child
    assert TOKEN not in r.out and master_key not in r.out
    assert child["HTTPS_PROXY"] == child["http_proxy"] and child["HTTPS_PROXY"].startswith("http://authsome:")
    bundle = child["SSL_CERT_FILE"]
    assert all(child[v] == bundle for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"))
    assert child["NODE_EXTRA_CA_CERTS"] == child["DENO_CERT"] != bundle
    assert child["NODE_USE_ENV_PROXY"] == "1"
    assert child["AUTHSOME_CA_CERT"].endswith(".pem") and child["AUTHSOME_CA_CERT"] not in (bundle, child["DENO_CERT"])
    no_proxy = child["NO_PROXY"].split(",")
    assert "corp.test" in no_proxy and ".twitter.com" not in no_proxy  # would bypass the routed host
    assert {"localhost", "127.0.0.1", "::1"} <= set(no_proxy)


@pytest.mark.parametrize("client", ["curl", "requests", "httpx"])
def test_placeholder_is_swapped_for_real_clients(api, x_connected, trusting_env, client):
    url = "https://api.twitter.com/2/users/me"
    commands = {
        "curl": ["sh", "-c", f'curl -sS -H "Authorization: Bearer $X_ACCESS_TOKEN" {url}'],
        "requests": _child(f'''
            import os, requests
            print(requests.get("{url}", headers={{"Authorization": "Bearer " + os.environ["X_ACCESS_TOKEN"]}}).text)'''),
        "httpx": _child(f'''
            import os, httpx
            print(httpx.get("{url}", headers={{"Authorization": "Bearer " + os.environ["X_ACCESS_TOKEN"]}}).text)'''),
    }
    r = run([*api.resolve("api.twitter.com"), "--", *commands[client]], trusting_env)
    assert r.code == 0, r.err
    # The server saw the real token; its echo reached the child with the placeholder back in.
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(r.out)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"
    # No file outside the vault holds it afterwards (the audit log); during the run, see below.
    assert TOKEN not in home_files_text()


def home_files_text() -> str:
    from authsome import paths

    out = []
    for root, _dirs, files in os.walk(paths.home()):
        for f in files:
            if "vault" in root or f == "master.key":
                continue
            try:
                out.append(open(os.path.join(root, f), errors="replace").read())
            except OSError:
                pass
    return "\n".join(out)


@pytest.mark.invariant
def test_no_file_holds_the_token_while_the_run_is_alive(api, x_connected, trusting_env, tmp_path):
    # The run's own files (proxy log, bundles, CA) exist only while it runs: look then.
    needle = tmp_path / "needle"
    needle.write_text(TOKEN)
    probe = _child(f'''
        import os, subprocess
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "https://api.twitter.com/2/users/me"], check=True)
        token, found = open("{needle}").read(), []
        for root, _dirs, files in os.walk(os.environ["AUTHSOME_HOME"]):
            for name in files:
                if "vault" in root or name == "master.key":
                    continue
                if token in open(os.path.join(root, name), errors="replace").read():
                    found.append(os.path.join(root, name))
        print("runs" in os.listdir(os.environ["AUTHSOME_HOME"]), found)
    ''')
    r = run([*api.resolve("api.twitter.com"), "--", *probe], trusting_env)
    assert r.code == 0, r.err
    assert api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert r.out.strip() == "True []"


def test_api_x_com_is_routed_too(api, x_connected, trusting_env):
    r = run([*api.resolve("api.x.com"), "--", "curl", "-sS", "https://api.x.com/2/users/me"], trusting_env)
    assert json.loads(r.out)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"  # echoed, scrubbed
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_childs_own_credential_is_left_alone(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", "curl", "-sS", "-H", "Authorization: Bearer mine",
             "https://api.twitter.com/2/users/me"], trusting_env)
    assert json.loads(r.out)["headers"]["authorization"] == "Bearer mine"


def test_audit_log_records_decisions_without_values(cli, api, x_connected, trusting_env):
    run([*api.resolve("api.twitter.com", "other.test"), "--", "sh", "-c",
         "curl -sS 'https://api.twitter.com/2/users/me?secret_param=hunter2' >/dev/null; curl -sS https://other.test/ >/dev/null"],
        trusting_env)
    r = cli(["log", "--json"])
    records = [json.loads(line) for line in r.out.splitlines()]
    request = next(x for x in records if x["event"] == "request")
    assert request["host"] == "api.twitter.com" and request["path"] == "/2/users/me"
    assert request["injected"] == ["header:authorization"] and request["query_keys"] == ["secret_param"]
    assert any(x["event"] == "tunnel" and x["host"] == "other.test" for x in records)
    assert "hunter2" not in r.out and TOKEN not in r.out
    text = cli(["log"]).out
    assert "injected x/default" in text and "tunnel  other.test:443" in text


def test_deny_unmatched_refuses_other_hosts(api, x_connected, trusting_env):
    r = run(["--deny-unmatched", *api.resolve("api.twitter.com", "other.test"), "--", "sh", "-c",
             "curl -sS -o /dev/null -w '%{http_code}' https://api.twitter.com/2/users/me; echo; "
             "curl -sS https://other.test/ 2>&1 | tail -1"], trusting_env)
    first, second = r.out.splitlines()
    assert first == "200" and "403" in second
    assert [e["sni"] for e in api.seen] == ["api.twitter.com"]


@pytest.mark.invariant
def test_run_ca_is_constrained_private_and_deleted(api, x_connected, trusting_env, tmp_path):
    probe = _child('''
        import glob, json, os, ssl, stat, sys, datetime as dt
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        [pem] = glob.glob(os.path.join(os.environ["AUTHSOME_HOME"], "runs", "*", "ca", "mitmproxy-ca.pem"))
        out = {"key_mode": oct(stat.S_IMODE(os.stat(pem).st_mode)),
               "dir_mode": oct(stat.S_IMODE(os.stat(os.path.dirname(pem)).st_mode)), "path": pem}
        data = open(pem, "rb").read()
        key = serialization.load_pem_private_key(data, None)
        ca = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE"):])
        nc = ca.extensions.get_extension_for_class(x509.NameConstraints).value
        out["permitted"] = sorted(n.value for n in nc.permitted_subtrees)
        now = dt.datetime.now(dt.UTC)
        def leaf(name):
            k = ec.generate_private_key(ec.SECP256R1())
            return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca.subject).public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
        store = Store([ca])
        for name in ("api.twitter.com", "bank.example.com"):
            verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
            try:
                verifier.verify(leaf(name), [])
                out[name] = "trusted"
            except VerificationError as exc:
                out[name] = "refused: " + str(exc)
        print(json.dumps(out))
    ''')
    r = run(["--", *probe], {**trusting_env, "HOME": str(tmp_path)})
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["key_mode"] == "0o600" and out["dir_mode"] == "0o700"
    assert out["permitted"] == ["api.twitter.com", "api.x.com"]
    assert out["api.twitter.com"] == "trusted"
    assert out["bank.example.com"].startswith("refused")
    assert not os.path.exists(out["path"])
    assert not (tmp_path / ".mitmproxy").exists()


def test_exit_status_of_the_child(x_connected, trusting_env):
    assert run(["--", "sh", "-c", "exit 7"], trusting_env).code == 7
    assert run(["--", "sh", "-c", "kill -TERM $$"], trusting_env).code == 128 + signal.SIGTERM
    r = run(["--", "definitely-not-a-command-xyz"], trusting_env)
    assert r.code == 127 and "Command not found" in r.err  # as a shell reports it
    assert run([], trusting_env).code == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_forwarded_to_the_child(x_connected, trusting_env, tmp_path, sig):
    marker = tmp_path / "got"
    script = f"import signal, sys, time\n" \
             f"def h(s, f):\n    open({str(marker)!r}, 'w').write(str(s)); sys.exit(42)\n" \
             f"signal.signal({int(sig)}, h)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([*AUTHSOME, "run", "--", sys.executable, "-c", script],
                            env={**os.environ, **trusting_env}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 42
    assert marker.read_text() == str(int(sig))


def _run_dirs(home) -> list:
    runs = home / "runs"
    return sorted(runs.iterdir()) if runs.exists() else []


@pytest.mark.invariant
def test_a_killed_runs_ca_key_is_removed_by_the_next_run(home, x_connected, trusting_env, tmp_path):
    pidfile = tmp_path / "child.pid"
    proc = subprocess.Popen([*AUTHSOME, "run", "--", "sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"],
                            env={**os.environ, **trusting_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    [left] = _run_dirs(home)
    assert list(left.rglob("mitmproxy-ca.pem"))
    proc.kill()  # kill -9: no chance to clean up
    proc.wait()
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert _run_dirs(home) == [left]
    assert run(["--", "true"], trusting_env).code == 0
    assert _run_dirs(home) == []


def test_a_run_stopped_during_start_up_leaves_nothing_behind(home, x_connected, trusting_env):
    # SIGTERM while the proxy starts (the run's files exist, the child does not yet):
    # authsome stops as a shell would report it, and removes the CA key it made.
    proc = subprocess.Popen([*AUTHSOME, "run", "--", "sleep", "60"], env={**os.environ, **trusting_env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _run_dirs(home):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert _run_dirs(home) == []


def test_stdin_and_stdout_pass_through(x_connected, trusting_env):
    r = run_cli(["run", "--", "tr", "a-z", "A-Z"], input="hello agent\n", env=trusting_env)
    assert r.code == 0 and r.out == "HELLO AGENT\n"


def test_server_sent_events_arrive_while_the_stream_is_open(api, x_connected, trusting_env):
    child = _child('''
        import requests
        with requests.get("https://api.twitter.com/sse?n=3", stream=True, timeout=20) as r:
            lines = r.iter_lines()
            first = next(line for line in lines if line)
            # The server sends the rest only after this request: a buffering proxy never gets here.
            requests.get("https://api.twitter.com/release", timeout=20)
            rest = [line for line in lines if line]
        print(first.decode(), len(rest))
    ''')
    r = run([*api.resolve("api.twitter.com"), "--", *child], trusting_env, timeout=90)
    assert r.code == 0, r.err
    assert r.out.split() == ['data:', '{"i":', '0}', '2']


def test_large_download_streams_without_being_buffered_whole(api, x_connected, trusting_env):
    child = _child('''
        import requests
        with requests.get("https://api.twitter.com/big?mb=64", stream=True, timeout=30) as r:
            chunks = r.iter_content(1 << 20)
            got = len(next(chunks))
            while got < (1 << 20):
                got += len(next(chunks))
            requests.get("https://api.twitter.com/release", timeout=20)
            got += sum(len(c) for c in chunks)
        print(got)
    ''')
    r = run([*api.resolve("api.twitter.com"), "--", *child], trusting_env, timeout=120)
    assert r.code == 0, r.err
    assert int(r.out) == 64 << 20


def test_several_providers_and_a_chosen_connection(cli, api, home, trusting_env, tmp_path):
    v = Vault.open()
    v.put_connection(Connection(provider="x", name="work", access_token="work-token"))
    v.put_connection(Connection(provider="x", access_token="default-token"))
    definition = {"name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
                  "api_key": {"header_name": "X-Api-Key", "header_prefix": ""},
                  "api_url": "api.acme.test", "export": {"api_key": "ACME_API_KEY"}}
    (tmp_path / "acme.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "acme.json")]).code == 0
    v.put_connection(Connection(provider="acme", auth_type="api_key", api_key="acme-key"))
    r = run(["--connection", "x=work", *api.resolve("api.twitter.com", "api.acme.test"), "--", "sh", "-c",
             "curl -sS https://api.twitter.com/2/users/me; echo; curl -sS https://api.acme.test/v1"], trusting_env)
    x_seen, acme_seen = (e["headers"] for e in api.seen)
    assert x_seen["authorization"] == "Bearer work-token"
    assert acme_seen["x-api-key"] == "acme-key" and "authorization" not in acme_seen
    assert "work-token" not in r.out and "acme-key" not in r.out  # the echoes were scrubbed
    bad = run(["--connection", "x=nope", "--", "true"], trusting_env)
    assert bad.code == 4 and "authsome login x --connection nope" in bad.err


@pytest.mark.invariant
def test_self_hosted_token_goes_only_to_its_own_instance(api, home, trusting_env):
    """A company GitLab's token never reaches gitlab.com, and gitlab.com's never reaches the company's."""
    v = Vault.open()
    v.put_connection(Connection(provider="gitlab", access_token="public-gitlab-token"))
    v.put_connection(Connection(provider="gitlab", name="corp", access_token="corp-gitlab-token",
                                base_url="https://gitlab.corp.test"))
    both = ("curl -sS -H 'Authorization: Bearer authsome-proxy-managed' https://gitlab.com/api/v4/user; echo; "
            "curl -sS -H 'Authorization: Bearer authsome-proxy-managed' https://gitlab.corp.test/api/v4/user")
    resolve = api.resolve("gitlab.com", "gitlab.corp.test")
    r = run(["--connection", "gitlab=corp", *resolve, "--", "sh", "-c", both], trusting_env)
    assert r.code == 0, r.err
    public, corp = (e["headers"] for e in api.seen)
    assert corp["authorization"] == "Bearer corp-gitlab-token"
    assert public["authorization"] == f"Bearer {PLACEHOLDER}"  # tunnelled, untouched
    api.clear()
    r = run([*resolve, "--", "sh", "-c", both], trusting_env)
    public, corp = (e["headers"] for e in api.seen)
    assert public["authorization"] == "Bearer public-gitlab-token"
    assert corp["authorization"] == f"Bearer {PLACEHOLDER}"
    assert "corp-gitlab-token" not in api.everything_seen()


def test_self_hosted_connection_without_routes_is_refused(cli, home, trusting_env, tmp_path):
    raw = json.loads(run_cli(["inspect", "gitlab"], env=trusting_env).out)
    raw.pop("self_hosted_api_url")
    (tmp_path / "gitlab.json").write_text(json.dumps(raw))
    assert cli(["register", str(tmp_path / "gitlab.json"), "--force"]).code == 0
    from authsome.providers import Registry, trust

    # Logged in with that definition (a login stamps the record with it).
    Vault.open().put_connection(trust.stamped(Registry().get("gitlab"), Connection(
        provider="gitlab", access_token="corp-gitlab-token", base_url="https://gitlab.corp.test")))
    r = run(["--", "true"], trusting_env)
    assert r.code == 2 and "is for https://gitlab.corp.test" in r.err and "self_hosted_api_url" in r.err


@pytest.mark.invariant
def test_childs_own_oauth_exchange_on_the_api_host_gets_no_token(api, x_connected, trusting_env):
    """X's token endpoint lives on api.twitter.com: a child's own OAuth call there stays its own."""
    r = run([*api.resolve("api.twitter.com"), "--", "curl", "-sS", "-d", "grant_type=client_credentials",
             "https://api.twitter.com/2/oauth2/token"], trusting_env)
    assert r.code == 0, r.err
    assert "authorization" not in api.seen[0]["headers"]
    assert TOKEN not in api.everything_seen()


def test_the_terminal_passes_through(x_connected, trusting_env):
    from tests.support.terminal import Terminal

    term = Terminal([*AUTHSOME, "run", "--", sys.executable, "-c",
                     "import os, sys; print('tty', os.isatty(0), os.isatty(1), os.isatty(2)); print(input('name? '))"],
                    trusting_env)
    try:
        term.read_until("name? ")
        term.type("agent\n")
        assert term.wait() == 0
    finally:
        term.close()
    out = term.output.decode()
    assert "tty True True True" in out and "agent" in out


@pytest.mark.invariant
def test_upstream_tls_is_always_verified(api, x_connected, test_ca):
    """Without the test CA in the parent's trust, the stand-in is an impostor: 502, no token sent."""
    r = run([*api.resolve("api.twitter.com"), "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
             "https://api.twitter.com/2/users/me"], {"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""})
    assert r.out == "502"
    assert api.seen == []  # the request never left the proxy


def test_parent_https_proxy_is_chained_not_dropped(api, x_connected, trusting_env):
    from tests.support.corp_proxy import CorpProxy

    corp = CorpProxy({"api.twitter.com": ("127.0.0.1", api.port), "other.test": ("127.0.0.1", api.port)},
                     credentials=("corp-user", "corp-pass"))
    try:
        env = {**trusting_env, "HTTPS_PROXY": f"http://corp-user:corp-pass@127.0.0.1:{corp.port}",
               "NO_PROXY": "intranet.corp.test"}
        r = run(["--", "sh", "-c", 'echo "$NO_PROXY"; curl -sS https://api.twitter.com/2/users/me; echo; '
                 'curl -sS https://other.test/'], env)
    finally:
        corp.close()
    assert r.code == 0, r.err
    no_proxy, routed, other = r.out.splitlines()
    assert "intranet.corp.test" in no_proxy.split(",")
    assert json.loads(routed)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"  # echoed, scrubbed
    assert f"Bearer {TOKEN}" in [e["headers"].get("authorization") for e in api.seen]
    assert "authorization" not in json.loads(other)["headers"]
    assert ("api.twitter.com:443", True) in corp.connects and ("other.test:443", True) in corp.connects
    assert "corp-pass" not in r.out


@pytest.mark.parametrize("entries, kept, dropped", [
    ("corp.test,.twitter.com", ["corp.test"], [".twitter.com"]),
    ("api.twitter.com,10.0.0.0/8", ["10.0.0.0/8"], ["api.twitter.com"]),
    ("*", [], ["*"]),
    (".googleapis.com,.corp.test", [".corp.test"], [".googleapis.com"]),
    ("gmail.googleapis.com,internal.test", ["internal.test"], ["gmail.googleapis.com"]),
])
def test_no_proxy_keeps_only_entries_that_cannot_bypass_a_routed_host(entries, kept, dropped):
    from authsome.bindings import Binding
    from authsome.providers import Registry
    from authsome.providers.routes import parse_routes
    from authsome.runner import _no_proxy, routed_domains

    reg = Registry(user_dir=None)
    bindings = [Binding(p, "default", parse_routes(p.api_url)) for p in (reg.get_bundled("x"), reg.get_bundled("google"))]
    result = _no_proxy({"NO_PROXY": entries}, routed_domains(bindings)).split(",")
    assert all(k in result for k in kept) and not any(d in result for d in dropped)
    assert {"localhost", "127.0.0.1", "::1"} <= set(result)


BROKEN_MITMPROXY = """\
import sys

class Broken:
    def find_spec(self, name, path=None, target=None):
        if name == "mitmproxy.master":
            raise ImportError("a broken installation (test)")

sys.meta_path.insert(0, Broken())
"""


def test_a_proxy_that_cannot_start_stops_the_command_and_says_why(home, x_connected, trusting_env, tmp_path):
    # The command starts while mitmproxy is still imported; should that fail, the
    # command is stopped (all its requests would fail) and authsome exits 7.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BROKEN_MITMPROXY)
    marker = tmp_path / "started"
    started = time.monotonic()
    # exec: the command is the process authsome stops (a grandchild would keep the output pipe open).
    r = run(["--", "sh", "-c", f"touch {marker}; exec sleep 60"], {**trusting_env, "PYTHONPATH": str(site)})
    assert r.code == 7, r.err
    assert "The proxy could not start: ImportError." in r.err
    assert time.monotonic() - started < 30  # the command did not run its minute
    assert _run_dirs(home) == []


def test_audit_records_are_complete_when_the_command_is_killed(cli, api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", "sh", "-c",
             "for i in 1 2 3; do curl -sS -o /dev/null https://api.twitter.com/2/users/me; done; kill -9 $$"],
            trusting_env)
    assert r.code == 128 + signal.SIGKILL
    records = [json.loads(line) for line in cli(["log", "--json"]).out.splitlines()]
    assert [x["path"] for x in records if x["event"] == "request"] == ["/2/users/me"] * 3


def test_connections_to_the_pre_bound_socket_get_tcp_nodelay():
    # The listening socket is made before mitmproxy (`Proxy.start`); asyncio sets TCP_NODELAY only
    # on sockets that say they are TCP. Without it every answer waits ~40 ms for a delayed ACK.
    import asyncio
    import threading

    from authsome.proxy import _listening_socket

    async def check() -> int:
        listener = _listening_socket()
        seen = asyncio.get_running_loop().create_future()

        async def accepted(reader, writer):
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    result = []  # on a thread of its own: a loop of an earlier test may still be set on this one
    thread = threading.Thread(target=lambda: result.append(asyncio.run(check())))
    thread.start()
    thread.join(30)
    assert result and result[0] != 0


@pytest.mark.invariant
def test_a_definition_changed_by_the_command_as_the_proxy_starts_changes_nothing(cli, api, x_connected, trusting_env,
                                                                                  tmp_path, home):
    # The command starts while the proxy is still being set up. Had the proxy read the provider
    # definitions from disk then, a changed one (not confirmed) would fail every routing decision,
    # and mitmproxy lets a flow go on after an addon's error: past --deny-unmatched, unaudited.
    changed = json.loads(cli(["inspect", "x"]).out)
    changed["api_url"] = ["api.twitter.com", "other.test"]
    planted = tmp_path / "x.json"
    planted.write_text(json.dumps(changed))
    r = run(["--deny-unmatched", *api.resolve("api.twitter.com", "other.test"), "--", "sh", "-c",
             f"cp {planted} {home}/providers/x.json; "
             "curl -s -o /dev/null -w '%{http_connect} ' https://other.test/echo; "
             "curl -s -o /dev/null -w '%{http_code}' https://api.twitter.com/2/users/me"], trusting_env)
    assert r.out.split() == ["403", "200"], r.err  # the CONNECT to other.test was refused
    assert not any(s["path"] == "/echo" for s in api.seen)
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"
    events = [json.loads(line)["event"] for line in cli(["log", "--json"]).out.splitlines()]
    assert "denied" in events and "request" in events


def test_a_request_still_open_when_the_run_ends_is_audited(cli, api, x_connected, trusting_env, test_ca):
    import ssl
    import urllib.request

    try:
        r = run([*api.resolve("api.twitter.com"), "--", "sh", "-c",
                 "curl -sS -o /dev/null https://api.twitter.com/hold & "
                 "while ! [ -e /proc/$!/fd ]; do sleep 0.05; done; sleep 1.5"], trusting_env)
        assert r.code == 0, r.err
    finally:
        trust = ssl.create_default_context(cafile=str(test_ca.cert))
        urllib.request.urlopen(f"https://127.0.0.1:{api.port}/release", context=trust).read()
    assert any(s["path"] == "/hold" for s in api.seen)
    records = [json.loads(line) for line in cli(["log", "--json"]).out.splitlines()]
    assert any(x.get("path") == "/hold" and x["injected"] == ["header:authorization"] for x in records), records

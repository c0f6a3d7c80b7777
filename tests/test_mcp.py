"""Remote MCP servers: `authsome mcp add`, then the official MCP SDK's client under `authsome run`.

The server (tests/servers/mcp_server.py) is built from the MCP Python SDK: its
protected resource metadata, registration, bearer check and streamable HTTP,
plus rotating refresh tokens that revoke the grant on reuse, short access
tokens and an audience check on the RFC 8707 resource. The child is the SDK's
own client, configured only through the environment authsome gives it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from authsome.vault import Vault
from tests.conftest import run_cli
from tests.support.login import LoginProcess
from tests.support.tls import make_leaf

pytestmark = pytest.mark.slow
NAME = "tmcp"
SERVER = os.path.join(os.path.dirname(__file__), "servers", "mcp_server.py")


class McpServer:
    def __init__(self, ca, workdir, access_ttl: int = 600, iss: str | None = None):
        leaf = make_leaf(ca, workdir / "pki", ["mcp.test"])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = workdir / "mcp.json"
        config.write_text(json.dumps({"port": self.port, "cert": str(leaf.cert), "key": str(leaf.key),
                                      "host": "mcp.test", "access_ttl": access_ttl, "iss": iss}))
        self.ca = ca
        self.process = subprocess.Popen([sys.executable, SERVER, str(config)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"the MCP server did not start: {self.process.stderr.read()}")

    @property
    def url(self) -> str:
        return f"https://mcp.test:{self.port}/mcp"

    @property
    def resolve(self) -> str:
        return f"mcp.test:{self.port}:127.0.0.1:{self.port}"

    def stats(self, path: str = "stats") -> dict:
        return httpx.get(f"https://127.0.0.1:{self.port}/__test/{path}", verify=ssl.create_default_context(cafile=str(self.ca.cert))).json()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def mcp_server(test_ca, tmp_path):
    server = McpServer(test_ca, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def env(mcp_server, trusting_env, login_port) -> dict:
    return {**trusting_env, "AUTHSOME_RESOLVE": mcp_server.resolve, "AUTHSOME_LOGIN_PORT": str(login_port)}


def approve(url: str, server: McpServer) -> None:
    """What the browser does: the server approves at once and redirects to authsome's callback."""
    local = url.replace(f"mcp.test:{server.port}", f"127.0.0.1:{server.port}")
    r = httpx.get(local, verify=ssl.create_default_context(cafile=str(server.ca.cert)), headers={"Host": f"mcp.test:{server.port}"})
    assert r.status_code == 302, r.text
    assert httpx.get(r.headers["location"]).status_code == 200


def mcp_add(server: McpServer, env: dict, *extra: str):
    proc = McpAdd(["mcp", "add", NAME, server.url, "--no-browser", *extra], env)
    approve(proc.url(), server)
    return proc.finish()


class McpAdd(LoginProcess):
    """`authsome mcp add ...` read line by line, like a login."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "authsome", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **env})
        import queue
        import threading

        self.err_lines, self._lines = [], queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()


CLIENT = textwrap.dedent('''
    import asyncio, os, sys
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    flag = None

    async def logged(params):
        if params.data == "started" and flag:  # the tool is still running: its event stream is live
            open(flag, "w").close()

    async def main():
        global flag
        # Configured only through the environment: the URL, the placeholder, the proxy and CA variables.
        headers = {"Authorization": "Bearer " + os.environ["TMCP_ACCESS_TOKEN"]}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(os.environ["MCP_URL"], http_client=http) as (read, write, *_):
                async with ClientSession(read, write, logging_callback=logged) as session:
                    await session.initialize()
                    for step in sys.argv[1:]:
                        if step == "tools":
                            tools = await session.list_tools()
                            print("tools", " ".join(sorted(t.name for t in tools.tools)), flush=True)
                        elif step.startswith("echo:"):
                            result = await session.call_tool("echo", {"text": step[5:]})
                            print("echo", result.content[0].text, "error" if result.is_error else "", flush=True)
                        elif step.startswith("sleep:"):
                            await asyncio.sleep(float(step[6:]))
                        elif step.startswith("wait:"):
                            flag = step[5:]
                            result = await session.call_tool("wait_for", {"path": flag})
                            print("wait", result.content[0].text, flush=True)
    asyncio.run(main())
''')


def run_client(env: dict, mcp_server: McpServer, tmp_path, *steps: str, timeout: float = 60):
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    return run_cli(["run", "--resolve", mcp_server.resolve, "--", sys.executable, str(script), *steps],
                   env={**env, "MCP_URL": mcp_server.url}, timeout=timeout)


# -- mcp add ----------------------------------------------------------------------------------------------------------

def test_mcp_add_discovers_registers_and_logs_in_with_the_resource(mcp_server, env, cli, home):
    done = mcp_add(mcp_server, env)
    assert done.code == 0, done.err
    assert f"authorization server https://mcp.test:{mcp_server.port}" in done.err
    stats = mcp_server.stats()
    assert stats["registrations"] == 1
    assert stats["authorize_requests"][0]["resource"] == mcp_server.url  # RFC 8707, in the authorization request
    assert stats["token_requests"][0]["resource"] == mcp_server.url  # and in the token request
    assert cli(["get", NAME, "--field", "status"]).out == "connected\n"
    listed = {p["name"]: p for p in json.loads(cli(["list", "--json"]).out)["providers"]}
    assert listed[NAME]["hosts"] == [mcp_server.url] and listed[NAME]["status"] == "connected"
    definition = json.loads(cli(["inspect", NAME]).out)
    assert definition["mcp"] == {"url": mcp_server.url} and definition["oauth"]["resource"] == mcp_server.url
    client = Vault.open().get_client(NAME)
    assert client.source == "dcr" and client.registration["issuer"] == f"https://mcp.test:{mcp_server.port}"
    config = json.loads(cli(["mcp", "config", NAME, "--client", "claude"]).out)
    assert config["mcpServers"][NAME] == {"type": "http", "url": mcp_server.url,
                                          "headers": {"Authorization": "Bearer authsome-proxy-managed"}}


@pytest.mark.invariant
def test_an_authorization_response_naming_another_issuer_is_refused(test_ca, tmp_path, trusting_env, login_port, cli):
    server = McpServer(test_ca, tmp_path / "mixup", iss="https://evil.test")  # RFC 9207: a mix-up
    try:
        env = {**trusting_env, "AUTHSOME_RESOLVE": server.resolve, "AUTHSOME_LOGIN_PORT": str(login_port)}
        proc = McpAdd(["mcp", "add", NAME, server.url, "--no-browser"], env)
        local = proc.url().replace(f"mcp.test:{server.port}", f"127.0.0.1:{server.port}")
        r = httpx.get(local, verify=ssl.create_default_context(cafile=str(test_ca.cert)),
                      headers={"Host": f"mcp.test:{server.port}"})
        httpx.get(r.headers["location"])
        done = proc.finish()
        assert done.code == 6 and "another authorization server" in done.err, done.err
        assert server.stats()["token_requests"] == []  # the code was never exchanged
        assert cli(["get", NAME, "--field", "status"], env=env).out == "not_connected\n"
    finally:
        server.stop()


def test_mcp_add_refuses_what_it_cannot_trust(cli, env, mcp_server):
    assert cli(["mcp", "add", NAME, f"http://mcp.test:{mcp_server.port}/mcp"], env=env).code == 2
    assert cli(["mcp", "add", "x", mcp_server.url], env=env).code == 2  # a bundled provider's name
    wrong = cli(["mcp", "add", NAME, f"https://mcp.test:{mcp_server.port}/other"], env=env)
    assert wrong.code == 6 and "protected resource metadata" in wrong.err, wrong.both  # not an MCP endpoint
    inside = cli(["mcp", "add", NAME, mcp_server.url], env={**env, "AUTHSOME_RUN": "1"})
    assert inside.code == 2 and "refused inside `authsome run`" in inside.err


# -- authsome run with the SDK's client -------------------------------------------------------------------------------

def test_the_sdk_client_lists_and_calls_tools_through_run_without_ever_holding_the_token(
        mcp_server, env, tmp_path, home, cli):
    assert mcp_add(mcp_server, env).code == 0
    r = run_client(env, mcp_server, tmp_path, "tools", "echo:hello", f"wait:{tmp_path / 'flag'}")
    assert r.code == 0, r.err
    assert "tools echo wait_for whoami" in r.out and "echo hello" in r.out
    assert "wait done" in r.out  # the tool's log message came through while it ran: the stream is live
    token = Vault.open().get_connection(NAME).access_token
    child = run_cli(["run", "--", "sh", "-c", "env; cat $HOME/.* 2>/dev/null | head -c 100000"], env=env)
    assert "TMCP_ACCESS_TOKEN=authsome-proxy-managed" in child.out and token not in child.out
    for path in [*home.rglob("*"), *tmp_path.rglob("*")]:  # no file but the vault's sealed records holds it
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    seen = [h for h in mcp_server.stats()["mcp_authorizations"] if h]
    assert seen and set(seen) == {f"Bearer {token}"}  # every request carried the real token, on the wire
    assert token not in r.out + r.err
    log = [json.loads(line) for line in cli(["log", "--json"]).out.splitlines()]
    calls = [(e.get("mcp_method"), e.get("mcp_name")) for e in log if e.get("provider") == NAME]
    assert ("tools/call", "echo") in calls and ("tools/list", None) in calls
    assert "hello" not in json.dumps(log)  # the arguments are never logged


def test_an_expired_token_is_refreshed_mid_session_with_the_resource(mcp_server, env, tmp_path, home):
    assert mcp_add(mcp_server, env).code == 0
    Vault.open().update_connection(NAME, "default", lambda c: c.with_changes(expires_at=time.time() - 1))
    r = run_client(env, mcp_server, tmp_path, "echo:one", "echo:two")
    assert r.code == 0 and "echo one" in r.out and "echo two" in r.out, r.err
    stats = mcp_server.stats()
    assert stats["refreshes"] == 1 and stats["reuse_detected"] == 0
    refresh = [t for t in stats["token_requests"] if t["grant_type"] == "refresh_token"]
    assert refresh and refresh[0]["resource"] == mcp_server.url


def test_a_401_mid_session_is_refreshed_and_the_request_sent_again(test_ca, tmp_path, env, home, trusting_env,
                                                                   login_port):
    server = McpServer(test_ca, tmp_path / "short", access_ttl=2)  # the server's tokens die after 2 s
    try:
        short_env = {**trusting_env, "AUTHSOME_RESOLVE": server.resolve, "AUTHSOME_LOGIN_PORT": str(login_port)}
        assert mcp_add(server, short_env).code == 0
        # authsome believes the token lives on (as a server's early revocation looks): the 401 is the signal.
        Vault.open().update_connection(NAME, "default", lambda c: c.with_changes(expires_at=time.time() + 3600))
        r = run_client(short_env, server, tmp_path, "echo:before", "sleep:3", "echo:after")
        assert r.code == 0 and "echo before" in r.out and "echo after" in r.out, r.err
        assert server.stats()["refreshes"] >= 1 and server.stats()["reuse_detected"] == 0
    finally:
        server.stop()


# -- the client never runs its own OAuth ------------------------------------------------------------------------------

@pytest.mark.invariant
def test_without_a_usable_credential_the_client_gets_a_clear_error_and_no_way_into_its_own_login(
        mcp_server, env, tmp_path, home, cli):
    assert mcp_add(mcp_server, env).code == 0
    mcp_server.stats("revoke")  # the server revokes every grant: the refresh is refused too
    Vault.open().update_connection(NAME, "default", lambda c: c.with_changes(expires_at=time.time() - 1))
    r = run_client(env, mcp_server, tmp_path, "tools")
    assert r.code != 0
    assert f"authsome login {NAME}" in r.out + r.err
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(f'''
        import httpx2, os
        with httpx2.Client() as c:
            for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server",
                         "/%2Ewell-known/oauth-protected-resource/mcp", "/.WELL-KNOWN/oauth-protected-resource/mcp",
                         "/mcp/../.well-known/oauth-protected-resource/mcp"):
                print(path, c.get("https://mcp.test:{mcp_server.port}" + path).status_code)
            r = c.post(os.environ["MCP_URL"], json={{"jsonrpc": "2.0", "id": 7, "method": "tools/list"}},
                       headers={{"Accept": "application/json, text/event-stream"}})
            print(r.status_code, "www-authenticate" in r.headers, r.json()["id"], r.json()["error"]["message"])
    '''))
    shown = run_cli(["run", "--resolve", mcp_server.resolve, "--", sys.executable, str(probe)],
                    env={**env, "MCP_URL": mcp_server.url})
    lines = shown.out.splitlines()
    assert all(line.endswith(" 404") for line in lines[:5]), shown.both  # no discovery for its own login
    assert lines[5].startswith("403 False 7 ") and f"authsome login {NAME}" in lines[5]
    # Logged out entirely: the server still only gets requests authsome answers for.
    assert cli(["logout", NAME]).code == 0
    again = run_cli(["run", "--resolve", mcp_server.resolve, "--", sys.executable, str(probe)],
                    env={**env, "MCP_URL": mcp_server.url})
    assert again.out.splitlines()[5].startswith("403 False 7 ") and "not logged in" in again.out, again.both


@pytest.mark.invariant
def test_a_step_up_challenge_never_reaches_the_client(mcp_server, env, tmp_path, home):
    """A 403 insufficient_scope with resource_metadata would start the SDK client's own OAuth (a step-up)."""
    assert mcp_add(mcp_server, env).code == 0
    mcp_server.stats("stepup")
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent('''
        import httpx2, os
        with httpx2.Client() as c:
            r = c.post(os.environ["MCP_URL"], json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                       headers={"Accept": "application/json, text/event-stream"})
            print(r.status_code, r.headers.get("www-authenticate"), r.json()["error"]["message"])
    '''))
    r = run_cli(["run", "--resolve", mcp_server.resolve, "--", sys.executable, str(probe)],
                env={**env, "MCP_URL": mcp_server.url})
    assert r.out.startswith("403 None ") and "more scopes" in r.out and f"authsome login {NAME}" in r.out, r.both


def test_a_planted_mcp_definition_routes_nothing(api, home, trusting_env, cli):
    from authsome.models import Connection

    token = "x-real-" + "P1anted" * 4
    Vault.open().put_connection(Connection(provider="x", access_token=token))
    for name, host in (("evil", "api.twitter.com"), ("lurker", "other.test")):  # by the agent, unconfirmed
        (home / "providers" / f"{name}.json").write_text(json.dumps({
            "name": name, "display_name": name, "auth_type": "oauth2", "flow": "dcr_pkce",
            "oauth": {"authorization_url": f"https://{host}/a", "token_url": f"https://{host}/t",
                      "issuer": f"https://{host}", "scopes": [], "supports_dcr": True, "client_auth": "none"},
            "api_url": [f"https://{host}/2"], "export": {"access_token": f"{name.upper()}_ACCESS_TOKEN"},
            "mcp": {"url": f"https://{host}/2"}}))
    r = run_cli(["run", *api.resolve("api.twitter.com", "other.test"), "--", "sh", "-c",
                 "curl -sS -o /dev/null https://api.twitter.com/2/users/me; "
                 "curl -sS -o /dev/null -w '%{http_code}' -X POST https://other.test/2/x"], env=trusting_env)
    assert r.code == 0, r.err
    assert api.seen[0]["headers"]["authorization"] == f"Bearer {token}"
    # Not intercepted at all: a tunnel, as for any host no confirmed definition routes.
    log = [json.loads(line) for line in cli(["log", "--json"]).out.splitlines()]
    assert {"event": "tunnel", "host": "other.test", "port": 443}.items() <= next(
        e for e in log if e.get("host") == "other.test").items(), log
    assert not any(e.get("provider") in ("evil", "lurker") for e in log)
    assert "evil" in cli(["list"]).out  # valid definitions: left out of runs only for not being confirmed


def test_an_mcp_server_added_on_one_machine_is_served_on_the_others(mcp_server, env, store, master_key, tmp_path):
    """The definition is a file of the home that added it; the store holds its confirmed copy."""
    assert mcp_add(mcp_server, env).code == 0  # machine A (this home) uses the shared store
    b = {**env, "AUTHSOME_HOME": str(tmp_path / "b"), "AUTHSOME_STORE": store, "AUTHSOME_MASTER_KEY": master_key}
    r = run_client(b, mcp_server, tmp_path, "echo:from-b")
    assert r.code == 0 and "echo from-b" in r.out, r.err
    mcp_server.stats("revoke")
    Vault.open().update_connection(NAME, "default", lambda c: c.with_changes(expires_at=time.time() - 1))
    denied = run_client(b, mcp_server, tmp_path, "tools")
    assert f"authsome login {NAME}" in denied.out + denied.err  # guarded there too: no login of its own


def test_mcp_add_over_another_definition_needs_force_and_takes_nothing_of_its_credentials(
        mcp_server, env, cli, home, tmp_path):
    from authsome.models import ClientCredentials, Connection

    (tmp_path / "corp.json").write_text(json.dumps({
        "name": NAME, "display_name": "corp", "auth_type": "oauth2", "flow": "pkce",
        "oauth": {"authorization_url": "https://corp.test/a", "token_url": "https://corp.test/t", "scopes": []},
        "api_url": ["api.corp.test"], "export": {"access_token": "CORP_ACCESS_TOKEN"}}))
    assert cli(["register", str(tmp_path / "corp.json")]).code == 0
    Vault.open().put_client(ClientCredentials(provider=NAME, client_id="corp", client_secret="corp-secret-" + "9" * 20))
    Vault.open().put_connection(Connection(provider=NAME, access_token="corp-token-" + "9" * 20))
    refused = cli(["mcp", "add", NAME, mcp_server.url, "--no-browser"], env=env)
    assert refused.code == 2 and "already a custom provider" in refused.err
    assert Vault.open().get_connection(NAME).access_token.startswith("corp-token-")
    done = mcp_add(mcp_server, env, "--force")
    assert done.code == 0, done.err
    assert Vault.open().get_client(NAME).source == "dcr"  # registered anew: the old secret went nowhere
    assert not Vault.open().get_connection(NAME).access_token.startswith("corp-token-")


@pytest.mark.parametrize("body, expected", [
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"secret"}}}',
     ("tools/call", "echo", 1)),
    (b'[{"jsonrpc":"2.0","method":"notifications/initialized"},'
     b'{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"rm"}}]',
     ("notifications/initialized,tools/call", "rm", "a")),
    (b'{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"https://x/doc?token=abc"}}',
     ("resources/read", None, 2)),  # a resource's URI is an argument
    (b"[" * 100000, ("unparsed", None, None)),
    (b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"big","arguments":"' + b"x" * (2 << 20) + b'"}}',
     ("unparsed", None, None)),
])
def test_the_audit_reads_methods_and_names_never_arguments(body, expected):
    from authsome.addons.mcp import rpc

    assert rpc(body) == expected


@pytest.mark.parametrize("url", ["https://mcp.test/mcp?tenant=1", "https://mcp.test/a/../mcp", "https://mcp.test/%6dcp",
                                 "https://u:p@mcp.test/mcp", "https://mcp.test:99999/mcp", "https://[::1/mcp",
                                 "http://mcp.test/mcp"])
def test_mcp_add_refuses_urls_that_would_not_say_one_thing(url, cli):
    r = cli(["mcp", "add", NAME, url])
    assert r.code == 2 and "internal error" not in r.both and "Traceback" not in r.both, r.both


def test_a_client_registered_with_another_issuer_is_never_used_with_this_one(mcp_server, env, home):
    """Credentials are keyed by issuer: a registration that names another authorization server is redone."""
    import dataclasses

    assert mcp_add(mcp_server, env).code == 0
    vault = Vault.open()
    old = vault.get_client(NAME)
    vault.put_client(dataclasses.replace(old, registration={**old.registration, "issuer": "https://old-as.test"}))
    proc = McpAdd(["login", NAME, "--no-browser", "--force"], env)
    approve(proc.url(), mcp_server)
    assert proc.finish().code == 0
    assert mcp_server.stats()["registrations"] == 2
    again = Vault.open().get_client(NAME)
    assert again.client_id != old.client_id and again.registration["issuer"] == f"https://mcp.test:{mcp_server.port}"

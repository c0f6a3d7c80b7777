"""The Refresh addon through `authsome run`: 401 -> one refresh -> the same request again.

The bundled `x` definition is used unchanged; --resolve sends api.twitter.com
(the API and the token endpoint) to the oidc-provider stand-in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from authsome.vault import Vault
from tests.conftest import AUTHSOME, X_HOSTS, run_cli

ME = "https://api.twitter.com/2/users/me"


def resolve_args(oauth) -> list[str]:
    out = []
    for host in X_HOSTS:
        out += ["--resolve", f"{host}:443:127.0.0.1:{oauth.port}"]
    return out


def test_401_refreshes_once_and_the_child_sees_200(oauth, connect_x, trusting_env):
    issued = connect_x(revoke_access=True)  # the API already refuses the stored token
    r = run_cli(["run", *resolve_args(oauth), "--", "curl", "-sS", "-w", "\n%{http_code}", ME], env=trusting_env)
    body, status = r.out.rsplit("\n", 1)
    assert (r.code, status) == (0, "200"), r.err
    assert json.loads(body)["data"]["username"] == "alice"
    stats = oauth.stats()
    assert stats["grants"]["refresh_token"]["success"] == 1
    seen = stats["api_authorization_headers"]
    assert seen[0] == f"Bearer {issued['access_token']}" and seen[1] != seen[0] and len(seen) == 2
    stored = Vault.open().get_connection("x")
    assert seen[1] == f"Bearer {stored.access_token}" and stored.refresh_token != issued["refresh_token"]
    for secret in (issued["access_token"], issued["refresh_token"], stored.access_token, stored.refresh_token):
        assert secret not in r.out + r.err


def test_post_with_a_body_is_resent_intact(oauth, connect_x, trusting_env):
    connect_x(revoke_access=True)
    tweet = json.dumps({"text": "hello from an agent " + "x" * 2000})
    r = run_cli(["run", *resolve_args(oauth), "--", "curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                 "--data-binary", "@-", "https://api.twitter.com/2/tweets"], env=trusting_env, input=tweet)
    assert r.code == 0, r.err
    assert json.loads(r.out)["data"]["text"] == json.loads(tweet)["text"]
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1


def test_expiring_token_is_refreshed_before_the_request(oauth, connect_x, trusting_env):
    issued = connect_x(expires_in=5)  # inside the 60 s leeway
    r = run_cli(["run", *resolve_args(oauth), "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", ME],
                env=trusting_env)
    assert r.out == "200"
    seen = oauth.stats()["api_authorization_headers"]
    assert len(seen) == 1 and seen[0] != f"Bearer {issued['access_token']}"  # no 401 round trip


@pytest.mark.invariant
def test_rejected_refresh_gives_the_child_the_401_and_says_what_to_run(oauth, connect_x, trusting_env, cli):
    issued = connect_x(revoke_access=True)
    with oauth.client() as c:
        c.post("/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
               auth=("confidential-basic", "basic-secret")).raise_for_status()
    r = run_cli(["run", *resolve_args(oauth), "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", ME],
                env=trusting_env)
    assert r.out == "401"
    assert "authsome login x --force" in r.err
    assert issued["refresh_token"] not in r.err
    assert cli(["get", "x", "--field", "status"]).out == "invalid\n"


@pytest.mark.invariant
@pytest.mark.slow
def test_ten_runs_with_a_dead_token_all_succeed_with_one_refresh(oauth, connect_x, trusting_env):
    connect_x(revoke_access=True)
    env = {**os.environ, **trusting_env}
    procs = [subprocess.Popen([*AUTHSOME, "run", *resolve_args(oauth), "--", "curl", "-sS", "-o", "/dev/null",
                               "-w", "%{http_code}", ME], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(10)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [out for out, _ in results] == ["200"] * 10, [err for _, err in results]
    assert oauth.stats()["grants"]["refresh_token"] == {"success": 1, "error": 0, "errors": {}}


@pytest.mark.invariant
def test_kill_9_during_a_refresh_leaves_a_readable_vault_and_a_working_connection(oauth, connect_x, trusting_env):
    connect_x(revoke_access=True)
    oauth.delay_token_endpoint(5000)
    env = {**os.environ, **trusting_env}
    proc = subprocess.Popen([*AUTHSOME, "run", *resolve_args(oauth), "--", "curl", "-sS", ME], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import time

    deadline = time.monotonic() + 30
    while oauth.token_requests_waiting() == 0:  # the refresh is in flight, the vault lock held
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    oauth.delay_token_endpoint(0)
    while oauth.token_requests_waiting():  # the server drops the orphaned request
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert oauth.stats().get("token_requests_dropped") == 1  # nothing was consumed
    conn = Vault.open().get_connection("x")  # readable, not damaged
    assert conn.state == "connected"
    r = run_cli(["run", *resolve_args(oauth), "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", ME],
                env=trusting_env, timeout=60)
    assert r.out == "200", r.err


def test_refresh_streams_other_responses_and_keeps_the_childs_own_token(oauth, connect_x, trusting_env):
    connect_x(revoke_access=True)
    r = run_cli(["run", *resolve_args(oauth), "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                 "-H", "Authorization: Bearer my-own-token", ME], env=trusting_env)
    assert r.out == "401"  # not ours to refresh
    assert "refresh_token" not in oauth.stats()["grants"]


def test_a_slow_refresh_does_not_hold_up_other_traffic(oauth, api, connect_x, trusting_env):
    connect_x(revoke_access=True)
    oauth.delay_token_endpoint(8000)
    child = f'''
import json, threading, time, requests
result = {{}}
def slow():
    result["me"] = requests.get("{ME}", timeout=60).status_code
t = threading.Thread(target=slow)
t.start()
waiting = lambda: requests.get("{oauth.url}/__test/waiting", timeout=5).json()["token"]
deadline = time.monotonic() + 30
while waiting() == 0:  # the refresh is now held at the token endpoint
    assert time.monotonic() < deadline
    time.sleep(0.05)
other = requests.get("https://other.test/", timeout=10).status_code
still_waiting = waiting()
t.join()
print(json.dumps({{"other": other, "refresh_pending_meanwhile": still_waiting, "me": result["me"]}}))
'''
    r = run_cli(["run", *resolve_args(oauth), *api.resolve("other.test"), "--", sys.executable, "-c", child],
                env=trusting_env, timeout=90)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"other": 200, "refresh_pending_meanwhile": 1, "me": 200}


@pytest.mark.slow
def test_http2_api_gets_the_token_and_a_refreshed_retry(oauth, connect_x, trusting_env, test_ca, tmp_path, cli):
    """curl speaks HTTP/2 to the proxy and the proxy to the API; the 401 retry works there too."""
    from tests.support.tls import make_leaf

    issued = connect_x()
    leaf = make_leaf(test_ca, tmp_path, ["api.h2.test"], stem="h2")
    record = tmp_path / "seen.jsonl"
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parents[1] / "servers" / "h2api.py"),
                               str(leaf.cert), str(leaf.key), str(record), issued["access_token"]],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        definition = json.loads(cli(["inspect", "x"]).out)
        definition.update(name="h2x", api_url="api.h2.test", export={"access_token": "H2X_ACCESS_TOKEN"})
        definition.pop("user_info")  # X's user endpoint is not on these routes
        (tmp_path / "h2x.json").write_text(json.dumps(definition))
        assert cli(["register", str(tmp_path / "h2x.json")]).code == 0
        from authsome.models import ClientCredentials
        from authsome.vault import Vault

        v = Vault.open()
        v.put_client(ClientCredentials(provider="h2x", client_id="confidential-basic", client_secret="basic-secret"))
        v.put_connection(v.get_connection("x").with_changes(provider="h2x"))
        r = run_cli(["run", *resolve_args(oauth), "--resolve", f"api.h2.test:443:127.0.0.1:{port}", "--",
                     "curl", "-sS", "--http2", "-w", "\n%{http_version}", "https://api.h2.test/v1/me"], env=trusting_env)
    finally:
        server.kill()
        server.wait()
    body, client_version = r.out.rsplit("\n", 1)
    assert r.code == 0, r.err
    assert client_version == "2"  # curl to the proxy
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert [s["http_version"] for s in seen] == ["2", "2"]  # the proxy to the API, both attempts
    assert seen[0]["authorization"] == f"Bearer {issued['access_token']}"
    assert seen[1]["authorization"] != seen[0]["authorization"]
    assert json.loads(body)["authorization"] == "Bearer authsome-proxy-managed"  # the echo, scrubbed
    assert oauth.stats()["grants"]["refresh_token"]["success"] == 1

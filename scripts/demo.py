"""A real `authsome run` against a local stand-in for X, start to finish, in a throwaway home.

What runs: oidc-provider (npm) as X's authorization server and API on
127.0.0.1, over HTTPS with a throwaway CA; the real authsome CLI; a small
"agent" that only knows X_ACCESS_TOKEN=authsome-proxy-managed. The stored
access token is already dead at the API, so the demo also shows the proxy
refreshing it on the 401 and re-sending the request.

Nothing here touches ~/.authsome or the internet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.oidc import X_ROUTES, default_clients, start_oidc_server  # noqa: E402
from tests.support.tls import make_ca  # noqa: E402

X_HOSTS = ["twitter.com", "api.twitter.com", "api.x.com"]
AGENT = textwrap.dedent('''
    import os, requests
    token = os.environ["X_ACCESS_TOKEN"]
    print(f"agent: X_ACCESS_TOKEN={token}")
    r = requests.get("https://api.twitter.com/2/users/me", headers={"Authorization": f"Bearer {token}"})
    print(f"agent: GET https://api.twitter.com/2/users/me -> {r.status_code} {r.json()}")
    r = requests.post("https://api.twitter.com/2/tweets", json={"text": "hello from an agent without secrets"})
    print(f"agent: POST https://api.twitter.com/2/tweets -> {r.status_code} {r.json()}")
''')


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def authsome(*args: str, env: dict, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    shown = " ".join(shlex.quote(a) for a in args)
    print(f"$ authsome {shown}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "authsome", *args], env=env, input=input, text=True,
                          capture_output=True)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    if check and proc.returncode != 0:
        raise SystemExit(f"demo failed: authsome {shown} exited {proc.returncode}")
    return proc


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="authsome-demo-"))
    ca = make_ca(work / "pki")
    step("Start a stand-in for X (oidc-provider over HTTPS on 127.0.0.1)")
    server = start_oidc_server(work / "x", ca, hostnames=X_HOSTS, issuer="https://twitter.com",
                               clients=default_clients(), routes=X_ROUTES, access_token_ttl=600)
    try:
        print(f"X stand-in listening at {server.url}; api.twitter.com is sent there with --resolve")
        resolve = [a for h in X_HOSTS for a in ("--resolve", f"{h}:443:127.0.0.1:{server.port}")]
        env = {**os.environ, "AUTHSOME_HOME": str(work / "home"), "SSL_CERT_FILE": str(ca.cert),
               "REQUESTS_CA_BUNDLE": str(ca.cert), "CURL_CA_BUNDLE": str(ca.cert), "AUTHSOME_KEYRING": "0"}
        env.pop("AUTHSOME_MASTER_KEY", None)

        step("A fresh home knows X but has no connection")
        authsome("get", "x", "--field", "status", env=env, check=False)  # exits 4: not connected yet

        step("Simulate a finished `authsome login x` (a browser login needs a person)")
        tokens = server.issue(revoke_access=True)  # X already refuses this access token
        seed = textwrap.dedent(f'''
            import time
            from authsome.models import ClientCredentials, Connection
            from authsome.vault import Vault
            v = Vault.open()
            v.put_client(ClientCredentials(provider="x", client_id="confidential-basic", client_secret="basic-secret"))
            v.put_connection(Connection(provider="x", access_token={tokens["access_token"]!r},
                refresh_token={tokens["refresh_token"]!r}, token_type="Bearer", expires_at=time.time() + 600,
                scopes=("tweet.read", "tweet.write", "users.read", "offline.access")))
        ''')
        subprocess.run([sys.executable, "-c", seed], env=env, check=True)
        authsome("get", "x", env=env)

        step("Run an agent under the proxy: it sees a placeholder, the API sees the real token")
        agent = work / "my_agent.py"
        agent.write_text(AGENT)
        started = time.monotonic()
        authsome("run", *resolve, "--", sys.executable, str(agent), env=env)
        print(f"(run took {time.monotonic() - started:.2f} s)")

        stats = server.stats()
        step("What the stand-in for X saw")
        print(f"refreshes: {json.dumps(stats['grants'].get('refresh_token'))}")
        for header in stats["api_authorization_headers"]:
            # A fingerprint, not the value: even a demo does not print tokens.
            digest = hashlib.sha256((header or "").encode()).hexdigest()[:12]
            kind = "the placeholder" if header and "authsome-proxy-managed" in header else f"a real token (sha256 {digest})"
            print(f"Authorization on the API: {kind}")

        step("The audit log (no header values, no bodies)")
        authsome("log", env=env)
        step("Nothing secret left in the child's environment")
        out = authsome("run", "--", "sh", "-c", "env | grep -E '^X_|PROXY=' | sed 's/:[^:@]*@/:***@/'", env=env)
        assert tokens["access_token"] not in out.stdout
    finally:
        server.stop()
    print("\ndemo finished: the agent used X without ever holding a secret.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

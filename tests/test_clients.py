"""More real clients under `authsome run`: aiohttp, git, Node (undici), Java, Go. See the README's table."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from authsome.models import PLACEHOLDER, Connection
from authsome.vault import Vault
from tests.conftest import run_cli

TOKEN = "client-compat-" + "C" * 24
NODE_DIR = Path(__file__).resolve().parent / "clients" / "node"
JAVA_DIR = Path(__file__).resolve().parent / "clients" / "java"
GO_DIR = Path(__file__).resolve().parent / "clients" / "go"


@pytest.fixture
def x_connected(home):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 3600))


def test_aiohttp_with_trust_env(api, x_connected, trusting_env):
    code = textwrap.dedent('''
        import asyncio, os, aiohttp
        async def main():
            async with aiohttp.ClientSession(trust_env=True) as s:
                async with s.get("https://api.twitter.com/2/users/me",
                                 headers={"Authorization": "Bearer " + os.environ["X_ACCESS_TOKEN"]}) as r:
                    print(await r.text())
        asyncio.run(main())
    ''')
    r = run_cli(["run", *api.resolve("api.twitter.com"), "--", sys.executable, "-c", code], env=trusting_env)
    assert r.code == 0, r.err
    assert json.loads(r.out)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"  # echoed, scrubbed
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_git_over_https(api, x_connected, trusting_env, tmp_path):
    # The stand-in is not a git server: what matters is that git went through the proxy,
    # trusted the run's CA (GIT_SSL_CAINFO) and the request carried the injected token.
    r = run_cli(["run", *api.resolve("api.twitter.com"), "--", "git", "ls-remote",
                 "https://api.twitter.com/agent/repo.git"], env=trusting_env, cwd=tmp_path)
    assert "SSL" not in r.err and "certificate" not in r.err, r.err
    first = api.seen[0]
    assert first["path"].startswith("/agent/repo.git/info/refs")
    assert first["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert first["headers"]["user-agent"].startswith("git/")


def test_node_fetch_through_undici_env_agent(api, x_connected, trusting_env):
    assert shutil.which("node"), "node is part of the machine image"
    if not (NODE_DIR / "node_modules" / "undici").is_dir():
        pytest.fail("run `bash scripts/setup` (npm ci in tests/clients/node)")
    r = run_cli(["run", *api.resolve("api.twitter.com"), "--", "node", str(NODE_DIR / "fetch.mjs"),
                 "https://api.twitter.com/2/users/me"], env=trusting_env)
    assert r.code == 0, r.err
    assert json.loads(r.out)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"  # echoed, scrubbed
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_java_httpclient_with_the_readme_recipe(api, x_connected, trusting_env, tmp_path):
    assert shutil.which("java") and shutil.which("keytool"), "a JDK is part of the machine image"
    # The README's recipe: import $AUTHSOME_CA_CERT into a truststore, name the proxy with
    # -Dhttps.proxyHost/Port, answer its 407 with an Authenticator, allow Basic for tunnels.
    child = textwrap.dedent(f'''
        import os, subprocess, sys, urllib.parse
        store = "{tmp_path / 'run-ca.p12'}"
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "authsome-run", "-storetype", "PKCS12",
                        "-file", os.environ["AUTHSOME_CA_CERT"], "-keystore", store, "-storepass", "changeit"],
                       check=True, capture_output=True)
        proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
        sys.exit(subprocess.run(["java", f"-Dhttps.proxyHost={{proxy.hostname}}", f"-Dhttps.proxyPort={{proxy.port}}",
                                 "-Djdk.http.auth.tunneling.disabledSchemes=",
                                 f"-Djavax.net.ssl.trustStore={{store}}", "-Djavax.net.ssl.trustStorePassword=changeit",
                                 "{JAVA_DIR / 'Fetch.java'}", "https://api.twitter.com/2/users/me"]).returncode)
    ''')
    r = run_cli(["run", *api.resolve("api.twitter.com"), "--", sys.executable, "-c", child], env=trusting_env,
                timeout=120)
    assert r.code == 0, r.err
    assert json.loads(r.out)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"  # echoed, scrubbed
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_go_net_http_needs_nothing(api, x_connected, trusting_env, tmp_path):
    assert shutil.which("go"), "run `bash scripts/setup` (it installs Debian's golang-go)"
    # Go reads HTTPS_PROXY (with its credentials) and SSL_CERT_FILE by itself.
    env = {**trusting_env, "GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath"),
           "GOFLAGS": "", "GOTOOLCHAIN": "local"}
    r = run_cli(["run", *api.resolve("api.twitter.com"), "--", "go", "run", str(GO_DIR / "fetch.go"),
                 "https://api.twitter.com/2/users/me"], env=env, timeout=180)
    assert r.code == 0, r.err
    assert json.loads(r.out)["headers"]["authorization"] == f"Bearer {PLACEHOLDER}"  # echoed, scrubbed
    assert api.seen[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"

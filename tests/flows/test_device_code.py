"""`--flow device_code` (RFC 8628) against oidc-provider, approved in a real browser."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.conftest import run_cli
from tests.support.browser import oidc_approve_device, oidc_deny_consent
from tests.support.login import LoginProcess
from tests.support.oidc import DEVICE_GRANT


def register_stand_in(cli, tmp_path, base: str, name: str = "acme") -> None:
    definition = {
        "name": name, "display_name": "Acme", "auth_type": "oauth2", "flow": "device_code",
        "oauth": {"authorization_url": f"{base}/i/oauth2/authorize", "token_url": f"{base}/2/oauth2/token",
                  "device_authorization_url": f"{base}/device/auth", "scopes": ["tweet.read", "users.read"],
                  "supports_device_code": True, "client_auth": "none"},
        "api_url": "api.acme.test", "export": {"access_token": "ACME_ACCESS_TOKEN"},
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(definition))
    assert cli(["register", str(path)]).code == 0


@pytest.fixture
def acme(cli, tmp_path, x_env):
    register_stand_in(cli, tmp_path, "https://twitter.com")
    return {**x_env, "ACME_CLIENT_ID": "public"}


def _code_and_uri(login: LoginProcess) -> tuple[str, str]:
    uri = login.wait_for(r"open (https://\S+) and enter the code").group(1)
    code = login.wait_for(r"^    (\S+)$").group(1)
    return code, uri


def test_device_code_approved_in_the_browser(home, oauth, browser, acme):
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    code, uri = _code_and_uri(login)
    complete = login.url()
    assert complete.startswith(uri) and "user_code=" in complete
    # Approve only after authsome has polled and heard authorization_pending.
    deadline = time.monotonic() + 30
    while not oauth.stats()["grants"].get(DEVICE_GRANT, {}).get("errors", {}).get("authorization_pending"):
        assert time.monotonic() < deadline, "authsome never polled"
        time.sleep(0.1)
    oidc_approve_device(browser, uri, code)
    done = login.finish()
    assert done.code == 0, done.err
    assert run_cli(["get", "acme", "--field", "status"], env=acme).out == "connected\n"
    assert oauth.stats()["grants"][DEVICE_GRANT]["success"] == 1


def test_device_code_denied(home, oauth, browser, acme):
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    code, uri = _code_and_uri(login)
    browser.goto(uri)
    browser.fill('form[id="op.deviceInputForm"] input[name="user_code"]', code)
    browser.click('button[form="op.deviceInputForm"]')
    browser.click('button[autofocus][form="op.deviceConfirmForm"]')
    oidc_deny_consent(browser, "mallory")
    done = login.finish()
    assert done.code == 6 and "access_denied" in done.err


def test_device_code_expires(home, test_ca, tmp_path_factory, cli, tmp_path, trusting_env):
    from tests.support.oidc import default_clients, start_oidc_server

    with start_oidc_server(tmp_path_factory.mktemp("short"), test_ca, clients=default_clients(),
                           extra_config={"device_code_ttl": 2}) as short:
        register_stand_in(cli, tmp_path, short.url, name="shortlived")
        r = run_cli(["login", "shortlived", "--flow", "device_code"],
                    env={**trusting_env, "SHORTLIVED_CLIENT_ID": "public"}, timeout=60)
    assert r.code == 6 and "expired before the login was approved" in r.err


def test_ctrl_c_cancels_cleanly(home, oauth, acme):
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    _code_and_uri(login)
    login.proc.send_signal(signal.SIGINT)
    done = login.finish()
    assert done.code == 130
    assert "Traceback" not in done.err and "interrupted" in done.err


def test_device_flow_refused_where_unsupported(home, x_env):
    r = run_cli(["login", "x", "--flow", "device_code"], env=x_env)
    assert r.code == 2 and "does not support the device flow" in r.err


def test_slow_down_makes_polling_slower(home, oauth, browser, acme):
    oauth.slow_down(1)
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    code, uri = _code_and_uri(login)
    deadline = time.monotonic() + 30
    while len(oauth.stats().get("token_times", [])) < 2:  # the slow_down, then one more poll
        assert time.monotonic() < deadline, "authsome stopped polling after slow_down"
        time.sleep(0.1)
    oidc_approve_device(browser, uri, code)
    assert login.finish().code == 0
    times = oauth.stats()["token_times"]
    # RFC 8628 3.5: after slow_down the interval grows by 5 s (it was 1 s).
    assert times[1] - times[0] >= 6000


def test_polling_survives_a_dropped_connection(home, oauth, browser, acme):
    # The server resets two polls without answering (a proxy restart, a server
    # closing an idle connection as the poll arrives): authsome keeps polling.
    oauth.drop_token_requests(2)
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    code, uri = _code_and_uri(login)
    deadline = time.monotonic() + 30
    while oauth.stats().get("token_drops", 0) < 2:
        assert time.monotonic() < deadline, "authsome stopped polling"
        time.sleep(0.1)
    oidc_approve_device(browser, uri, code)
    done = login.finish()
    assert done.code == 0, done.err
    assert oauth.stats()["grants"][DEVICE_GRANT]["success"] == 1


def test_polling_gives_up_when_the_server_stays_unreachable(home, oauth, acme):
    from authsome.flows.device_code import NETWORK_RETRIES

    oauth.drop_token_requests(NETWORK_RETRIES + 1)
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    _code_and_uri(login)
    done = login.finish()
    assert done.code == 6 and "Could not reach twitter.com: ConnectionError" in done.err
    assert oauth.stats()["token_drops"] == NETWORK_RETRIES + 1


def test_each_poll_opens_a_fresh_connection(home, oauth, browser, acme):
    # Polls are farther apart than servers keep idle connections (Node: 5 s), so
    # reusing one races the server's close. Distinct client ports prove no reuse.
    login = LoginProcess(["acme", "--flow", "device_code"], acme)
    code, uri = _code_and_uri(login)
    deadline = time.monotonic() + 30
    while len(oauth.stats().get("token_ports", [])) < 3:
        assert time.monotonic() < deadline, "authsome stopped polling"
        time.sleep(0.1)
    oidc_approve_device(browser, uri, code)
    assert login.finish().code == 0
    ports = oauth.stats()["token_ports"]
    assert len(set(ports)) == len(ports), ports

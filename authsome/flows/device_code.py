"""The device authorization grant (RFC 8628), for machines without a browser.

authlib implements this grant only on the server side, so the client lives
here: ask for a device code, show the user code and URL, poll the token
endpoint at the server's interval (slower after `slow_down`), and stop on
approval, denial, expiry or Ctrl-C.
"""

from __future__ import annotations

import time

from authsome.errors import AuthServerError, LoginError, Unreachable
from authsome.flows import oauth_client
from authsome.flows.clients import known_client, prompt_client, remember, reset_hint
from authsome.flows.interaction import Interaction, LoginOptions
from authsome.models import Connection, Provider
from authsome.vault import Vault

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
# Consecutive polls that may fail to reach the server before the login gives up.
# A poll is safe to repeat: if the lost attempt was the one that redeemed the
# code, the next one is refused and the user logs in again, nothing is lost.
NETWORK_RETRIES = 3


def login(provider: Provider, vault: Vault, opts: LoginOptions, ui: Interaction,
          *, sleep=time.sleep, clock=time.monotonic) -> Connection:
    oauth = oauth_client.endpoints(provider, opts.base_url)
    if not oauth.device_authorization_url:
        raise LoginError(f"'{provider.name}' does not support the device flow.", f"run `authsome login {provider.name}`")
    scopes = tuple(opts.scopes) if opts.scopes is not None else oauth.scopes
    client = known_client(provider, vault, use_stored=not opts.reset_client) or \
        prompt_client(provider, vault, ui, redirect_uri=None)
    sess = oauth_client.http_session()

    data = {"scope": oauth_client.scope_string(oauth, scopes)} if scopes else {}
    data.update(oauth_client.resource_param(oauth))  # RFC 8707, as in the other flows
    resp = oauth_client.post_form(oauth.device_authorization_url, data, client=client, oauth=oauth, sess=sess)
    body = oauth_client.json_body(resp)
    if resp.status_code != 200 or body.get("error") or not body.get("device_code"):
        raise AuthServerError(body.get("error") or f"http_{resp.status_code}",
                              oauth_client.redact(body.get("error_description"), client, ()),
                              f"check that the device flow is enabled for the app; {reset_hint(provider)}")
    # Google calls it verification_url; RFC 8628 says verification_uri.
    uri = body.get("verification_uri") or body.get("verification_url")
    if not uri or not body.get("user_code"):
        raise LoginError("The device authorization response has no user code or verification URI.")
    expires_in = float(body.get("expires_in") or 600)
    interval = float(body.get("interval") or DEFAULT_INTERVAL)
    ui.device_code(body["user_code"], uri, body.get("verification_uri_complete"), expires_in)

    deadline = clock() + min(expires_in, opts.timeout)
    # Polls are seconds apart, longer than many servers keep an idle connection
    # (Node's default is 5 s); reusing one races the server's close.
    sess.headers["Connection"] = "close"
    failures = 0
    try:
        while True:
            _wait(interval, deadline, ui, sleep, clock)
            if clock() >= deadline:
                raise LoginError("The device code expired before the login was approved.",
                                 f"run `authsome login {provider.name} --flow device_code` again")
            try:
                resp = oauth_client.post_form(
                    oauth.token_url, {"grant_type": GRANT, "device_code": body["device_code"],
                                      **oauth_client.resource_param(oauth)},
                    client=client, oauth=oauth, sess=sess,
                )
            except Unreachable as exc:
                failures += 1
                if failures > NETWORK_RETRIES or not exc.transient:
                    raise
                continue
            failures = 0
            token = oauth_client.json_body(resp)
            error = token.get("error")
            if resp.status_code == 200 and not error and token.get("access_token"):
                g = oauth_client.granted(token, scopes, oauth)
                remember(provider, vault, client)  # it worked: kept for the next login and refreshes
                return oauth_client.new_connection(provider, opts.connection, g, flow="device_code", base_url=opts.base_url)
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if error == "expired_token":
                raise LoginError("The device code expired before the login was approved.",
                                 f"run `authsome login {provider.name} --flow device_code` again")
            if error == "access_denied":
                raise AuthServerError("access_denied", oauth_client.redact(token.get("error_description"), client, (body["device_code"],)),
                                      "approve the request on the verification page to log in")
            raise AuthServerError(error or f"http_{resp.status_code}",
                                  oauth_client.redact(token.get("error_description"), client, (body["device_code"],)),
                                  reset_hint(provider) if error in ("invalid_client", "unauthorized_client") else None)
    finally:
        ui.done_waiting()


def _wait(seconds: float, deadline: float, ui: Interaction, sleep, clock) -> None:
    """Sleep `seconds` in small steps, reporting the time left on the code."""
    end = min(clock() + seconds, deadline)
    while True:
        now = clock()
        ui.waiting(max(0.0, deadline - now))
        if now >= end:
            return
        sleep(min(0.25, end - now))

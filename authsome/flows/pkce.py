"""The browser flow: authorization code with PKCE (S256) on 127.0.0.1:7998.

First login: the local page collects client_id / client_secret (stored
encrypted, reused later), then sends the browser to the provider. The
provider returns to /auth/callback/oauth; `state` is checked in constant
time and the code is exchanged with the client authenticated as the
definition says. With --no-browser the URL is printed and a redirect URL
pasted into the terminal completes the login as well.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from urllib.parse import urlsplit

from authlib.integrations.base_client.errors import OAuthError

from authsome.errors import AuthServerError, LoginError, LoginTimeout, StateMismatch
from authsome.flows import oauth_client
from authsome.flows.clients import (
    client_fields,
    client_from_form,
    known_client,
    prompt_client,
    remember,
    reset_hint,
    uses_secret,
)
from authsome.flows.form_server import LoginPage
from authsome.flows.interaction import Interaction, LoginOptions
from authsome.models import ClientCredentials, Connection, Provider
from authsome.vault import Vault


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PkceLogin:
    def __init__(self, provider: Provider, vault: Vault, opts: LoginOptions, ui: Interaction,
                 *, client: ClientCredentials | None = None, flow: str = "pkce"):
        self.provider = provider
        self.vault = vault
        self.opts = opts
        self.ui = ui
        self.flow = flow
        self.oauth = oauth_client.endpoints(provider, opts.base_url)
        if not self.oauth.authorization_url:
            raise LoginError(f"'{provider.name}' has no authorization_url, so the browser flow cannot run.",
                             f"try `authsome login {provider.name} --flow device_code`")
        self.scopes = tuple(opts.scopes) if opts.scopes is not None else self.oauth.scopes
        self.client = client or known_client(provider, vault, use_stored=not opts.reset_client)
        self.state = secrets.token_urlsafe(32)
        self.verifier = secrets.token_urlsafe(64)
        self.result: Connection | None = None

    def authorize_url(self, redirect_uri: str) -> str:
        assert self.client is not None and self.oauth.authorization_url
        sess = oauth_client.session(self.oauth, self.client, scopes=self.scopes, redirect_uri=redirect_uri)
        url, _ = sess.create_authorization_url(
            self.oauth.authorization_url,
            state=self.state,
            code_verifier=self.verifier if self.oauth.pkce else None,
            **self.oauth.authorize_params,
            **oauth_client.resource_param(self.oauth),
        )
        return url

    # -- page callbacks (run on the page's thread) ------------------------------

    def _on_client_form(self, values: dict[str, str]) -> str:
        self.client = client_from_form(self.provider, self.vault, values, source="form")
        return self.authorize_url(self.page.redirect_uri)

    def _on_callback(self, query: dict[str, str]) -> str:
        if "error" in query:
            hint = ("approve the request in the browser to log in" if query["error"] == "access_denied"
                    else "check the client settings at the provider and the requested scopes")
            raise AuthServerError(query["error"], query.get("error_description"), hint)
        if not hmac.compare_digest(query.get("state", "").encode(), self.state.encode()):
            raise StateMismatch(
                "The login response does not belong to this login (state mismatch); nothing was stored.",
                f"start again with `authsome login {self.provider.name}`",
            )
        issuer = self.oauth.issuer
        if "iss" in query and issuer and query["iss"] != issuer:  # RFC 9207: a mix-up, or an attack
            raise StateMismatch(
                "The login response names another authorization server than the one this login went to "
                "(RFC 9207 `iss`); nothing was stored.",
                f"start again with `authsome login {self.provider.name}`; if it happens again, check the definition",
            )
        code = query.get("code")
        if not code:
            raise LoginError("The provider redirected back without an authorization code.",
                             f"start again with `authsome login {self.provider.name}`")
        self.result = self.exchange(code, self.page.redirect_uri)
        return f"authsome stored the {self.provider.display_name} connection '{self.opts.connection}'."

    def exchange(self, code: str, redirect_uri: str) -> Connection:
        assert self.client is not None
        sess = oauth_client.session(self.oauth, self.client, scopes=self.scopes, redirect_uri=redirect_uri)
        try:
            token = sess.fetch_token(
                self.oauth.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=self.verifier if self.oauth.pkce else None,
                **oauth_client.resource_param(self.oauth),
            )
        except OAuthError as exc:
            if exc.error in ("invalid_client", "unauthorized_client") and self.client.source != "dcr":
                raise oauth_client.server_error(exc, f"the client ID or secret was refused; {reset_hint(self.provider)}",
                                                client=self.client, secrets=(code, self.verifier)) from None
            raise oauth_client.server_error(exc, client=self.client, secrets=(code, self.verifier)) from None
        except Exception as exc:
            if isinstance(exc, LoginError):
                raise
            raise oauth_client.network_error(self.oauth.token_url, exc) from None
        g = oauth_client.granted(token, self.scopes, self.oauth)
        remember(self.provider, self.vault, self.client)  # it worked: kept for the next login and refreshes
        return oauth_client.new_connection(self.provider, self.opts.connection, g, flow=self.flow, base_url=self.opts.base_url)

    # -- the run ----------------------------------------------------------------

    def run(self) -> Connection:
        opts, ui = self.opts, self.ui
        if self.client is None and opts.no_browser and ui.can_prompt():
            self.client = prompt_client(self.provider, self.vault, ui, redirect_uri=f"http://127.0.0.1:{opts.port}/auth/callback/oauth")
        needs_form = self.client is None
        self.page = LoginPage(
            port=opts.port,
            title=f"Log in to {self.provider.display_name}",
            intro=(f"Enter the OAuth client of your {self.provider.display_name} app. The client secret is "
                   "optional for public clients." if uses_secret(self.provider) else
                   f"Enter the client ID of your {self.provider.display_name} app. No secret is needed: "
                   "with PKCE on a loopback redirect the app is a public client."),
            fields=client_fields(self.provider) if needs_form else None,
            on_submit=self._on_client_form if needs_form else None,
            on_callback=self._on_callback,
            show_redirect_uri=True,
            form_targets=(_origin(self.oauth.authorization_url or ""),),
        )
        with self.page:
            if not needs_form:
                self.page.start_url = self.authorize_url(self.page.redirect_uri)
            target = self.page.url if needs_form else self.page.start_url
            assert target
            opened = not opts.no_browser and ui.open_browser(target)
            if not opened:
                ui.show_url(target, "enter the client credentials" if needs_form else "log in")
                self._read_pasted()
            else:
                ui.notice(f"Opened the browser; waiting up to {int(opts.timeout)} s for the login to finish.")
            try:
                self.page.wait(opts.timeout)
            except LoginTimeout as exc:
                exc.hint = f"{exc.hint}; if the provider refused the client, {reset_hint(self.provider)}"
                raise
        assert self.result is not None
        return self.result

    def _read_pasted(self) -> None:
        lines = self.ui.pasted_lines()
        if lines is None:
            return
        page, ui = self.page, self.ui

        def reader() -> None:
            for line in lines:
                if page.done:
                    return
                if line.strip() and not page.complete_with_redirect(line):
                    ui.notice("That is not the redirect URL (it starts with the callback address); paste it again.")

        threading.Thread(target=reader, name="authsome-paste", daemon=True).start()

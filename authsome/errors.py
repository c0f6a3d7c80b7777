"""The exception tree and the exit-code table.

Services raise these and never print. `authsome.cli.main` is the only place
that turns them into `error: ...` / `hint: ...` lines and an exit status.
Messages are built from names (provider, connection, path, field), never
from secret values.
"""

from __future__ import annotations

import re
from enum import IntEnum


_PIECES = re.compile(r"[-_.:/=+@*]")


def secret_like(value: str) -> bool:
    """Whether a value the user typed may be a pasted secret, and so is not to be shown.

    Names, hosts and addresses are short pieces between separators; a secret
    has a long run of characters, or a piece of eight or more that mixes
    letters and digits, or cases.
    """
    if len(value) > 64 or not value.isprintable():
        return True
    return any(len(p) >= 16 or (len(p) >= 8 and (re.search(r"[A-Za-z]", p) and re.search(r"[0-9]", p)
                                                  or re.search(r"[a-z]", p) and re.search(r"[A-Z]", p)))
               for p in _PIECES.split(value))


def given(value: str) -> str:
    """A value the user typed, as an error shows it: quoted, or withheld when it may be a secret."""
    return "(value not shown)" if secret_like(value) else f"'{value}'"


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    PROVIDER = 3
    CREDENTIAL = 4
    VAULT = 5
    LOGIN = 6
    PROXY = 7
    INTERRUPTED = 130


class AuthsomeError(Exception):
    """Base class: a one-sentence message, an optional hint, a short code."""

    exit_code: ExitCode = ExitCode.ERROR
    code: str = "error"

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        out = {"error": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class Terminated(AuthsomeError):
    """A signal (SIGTERM, SIGHUP, ...) asked authsome to stop before the command ran.

    Built with `by_signal`; the constructor keeps Exception's own (a message),
    which code such as `enum` relies on when it re-creates an exception.
    """

    code = "terminated"

    @classmethod
    def by_signal(cls, signum: int) -> Terminated:
        import signal

        exc = cls(f"Stopped by {signal.Signals(signum).name} before the command started.")
        exc.exit_code = 128 + signum  # as a shell reports a process killed by that signal
        return exc


class UsageError(AuthsomeError):
    exit_code = ExitCode.USAGE
    code = "usage"


class ProviderError(AuthsomeError):
    exit_code = ExitCode.PROVIDER
    code = "provider_error"


class ProviderNotFound(ProviderError):
    code = "provider_not_found"

    def __init__(self, name: str):
        super().__init__(f"No provider named {given(name)}.", "run `authsome list` to see the providers")
        self.name = name


class DefinitionChanged(ProviderError):
    """A custom definition now sends stored credentials somewhere the user has not confirmed."""

    code = "definition_changed"


class DefinitionUnconfirmed(ProviderError):
    """A custom definition nobody confirmed (a file written into the home) is about to get a first credential."""

    code = "definition_unconfirmed"


class ProviderInvalid(ProviderError):
    """A definition file that does not validate: which file, which field, why."""

    code = "provider_invalid"

    def __init__(self, path: str, field: str, reason: str):
        super().__init__(
            f"Provider file {path} is invalid at '{field}': {reason}",
            "fix the file or remove it with `authsome remove NAME`",
        )
        self.path = path
        self.field = field
        self.reason = reason

    def to_dict(self) -> dict:
        return {**super().to_dict(), "path": self.path, "field": self.field, "reason": self.reason}


class CredentialError(AuthsomeError):
    exit_code = ExitCode.CREDENTIAL
    code = "credential_error"


class NotConnected(CredentialError):
    code = "not_connected"

    def __init__(self, provider: str, connection: str = "default"):
        suffix = "" if connection == "default" else f" --connection {'NAME' if secret_like(connection) else connection}"
        super().__init__(
            f"Provider '{provider}' has no connection {given(connection)}.",
            f"run `authsome login {provider}{suffix}`",
        )


class NoDefaultConnection(NotConnected):
    """Only named connections exist, and none is the default."""

    code = "no_default_connection"

    def __init__(self, provider: str, names: list[str]):
        CredentialError.__init__(
            self,
            f"Provider '{provider}' has no default connection, only: {', '.join(names)}.",
            f"name one with --connection {names[0]}, or make it the default: `authsome default {provider} {names[0]}`",
        )


class HandedToCI(CredentialError):
    """The connection was exported to a CI bundle with its refresh token; this machine must not use it."""

    code = "handed_to_ci"

    def __init__(self, provider: str, connection: str):
        CredentialError.__init__(
            self,
            f"Connection '{connection}' of '{provider}' was handed to CI (`authsome ci export`): its refresh token "
            "lives in the bundle now, and using it here too would fork the grant.",
            f"use another connection here, or log it in again: authsome login {provider} --connection {connection} --force",
        )


class TokenExpired(CredentialError):
    code = "expired"


class ConnectionInvalid(CredentialError):
    code = "invalid"


class VaultError(AuthsomeError):
    exit_code = ExitCode.VAULT
    code = "vault_error"


class WrongKey(VaultError):
    code = "wrong_key"


class VaultCorrupt(VaultError):
    code = "vault_corrupt"


class KeyMissing(VaultError):
    """Sealed records exist, and no master key was found to open them."""

    code = "key_missing"


class KeyInvalid(VaultError):
    """A master key was given (the environment, the keyring, the key file) but is no key."""

    code = "key_invalid"


class VaultLocked(VaultError):
    code = "vault_locked"


class StoreUnavailable(VaultError):
    """The shared store cannot be reached or used right now; nothing was changed."""

    code = "store_unavailable"


class StoreNotReady(VaultError):
    """The shared store has no tables yet (or newer ones than this authsome knows)."""

    code = "store_not_ready"


class LoginError(AuthsomeError):
    exit_code = ExitCode.LOGIN
    code = "login_error"


class Unreachable(LoginError):
    """The authorization server could not be reached or the connection broke.

    `transient` is false for a certificate failure, which trying again cannot fix.
    """

    code = "unreachable"

    def __init__(self, message: str, hint: str | None = None, *, transient: bool = True):
        super().__init__(message, hint)
        self.transient = transient


class StateMismatch(LoginError):
    code = "state_mismatch"


class AuthServerError(LoginError):
    """The authorization server answered with an OAuth error."""

    code = "auth_server_error"

    def __init__(self, error: str, description: str | None = None, hint: str | None = None):
        text = f"The authorization server refused: {error}"
        if description:
            text += f" ({description})"
        super().__init__(text + ".", hint)
        self.error = error
        self.description = description


class NeedsInteraction(LoginError):
    code = "needs_interaction"


class LoginTimeout(LoginError):
    code = "login_timeout"


class CommandNotStarted(AuthsomeError):
    """`authsome run` could not start the command: exits as a shell would (127 not found, 126 not executable)."""

    code = "command_not_started"

    @classmethod
    def not_found(cls, command: str) -> CommandNotStarted:
        exc = cls(f"Command not found: {command}.", "check the command after `--` (and PATH)")
        exc.exit_code = 127
        return exc

    @classmethod
    def not_executable(cls, command: str, why: str, hint: str) -> CommandNotStarted:
        exc = cls(f"Cannot execute {command}: {why}.", hint)
        exc.exit_code = 126
        return exc


class ProxyError(AuthsomeError):
    exit_code = ExitCode.PROXY
    code = "proxy_error"

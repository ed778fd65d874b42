"""Where secrets come from, in a fixed order, and never from the config file.

Order: command-line flag > ``CTWA_*`` environment variable > OS keyring > hidden prompt (only
when stdin is a terminal). Every keyring call runs under a timeout in a worker thread and every
keyring error is caught, because a missing backend, a locked keyring or a hung D-Bus daemon must
not freeze or crash a CLI: it just means "not found here", said in ``profile show``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from ctwa.infra import envvars
from ctwa.infra.deadline import Late, call_within
from ctwa.infra.errors import ConfigError
from ctwa.infra.masking import register_secret

KEYRING_SERVICE = "ctwa"
DEFAULT_KEYRING_TIMEOUT = 3.0

T = TypeVar("T")


class SecretName(str, Enum):
    """The secrets ctwa knows; the value is the keyring key suffix and the CLI word."""

    PASSWORD = "password"
    TOKEN = "token"
    PASSCODE = "passcode"
    IMPORT_TOKEN = "import-token"
    IMPORT_PASSWORD = "import-password"

    @property
    def env_var(self) -> str:
        return _ENV_VARS[self]

    @property
    def flag(self) -> str:
        """The option that gives it: import-templates' own --token and --password."""
        return "--" + self.value.removeprefix("import-")


_ENV_VARS = {
    SecretName.PASSWORD: envvars.PASSWORD,
    SecretName.TOKEN: envvars.TOKEN,
    SecretName.PASSCODE: envvars.PASSCODE,
    SecretName.IMPORT_TOKEN: envvars.IMPORT_TOKEN,
    SecretName.IMPORT_PASSWORD: "CTWA_IMPORT_PASSWORD",
}


class Source(str, Enum):
    FLAG = "flag"
    ENV = "environment"
    KEYRING = "keyring"
    PROMPT = "prompt"
    NONE = "not set"


@dataclass(frozen=True)
class ResolvedSecret:
    value: str | None
    source: Source
    note: str | None = None  # why the keyring did not answer, when it did not

    def __repr__(self) -> str:  # a secret must not leak through a debugger or a log of objects
        shown = "****" if self.value else None
        return f"ResolvedSecret(value={shown!r}, source={self.source.value!r})"


class KeyringUnavailable(Exception):
    """The keyring could not be asked: no backend, an error, or no answer in time."""


def _keyring_timeout() -> float:
    try:
        value = float(os.environ.get(envvars.KEYRING_TIMEOUT, DEFAULT_KEYRING_TIMEOUT))
    except ValueError:
        return DEFAULT_KEYRING_TIMEOUT
    # nan, inf and negatives would hang on a locked keyring or never ask it
    return value if math.isfinite(value) and value > 0 else DEFAULT_KEYRING_TIMEOUT


#: Set once a keyring call timed out: a keyring that hung once in this run is not asked again
#: (profile show asks for five secrets; it waits one timeout, not five).
_HUNG: list[float] = []


def _call_with_timeout(func: Callable[[], T], timeout: float) -> T:
    """Run a keyring call in a daemon thread; a hung backend is abandoned, not waited on."""
    if _HUNG:
        raise KeyringUnavailable(f"the OS keyring did not answer within {_HUNG[0]:g} s")
    try:
        return call_within(func, timeout, name="ctwa-keyring")
    except Late:
        _HUNG.append(timeout)
        raise KeyringUnavailable(f"the OS keyring did not answer within {timeout:g} s") from None
    except Exception as exc:
        raise KeyringUnavailable(_describe_keyring_error(exc)) from exc


def _describe_keyring_error(error: BaseException) -> str:
    if isinstance(error, KeyringUnavailable):
        return str(error)
    if type(error).__name__ == "NoKeyringError":
        return "no OS keyring is available on this machine"
    first = (str(error).splitlines() or [""])[0][:120]
    return f"the OS keyring failed: {type(error).__name__}" + (f": {first}" if first else "")


def keyring_key(profile: str, name: SecretName) -> str:
    return f"{profile}:{name.value}"


class SecretStore:
    """Reads and writes ctwa's keyring entries (service ``ctwa``, one per profile and secret)."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = _keyring_timeout() if timeout is None else timeout

    @property
    def disabled(self) -> bool:
        return os.environ.get(envvars.NO_KEYRING, "").lower() in {"1", "true", "yes"}

    def get(self, profile: str, name: SecretName) -> str | None:
        if self.disabled:
            raise KeyringUnavailable(f"the keyring is turned off by {envvars.NO_KEYRING}")

        def read() -> str | None:
            import keyring

            return keyring.get_password(KEYRING_SERVICE, keyring_key(profile, name))

        return _call_with_timeout(read, self.timeout)

    def set(self, profile: str, name: SecretName, value: str) -> None:
        if self.disabled:
            raise KeyringUnavailable(f"the keyring is turned off by {envvars.NO_KEYRING}")

        def write() -> str | None:
            import keyring

            keyring.set_password(KEYRING_SERVICE, keyring_key(profile, name), value)
            if keyring.get_password(KEYRING_SERVICE, keyring_key(profile, name)) != value:
                backend = type(keyring.get_keyring())
                raise KeyringUnavailable(f"the keyring backend {backend.__module__}."
                                         f"{backend.__qualname__} did not keep it (a backend "
                                         "that stores nothing, such as the null keyring)")
            return None

        _call_with_timeout(write, self.timeout)

    def delete(self, profile: str, name: SecretName) -> bool:
        """Remove an entry; False when there was none or the keyring cannot be reached."""

        def remove() -> None:
            import keyring

            keyring.delete_password(KEYRING_SERVICE, keyring_key(profile, name))

        try:
            _call_with_timeout(remove, self.timeout)
        except KeyringUnavailable:
            return False
        return True


def _prompt_hidden(label: str) -> str:
    import getpass

    return getpass.getpass(f"{label}: ")


@dataclass
class SecretResolver:
    """Resolves secrets for one profile; injectable parts keep it testable without a TTY."""

    profile: str | None
    store: SecretStore
    interactive: bool | None = None
    prompt: Callable[[str], str] = _prompt_hidden

    def resolve(self, name: SecretName, flag_value: str | None = None) -> ResolvedSecret:
        """Find a secret without failing; ``source`` says where it came from, or ``NONE``."""
        found = self._find(name, flag_value)
        register_secret(found.value)
        return found

    def require(self, name: SecretName, flag_value: str | None = None) -> ResolvedSecret:
        """Find a secret or fail with exit 4 and the exact command that would set it."""
        found = self.resolve(name, flag_value)
        if found.value:
            return found
        if self._is_interactive():
            value = self.prompt(f"{name.value} for profile {self.profile or '(none)'}")
            if value:
                register_secret(value)
                return ResolvedSecret(value, Source.PROMPT)
        raise ConfigError(f"no {name.value} given", hint=self.how_to_set(name, found.note))

    def how_to_set(self, name: SecretName, note: str | None = None) -> str:
        ways = [f"pass {name.flag}", f"export {name.env_var}=..."]
        if self.profile:
            ways.append(f"run `ctwa profile set-secret {self.profile} {name.value}`")
        text = ", or ".join(ways)
        return f"{text}; {note}" if note else text

    def _find(self, name: SecretName, flag_value: str | None) -> ResolvedSecret:
        # surrounding whitespace is never part of a secret: a CR from a Windows-edited .env
        # file would otherwise be sent, and shown in the error the server answers with
        if flag_value and flag_value.strip():
            return ResolvedSecret(flag_value.strip(), Source.FLAG)
        env_value = (os.environ.get(name.env_var) or "").strip()
        if env_value:
            return ResolvedSecret(env_value, Source.ENV)
        if not self.profile:
            return ResolvedSecret(None, Source.NONE)
        try:
            stored = self.store.get(self.profile, name)
        except KeyringUnavailable as exc:
            return ResolvedSecret(None, Source.NONE, note=str(exc))
        if stored and stored.strip():
            return ResolvedSecret(stored.strip(), Source.KEYRING)
        return ResolvedSecret(None, Source.NONE)

    def _is_interactive(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        return sys.stdin is not None and sys.stdin.isatty()

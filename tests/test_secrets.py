"""Secret resolution order and every keyring failure mode."""

from __future__ import annotations

import threading
import time

import keyring
import pytest
from keyring.backend import KeyringBackend

from ctwa.infra.errors import ConfigError, ExitCode
from ctwa.infra.masking import scrub
from ctwa.infra.secrets import (
    KeyringUnavailable,
    SecretName,
    SecretResolver,
    SecretStore,
    Source,
)


def resolver(profile: str | None = "acme", **kw) -> SecretResolver:
    return SecretResolver(profile, SecretStore(timeout=kw.pop("timeout", 3.0)),
                          interactive=kw.pop("interactive", False), **kw)


def test_flag_beats_environment_beats_keyring(memory_keyring, monkeypatch) -> None:
    SecretStore().set("acme", SecretName.PASSWORD, "from-keyring")
    monkeypatch.setenv("CTWA_PASSWORD", "from-env")
    assert resolver().resolve(SecretName.PASSWORD, "from-flag").source is Source.FLAG
    found = resolver().resolve(SecretName.PASSWORD)
    assert (found.value, found.source) == ("from-env", Source.ENV)
    monkeypatch.delenv("CTWA_PASSWORD")
    found = resolver().resolve(SecretName.PASSWORD)
    assert (found.value, found.source) == ("from-keyring", Source.KEYRING)


def test_keyring_entries_are_per_profile_and_secret(memory_keyring) -> None:
    SecretStore().set("acme", SecretName.PASSCODE, "pc-1")
    assert ("ctwa", "acme:passcode") in memory_keyring.store
    assert resolver("other").resolve(SecretName.PASSCODE).value is None
    assert resolver().resolve(SecretName.TOKEN).value is None


def test_each_secret_has_its_own_environment_variable(monkeypatch) -> None:
    expected = {SecretName.PASSWORD: "CTWA_PASSWORD", SecretName.TOKEN: "CTWA_TOKEN",
                SecretName.PASSCODE: "CTWA_PASSCODE", SecretName.IMPORT_TOKEN: "CTWA_IMPORT_TOKEN"}
    for name, var in expected.items():
        monkeypatch.setenv(var, f"value-of-{var}")
        assert resolver(None).resolve(name).value == f"value-of-{var}"


def test_prompt_is_used_only_when_interactive() -> None:
    asked: list[str] = []

    def prompt(label: str) -> str:
        asked.append(label)
        return "typed-secret"

    found = resolver(interactive=True, prompt=prompt).require(SecretName.TOKEN)
    assert (found.value, found.source) == ("typed-secret", Source.PROMPT)
    assert asked == ["token for profile acme"]
    with pytest.raises(ConfigError):
        resolver(interactive=False, prompt=prompt).require(SecretName.TOKEN)
    assert len(asked) == 1


def test_missing_secret_exits_4_with_the_commands_that_set_it() -> None:
    with pytest.raises(ConfigError) as info:
        resolver().require(SecretName.PASSCODE)
    assert info.value.exit_code == ExitCode.CONFIG
    text = str(info.value)
    assert "--passcode" in text and "export CTWA_PASSCODE=" in text
    assert "ctwa profile set-secret acme passcode" in text


class BrokenKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service, username):
        raise RuntimeError("org.freedesktop.secrets: the keyring is locked")

    def set_password(self, service, username, password):
        raise RuntimeError("locked")

    def delete_password(self, service, username):
        raise RuntimeError("locked")


class HangingKeyring(BrokenKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service, username):
        self.release.wait(10)
        return "too-late"


def test_no_backend_is_reported_not_raised(monkeypatch) -> None:
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    found = resolver().resolve(SecretName.PASSWORD)
    assert found.source is Source.NONE
    assert found.note == "no OS keyring is available on this machine"
    with pytest.raises(ConfigError) as info:
        resolver().require(SecretName.PASSWORD)
    assert "no OS keyring" in str(info.value)


def test_backend_error_is_caught() -> None:
    keyring.set_keyring(BrokenKeyring())
    found = resolver().resolve(SecretName.PASSWORD)
    assert found.value is None and "locked" in (found.note or "")
    with pytest.raises(KeyringUnavailable):
        SecretStore().set("acme", SecretName.PASSWORD, "x")
    assert SecretStore().delete("acme", SecretName.PASSWORD) is False


def test_hanging_keyring_times_out_quickly() -> None:
    backend = HangingKeyring()
    keyring.set_keyring(backend)
    started = time.monotonic()
    found = resolver(timeout=0.2).resolve(SecretName.PASSWORD)
    elapsed = time.monotonic() - started
    backend.release.set()
    assert found.value is None and "did not answer within 0.2 s" in (found.note or "")
    assert elapsed < 2


def test_keyring_can_be_switched_off(monkeypatch, memory_keyring) -> None:
    SecretStore().set("acme", SecretName.PASSWORD, "stored")
    monkeypatch.setenv("CTWA_NO_KEYRING", "1")
    found = resolver().resolve(SecretName.PASSWORD)
    assert found.value is None and "CTWA_NO_KEYRING" in (found.note or "")


def test_resolved_secrets_are_registered_for_masking(monkeypatch) -> None:
    monkeypatch.setenv("CTWA_TOKEN", "tok-CANARY-91bd")
    found = resolver().resolve(SecretName.TOKEN)
    assert "tok-CANARY-91bd" not in repr(found)
    assert scrub("server said: bad token tok-CANARY-91bd") == "server said: bad token ****"


def test_profile_show_with_a_hung_keyring_waits_one_timeout(cli) -> None:
    cli("profile", "add", "acme", "--endpoint", "https://bsp.example/x", "--use")
    backend = HangingKeyring()
    keyring.set_keyring(backend)
    started = time.monotonic()
    result = cli("profile", "show", env={"CTWA_KEYRING_TIMEOUT": "0.5"})
    elapsed = time.monotonic() - started
    backend.release.set()
    assert result.exit_code == 0, result.stderr
    assert elapsed < 1.5  # five secrets asked, one timeout waited
    assert "did not answer within 0.5 s" in result.stdout

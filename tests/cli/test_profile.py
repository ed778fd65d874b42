"""``ctwa profile``: the file never holds a secret; show says where each secret comes from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring
import pytest

from ctwa.infra.errors import ExitCode


def config_text() -> str:
    return (Path(os.environ["CTWA_CONFIG_DIR"]) / "config.yaml").read_text()


def add_acme(cli, *extra: str):
    return cli("profile", "add", "acme", "--endpoint", "https://bsp.example/send", "--auth",
               "basic", "--username", "bob", "--account-id", "ACC-1", "--region", "in1", *extra)


def test_add_then_show_and_list(cli) -> None:
    result = add_acme(cli)
    assert result.exit_code == 0, result.stderr
    assert "ctwa profile set-secret acme password" in result.stderr
    shown = json.loads(cli("--json", "profile", "show").stdout)
    assert shown["profile"] == "acme"
    assert shown["settings"]["endpoint"] == "https://bsp.example/send"
    listed = json.loads(cli("--json", "profile", "list").stdout)
    assert listed["current"] == "acme" and "acme" in listed["profiles"]


def test_add_updates_only_given_fields(cli) -> None:
    add_acme(cli)
    cli("profile", "add", "acme", "--waba", "919000000000")
    settings = json.loads(cli("--json", "profile", "show", "acme").stdout)["settings"]
    assert settings["waba_number"] == "919000000000" and settings["username"] == "bob"


def test_bad_region_is_a_usage_error(cli) -> None:
    result = cli("profile", "add", "x", "--region", "mars")
    assert result.exit_code == ExitCode.USAGE and "unknown region 'mars'" in result.stderr


def test_set_secret_goes_to_the_keyring_never_the_file(cli, memory_keyring) -> None:
    add_acme(cli)
    result = cli("profile", "set-secret", "acme", "password", "--stdin",
                 input="pw-CANARY-7f3a\n")
    assert result.exit_code == 0, result.stderr
    assert memory_keyring.store[("ctwa", "acme:password")] == "pw-CANARY-7f3a"
    assert "pw-CANARY-7f3a" not in config_text()
    shown = json.loads(cli("--json", "profile", "show").stdout)
    assert shown["secrets"]["password"] == {"set": True, "source": "keyring", "value": "****",
                                            "note": None}
    human = cli("profile", "show")
    assert "****  from keyring" in human.stdout


def test_show_reports_environment_as_the_source(cli) -> None:
    add_acme(cli)
    shown = json.loads(cli("--json", "profile", "show",
                           env={"CTWA_PASSCODE": "pc-CANARY-55e0"}).stdout)
    assert shown["secrets"]["passcode"]["source"] == "environment"


def test_set_secret_without_keyring_says_what_to_do(cli) -> None:
    from keyring.backends import fail

    add_acme(cli)
    keyring.set_keyring(fail.Keyring())
    result = cli("profile", "set-secret", "acme", "passcode", "--stdin",
                 input="pc-CANARY-55e0\n")
    assert result.exit_code == ExitCode.CONFIG
    assert "export CTWA_PASSCODE=" in result.stderr


def test_set_secret_for_unknown_profile_or_secret(cli) -> None:
    assert cli("profile", "set-secret", "ghost", "password", "--stdin",
               input="x\n").exit_code == ExitCode.CONFIG
    add_acme(cli)
    result = cli("profile", "set-secret", "acme", "pin", "--stdin", input="x\n")
    assert result.exit_code == ExitCode.USAGE and "unknown secret 'pin'" in result.stderr


def test_use_and_remove(cli, memory_keyring) -> None:
    add_acme(cli)
    cli("profile", "add", "beta", "--endpoint", "https://b.example")
    assert cli("profile", "use", "beta").exit_code == 0
    assert json.loads(cli("--json", "profile", "list").stdout)["current"] == "beta"
    cli("profile", "set-secret", "beta", "token", "--stdin", input="tok-CANARY-91bd\n")
    assert cli("profile", "remove", "beta").exit_code == 0
    assert ("ctwa", "beta:token") not in memory_keyring.store
    assert json.loads(cli("--json", "profile", "list").stdout)["current"] == "acme"


def test_unknown_profile_option_exits_4(cli) -> None:
    result = cli("--profile", "ghost", "profile", "show")
    assert result.exit_code == ExitCode.CONFIG
    assert "no profile named 'ghost'" in result.stderr


def test_broken_config_file_is_one_clear_line(cli) -> None:
    path = Path(os.environ["CTWA_CONFIG_DIR"])
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("profiles: [oops\n")
    result = cli("profile", "list")
    assert result.exit_code == ExitCode.CONFIG
    assert "config.yaml: cannot read the ctwa config" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_keyring_that_keeps_nothing_is_detected(cli) -> None:
    import keyring
    from keyring.backends.null import Keyring as NullKeyring

    cli("profile", "add", "acme", "--endpoint", "https://bsp.example/x")
    previous = keyring.get_keyring()
    keyring.set_keyring(NullKeyring())
    try:
        result = cli("profile", "set-secret", "acme", "password", "--stdin",
                     input="pw-CANARY-7f3a\r\n")
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == ExitCode.CONFIG
    assert "the password was not stored" in result.stderr and "null" in result.stderr
    assert "export CTWA_PASSWORD=" in result.stderr


def test_show_says_not_set_once(cli) -> None:
    cli("profile", "add", "acme", "--endpoint", "https://bsp.example/x", "--use")
    shown = cli("profile", "show")
    assert "(not set) from not set" not in shown.stdout and "(not set)" in shown.stdout


def test_a_secret_read_from_stdin_loses_its_line_ending(cli, memory_keyring) -> None:
    cli("profile", "add", "acme", "--endpoint", "https://bsp.example/x")
    cli("profile", "set-secret", "acme", "password", "--stdin", input="  pw-CANARY-7f3a\r\n")
    assert memory_keyring.store[("ctwa", "acme:password")] == "pw-CANARY-7f3a"


@pytest.mark.parametrize(("args", "words"), [
    (("--endpoint", "notaurl"), "endpoint: 'notaurl' is not an http(s) URL"),
    (("--waba", "abc"), "waba_number: 'abc' is not a phone number"),
    (("--region", "mars"), "region: unknown region 'mars'"),
])
def test_profile_values_are_checked_in_plain_words(cli, args, words) -> None:
    result = cli("profile", "add", "x", *args)
    assert result.exit_code == ExitCode.USAGE and words in result.stderr
    assert "Value error" not in result.stderr


def test_a_broken_config_file_is_one_plain_line(cli, tmp_path) -> None:
    import os

    path = tmp_path / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("profiles:\n  a:\n    endpoint: 5\n")
    assert os.environ["CTWA_CONFIG_DIR"] == str(path.parent)
    result = cli("profile", "list")
    assert "profiles.a.endpoint: must be a string, got 5" in result.stderr
    assert "validation error" not in result.stderr


def test_a_password_in_an_endpoint_url_is_refused_never_stored(cli, tmp_path) -> None:
    result = cli("profile", "add", "x", "--endpoint",
                 "https://bob:pw-CANARY-7f3a@bsp.example/x")
    assert result.exit_code == ExitCode.USAGE and "set-secret" in result.stderr
    assert not (tmp_path / "config" / "config.yaml").exists() or "CANARY" not in (
        tmp_path / "config" / "config.yaml").read_text()

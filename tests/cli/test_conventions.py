"""The conventions every command keeps, checked by walking the whole Typer app: global
options before or after the command, plain help (no Python types, global options and exit
codes listed), and ctwa --help's summaries whole."""

from __future__ import annotations

import re

import pytest
import typer.main

from ctwa.cli.app import app, hoist_globals

PYTHON_WORDS = re.compile(r"<(str|int|float|path|int range|float range|list\[[^\]]*\])>|"
                          r"\{[A-Z_]+\}")


def leaves() -> list[list[str]]:
    root = typer.main.get_command(app)
    found = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        if subs:
            found += [[name, sub] for sub in subs]
        else:
            found.append([name])
    return found


COMMANDS = leaves()


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"send-template", "callback convert", "templates list", "profile add",
            "upload-users", "sandbox", "demo", "lint", "schema"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_is_plain_and_lists_globals_and_exit_codes(cli, command) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert not PYTHON_WORDS.search(text), PYTHON_WORDS.search(text)
    assert "Global options, before or after the command: --json" in text
    assert "Exit codes: 0 all good" in text


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("globals_", [["--json"], ["-v", "--debug"], ["-p", "someone"],
                                      ["--profile=someone", "--json"]])
def test_global_options_parse_after_the_command(cli, command, globals_) -> None:
    """Given after the sub-command (and after --help, which then answers): accepted, not
    'No such option'."""
    result = cli(*command, *globals_, "--help")
    assert result.exit_code == 0 and "No such option" not in result.stderr


def test_hoisting_keeps_everything_else_in_order() -> None:
    assert hoist_globals(["upload-users", "users.csv", "--json", "-p", "acme", "--dry-run"]) \
        == ["--json", "-p", "acme", "upload-users", "users.csv", "--dry-run"]
    assert hoist_globals(["lint", "--", "--json"]) == ["lint", "--", "--json"]


def test_the_readmes_own_example_works(cli, tmp_path) -> None:
    from tests.conftest import EXAMPLES

    users = tmp_path / "users.csv"
    users.write_bytes((EXAMPLES / "users.csv").read_bytes())
    result = cli("upload-users", str(users), "--dry-run", "--json")
    assert result.stdout.lstrip().startswith("{") and '"rows_read": 12' in result.stdout


def test_root_help_shows_summaries_whole(cli) -> None:
    text = cli("--help").stdout
    assert "..." not in text.split("Commands:")[1]
    assert "and turn Meta's webhooks into them (convert)." in " ".join(text.split())
    group = " ".join(cli("callback", "--help").stdout.split())
    assert "Print the CleverTap callbacks that Meta's WhatsApp Cloud API webhooks correspond " \
        "to." in group

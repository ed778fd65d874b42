"""Every command ctwa prints as advice runs as printed, and every option it names exists.

Two nets: the source (every ``--option`` written anywhere in ctwa's strings is an option of
some ctwa command, or one of Locust's where ctwa prints a Locust command line), and each
command's own output in the situations that print advice: every ``ctwa ...`` line or
backticked command in it parses against the real command tree, and every ``pass --X`` names
an option of the command that printed it (or a global one)."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from ctwa.cli.app import GLOBAL_FLAGS, GLOBAL_VALUED, app, hoist_globals
from tests.conftest import EXAMPLES

ROOT = Path(__file__).parent.parent.parent
TREE = typer.main.get_command(app)
GLOBALS = set(GLOBAL_FLAGS | GLOBAL_VALUED) | {"--help", "--version"}
#: Options of Locust's own command line, printed by `load export` and the locust files.
LOCUST = {"--headless", "--processes", "--master", "--master-host", "--worker",
          "--expect-workers", "--ctwa-json", "--ctwa-report", "--stop-timeout"}
#: Options of PostgreSQL's pg_config and initdb, which the bridge's throw-away test cluster runs.
INITDB = {"--bindir", "--locale", "--no-sync"}
#: Option-like words that are no option: former spellings kept only to mask them in argv.
NOT_OPTIONS = {"--import-token": "ctwa/report/summary.py masks it in a kept command line"}


def _options(command: Any) -> set[str]:
    found = set()
    for param in command.params:
        found.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    for sub in getattr(command, "commands", {}).values():
        found |= _options(sub)
    return found


def test_every_option_named_in_ctwas_strings_exists() -> None:
    known = _options(TREE) | GLOBALS | LOCUST | INITDB
    unknown: dict[str, set[str]] = {}
    for path in sorted((ROOT / "ctwa").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", node.value):
                    if option not in known and option not in NOT_OPTIONS:
                        unknown.setdefault(option, set()).add(str(path.relative_to(ROOT)))
    assert unknown == {}


def _command(words: list[str]) -> tuple[Any, list[str], list[str]]:
    """The command a ``ctwa ...`` line names, its path and the arguments left for it."""
    rest = hoist_globals(words)
    while rest and (rest[0] in GLOBAL_FLAGS or rest[0] in GLOBAL_VALUED
                    or rest[0].startswith(("--profile=", "--store="))):
        rest = rest[2:] if rest[0] in GLOBAL_VALUED else rest[1:]
    command: Any = TREE
    path: list[str] = []
    ctx = TREE.context_class(TREE)
    while hasattr(command, "commands") and rest:
        sub = command.get_command(ctx, rest[0])
        if sub is None and getattr(command, "invoke_without_command", False):
            break  # a group that runs itself (certify), with options of its own
        assert sub is not None, f"no command {' '.join([*path, rest[0]])!r}"
        path.append(rest.pop(0))
        command = sub
    return command, path, rest


PLACEHOLDER = re.compile(r"^(\.\.\.|[A-Z][A-Z0-9_,.|=-]*(\.\.\.)?|<[^>]+>)$")


def check_command_line(line: str) -> None:
    """A printed command: its commands exist and its options are theirs; without
    placeholders (NAME, FILE, ...), it also parses whole, as click would run it."""
    words = shlex.split(line)
    assert words[0] == "ctwa", line
    command, path, rest = _command(words[1:])
    assert path, f"{line!r} names no command"
    options = _options(command) | GLOBALS
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"{line!r}: {word} is no option of " \
                f"ctwa {' '.join(path)}"
    if any(PLACEHOLDER.match(w) for w in rest):
        return
    try:
        command.make_context(" ".join(path), list(rest))
    except Exception as exc:  # click's UsageError (typer vendors click)
        raise AssertionError(f"{line!r} does not run: {exc}") from None


COMMAND_IN_TEXT = re.compile(r"`(ctwa [^`]+)`|(?:run|with|as it is): (ctwa .+?)(?:\)|$)", re.M)
PASS_OPTION = re.compile(r"\b(?:pass|give|add|with|check|use) (--[a-z][a-z0-9-]*)")


def check_advice(command: list[str], text: str) -> int:
    """Every hint in a command's output; returns how many there were."""
    found = 0
    for match in COMMAND_IN_TEXT.finditer(text):
        check_command_line((match.group(1) or match.group(2)).strip())
        found += 1
    for line in re.findall(r"^\s*(locust -f .+)$", text, re.M):
        for word in shlex.split(line):
            assert not word.startswith("--") or word in LOCUST, f"{line!r}: {word}"
        found += 1
    target, _, _ = _command(command)
    options = _options(target) | GLOBALS
    for option in PASS_OPTION.findall(text):
        assert option in options, f"{command[:2]}: advice names {option}, not an option " \
            f"of that command: {text!r}"
        found += 1
    return found


def test_the_checker_catches_what_a_new_user_hit() -> None:
    with pytest.raises(AssertionError, match="--import-token is no option"):
        check_command_line("ctwa import-templates --import-token x")
    with pytest.raises(AssertionError, match="not an option of that command"):
        check_advice(["import-templates"], "error: no token given (pass --import-token)")
    check_command_line("ctwa upload-users users.csv --region in1 --resume")
    check_command_line("ctwa profile add NAME --waba NUMBER")
    with pytest.raises(AssertionError, match="no command"):
        check_command_line("ctwa profiles list")


SITUATIONS = [
    # (what the user ran, extra setup) -> advice in its output
    ["send-template", "--template-file", str(EXAMPLES / "templates" / "lto.json"),
     "--to", "919000000001", "--var", "Asha"],
    ["send-template", "--sample", "lto"],
    ["send-freeform", "--text", "hi"],
    ["import-templates", "--url", "http://127.0.0.1:9/vendor", "--auth", "bearer"],
    ["upload-users", "USERS", "--dry-run"],
    ["upload-users", "USERS", "--resume", "--dry-run"],
    ["upload-users", "USERS", "--passcode", "x"],
    ["callback", "replay", "BROKEN"],
    ["trace", "--last"],
    ["trace"],
    ["report", "render", "nope", "--report", "x.html"],
    ["profile", "use", "nope"],
    ["profile", "set-secret", "acme", "passcode"],
    ["profile", "add", "acme", "--auth", "basic", "--username", "u"],
    ["load", "export", "--locust", "DIR", "send-template", "--sample", "lto", "--to",
     "919000000001", "--endpoint", "http://127.0.0.1:9/bsp"],
    ["bridge", "status", "--state", "MISSING"],
]


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: " ".join(s[:3]))
def test_the_advice_each_command_prints_runs_as_printed(cli, tmp_path, situation) -> None:
    users = tmp_path / "users.csv"
    users.write_text("identity,Phone\nu1,+14155550101\nu2,abc\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("events:\n  - status: sent\n    msgId: ''\n")
    (tmp_path / "file.json").write_text("{}")
    args = [{"USERS": str(users), "BROKEN": str(broken), "DIR": str(tmp_path / "lt"),
             "FILE": str(tmp_path / "file.json"),
             "MISSING": str(tmp_path / "missing.sqlite3")}.get(a, a) for a in situation]
    if args[0] == "profile" and args[1] != "add":
        cli("profile", "add", "acme", "--auth", "basic", "--username", "u")
    done = cli(*args)
    assert "Traceback" not in done.stderr
    text = done.stdout + "\n" + done.stderr
    assert check_advice(args, text) >= 1, text  # each situation gives advice


def test_the_demos_closing_commands_parse(capsys) -> None:
    from ctwa.cli.demo import _epilogue
    from ctwa.cli.output import Output

    _epilogue(Output())
    lines = [ln.strip() for ln in capsys.readouterr().err.splitlines()
             if ln.strip().startswith("ctwa ")]
    assert len(lines) >= 8
    for line in lines:
        check_command_line(line.split("  #")[0])


def test_the_advice_after_an_import_runs_as_printed(cli, tmp_path) -> None:
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings

    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False)) as box:
        done = cli("import-templates", "--url", box.urls()["vendor_templates"], "--token",
                   box.credentials()["vendor_token"])
    assert done.exit_code == 0, done.stderr
    assert check_advice(["import-templates"], done.stderr) >= 2
    assert cli("templates", "list", "--sendable").exit_code == 0

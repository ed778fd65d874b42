"""One place holds what every command needs: ctwa.cli.context. No other CLI module builds
the profiles file, the keyring or the store; the root callback makes one invocation per run
and every command reaches it through Typer's context."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import ctwa.cli

CLI = Path(ctwa.cli.__file__).parent
BUILT_ONLY_BY_THE_CONTEXT = {"ConfigStore", "SecretStore", "Store"}


def _constructed(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if name in BUILT_ONLY_BY_THE_CONTEXT:
                found.append((node.lineno, name))
    return found


def test_no_cli_module_but_the_context_builds_a_config_secret_or_data_store() -> None:
    found = [f"{path.name}:{line}: {name}(" for path in sorted(CLI.glob("*.py"))
             if path.name != "context.py"
             for line, name in _constructed(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []
    # the scan sees what it is for
    assert len(_constructed(ast.parse("ConfigStore().get(None)\nwith db.Store() as s: pass"))) == 2
    assert {name for _, name in _constructed(ast.parse((CLI / "context.py").read_text()))} \
        == BUILT_ONLY_BY_THE_CONTEXT


def test_no_command_reads_ctx_obj_but_through_the_accessor() -> None:
    found = [f"{path.name}:{node.lineno}" for path in sorted(CLI.glob("*.py"))
             if path.name not in ("context.py", "app.py")
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Attribute) and node.attr == "obj"]
    assert found == []


def test_the_root_callback_makes_one_invocation_that_commands_receive(cli, monkeypatch) -> None:
    from ctwa.cli import context

    made: list[context.Invocation] = []
    original = context.Invocation.__init__

    def counting(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(context.Invocation, "__init__", counting)
    done = cli("--json", "-p", "nosuch", "profile", "show")
    assert done.exit_code == 4, done.stderr  # the command used the invocation's -p
    assert "no profile named 'nosuch'" in done.stderr
    assert len(made) == 1 and made[0].profile_name == "nosuch" and made[0].out.json_mode
    assert cli("profile", "add", "acme", "--endpoint", "https://a.example/m").exit_code == 0
    made.clear()
    shown = cli("profile", "show", "--json")
    assert shown.exit_code == 0 and len(made) == 1


def test_the_invocation_is_lazy_and_follows_the_precedence(tmp_path, monkeypatch) -> None:
    from ctwa.cli.context import Invocation
    from ctwa.infra.config import Profile

    invocation = Invocation()
    assert invocation._config is None and invocation._secrets is None  # nothing read yet
    invocation.config.put("first", Profile(endpoint="https://a.example/m"))
    invocation.config.put("second", Profile(endpoint="https://b.example/m"))
    assert Invocation().profile()[0] == "first"  # the current profile
    monkeypatch.setenv("CTWA_PROFILE", "second")
    assert Invocation().profile()[0] == "second"  # the environment beats it
    assert Invocation(profile_name="first").profile()[0] == "first"  # -p beats both
    assert Invocation().profile("first")[1].endpoint == "https://a.example/m"


def test_the_store_is_opened_when_asked_and_read_only_for_readers(tmp_path,
                                                                   monkeypatch) -> None:
    from ctwa.cli.context import Invocation

    path = tmp_path / "store.sqlite3"
    monkeypatch.setenv("CTWA_STORE", str(path))
    invocation = Invocation()
    assert not path.exists()
    with invocation.store(readonly=True) as store:
        assert store.readonly
    assert not path.exists()  # a reader creates nothing
    with invocation.store() as store:
        assert not store.readonly
    assert path.exists() and os.environ["CTWA_STORE"] == str(path)

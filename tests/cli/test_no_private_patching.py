"""ctwa's help and option errors use only the public hooks of Typer and Click: no private
attribute of theirs is assigned, none of their functions is replaced, none of their private
modules is imported (the next Typer upgrade would break any of these silently)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ctwa

ROOT = Path(ctwa.__file__).parent
#: Attributes of Typer's parameters and modules ctwa once replaced to get plain help.
PATCHED_ONCE = {"display_type", "display_type_rich", "get_error_msg", "_usage_display_name",
                "make_metavar", "get_help_record", "get_usage_pieces"}
PRIVATE_MODULE = re.compile(r"\b(typer|click)\._\w+|from (typer|click)(\.\w+)* import _\w+|"
                            r"import (typer|click)\._")


def _sources() -> list[tuple[Path, str]]:
    return [(path, path.read_text(encoding="utf-8")) for path in sorted(ROOT.rglob("*.py"))]


def _assigned_attributes(tree: ast.AST) -> list[ast.Attribute]:
    found: list[ast.Attribute] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            found += [t for t in ast.walk(target) if isinstance(t, ast.Attribute)]
    return found


def _setattr_names(tree: ast.AST) -> list[str]:
    return [node.args[1].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "setattr" and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)]


def test_no_module_assigns_what_typer_renders_help_or_errors_with() -> None:
    found = []
    for path, text in _sources():
        tree = ast.parse(text)
        for attribute in _assigned_attributes(tree):
            if attribute.attr in PATCHED_ONCE:
                found.append(f"{path.relative_to(ROOT)}:{attribute.lineno}: "
                             f"{ast.unparse(attribute)} =")
        found += [f"{path.relative_to(ROOT)}: setattr(..., {name!r})"
                  for name in _setattr_names(tree) if name in PATCHED_ONCE]
    assert found == []


def test_no_module_using_typer_assigns_a_private_attribute_of_another_object() -> None:
    found = []
    for path, text in _sources():
        if not re.search(r"^\s*(import|from) (typer|click)\b", text, re.MULTILINE):
            continue
        for attribute in _assigned_attributes(ast.parse(text)):
            owner = attribute.value
            if attribute.attr.startswith("_") and not (
                    isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"{path.relative_to(ROOT)}:{attribute.lineno}: "
                             f"{ast.unparse(attribute)} =")
    assert found == []


def test_no_module_reaches_into_typers_or_clicks_private_modules() -> None:
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path, text in _sources()
             for match in PRIVATE_MODULE.finditer(text)]
    assert found == []


def test_the_scan_sees_the_patches_it_is_for() -> None:
    """The scans above catch the very lines they replace."""
    old = ("param._usage_display_name = lambda: usage\n"
           "param.display_type = lambda ctx: None\n"
           "from typer import _coercion\n"
           "_coercion.get_error_msg = error_message\n")
    tree = ast.parse(old)
    names = {a.attr for a in _assigned_attributes(tree)}
    assert {"_usage_display_name", "display_type", "get_error_msg"} <= names
    assert len(PRIVATE_MODULE.findall(old)) == 1


def test_numbers_are_refused_in_ctwas_words(cli) -> None:
    for args, words in (
            (["callback", "listen", "--port", "abc"], "'abc' must be a whole number"),
            (["callback", "listen", "--port", "70000"], "'70000' must be at most 65535"),
            (["callback", "replay", "x.yaml", "--speed", "fast"], "'fast' must be a number"),
            (["callback", "replay", "x.yaml", "--speed", "0"], "'0' must be at least 0.01"),
            (["sandbox", "--reply-rate", "nan"], "'nan' must be a number")):
        done = cli(*args)
        assert done.exit_code == 2, (args, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Input should" not in done.stderr


def test_help_has_plain_words_through_the_command_classes(cli) -> None:
    done = cli("profile", "set-secret", "--help")
    assert "Usage: ctwa profile set-secret [OPTIONS] NAME SECRET" in done.stdout
    assert "\n  NAME    Profile name." in done.stdout  # the usage's word, not Typer's `name`
    shown = cli("profile", "show", "--help").stdout
    assert "[NAME]" in shown and "{" not in shown.split("\n\n")[0]
    listen = cli("callback", "listen", "--help").stdout
    assert "--port N" in listen and "<int" not in listen and "0<=x<=65535" in listen

"""Nothing imports the CLI's root back: each CLI module imports alone, in a fresh
interpreter, in any order, without ``ctwa.cli.app`` being loaded by it; and the core never
imports the CLI."""

from __future__ import annotations

import pkgutil
import random
import subprocess
import sys

import ctwa
import ctwa.cli

CLI_MODULES = sorted(f"ctwa.cli.{m.name}" for m in pkgutil.iter_modules(ctwa.cli.__path__)
                     if m.name != "app")
CORE_PACKAGES = sorted(f"ctwa.{m.name}" for m in pkgutil.iter_modules(ctwa.__path__)
                       if m.ispkg and m.name != "cli")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_each_cli_module_imports_alone_in_any_order() -> None:
    orders = [CLI_MODULES, list(reversed(CLI_MODULES))]
    shuffled = list(CLI_MODULES)
    random.Random(22).shuffle(shuffled)
    orders.append(shuffled)
    for order in orders:
        code = ("import importlib, sys\n"
                f"for name in {order!r}:\n"
                "    importlib.import_module(name)\n"
                "    assert 'ctwa.cli.app' not in sys.modules, name + ' imported ctwa.cli.app'\n")
        done = _run(code)
        assert done.returncode == 0, done.stderr[-2000:]


def test_each_cli_module_alone() -> None:
    for name in CLI_MODULES:
        done = _run(f"import {name}, sys\n"
                    f"assert 'ctwa.cli.app' not in sys.modules, '{name} imported ctwa.cli.app'")
        assert done.returncode == 0, (name, done.stderr[-2000:])


def test_no_cli_module_imports_the_root_back_even_inside_a_function() -> None:
    """The circle the issue names (cli/app.py <-> cli/demo.py, cli/locust.py: now cli/load.py)
    was made of imports inside functions: none is left, anywhere in a module."""
    import ast
    from pathlib import Path

    for name in CLI_MODULES:
        path = Path(ctwa.cli.__path__[0]) / (name.rsplit(".", 1)[1] + ".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = {alias.name for alias in node.names}
                assert node.module != "ctwa.cli.app", (name, node.lineno)
                assert not (node.module == "ctwa.cli" and "app" in names), (name, node.lineno)
            elif isinstance(node, ast.Import):
                assert all(a.name != "ctwa.cli.app" for a in node.names), (name, node.lineno)


def test_the_core_never_imports_the_cli() -> None:
    code = ("import importlib, pkgutil, sys\n"
            f"for package in {CORE_PACKAGES!r}:\n"
            "    module = importlib.import_module(package)\n"
            "    for info in pkgutil.walk_packages(module.__path__, package + '.'):\n"
            "        if info.name.startswith('ctwa.locust.'):\n"
            "            continue  # needs the locust extra\n"
            "        importlib.import_module(info.name)\n"
            "cli = [m for m in sys.modules if m.startswith('ctwa.cli')]\n"
            "assert not cli, cli\n")
    done = _run(code)
    assert done.returncode == 0, done.stderr[-2000:]

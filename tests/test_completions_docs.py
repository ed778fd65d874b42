"""Completion scripts match the app; every command has help and is in the README."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctwa.cli.app import app

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_committed_completion_scripts_match_the_app(shell: str) -> None:
    env = {**os.environ, "_CTWA_COMPLETE": f"source_{shell}"}
    generated = subprocess.run([sys.executable, "-m", "ctwa"], env=env, capture_output=True,
                               text=True, check=True).stdout
    committed = (ROOT / "completions" / f"ctwa.{shell}").read_text()
    assert generated == committed, f"regenerate: _CTWA_COMPLETE=source_{shell} ctwa > " \
                                   f"completions/ctwa.{shell}"


def test_completion_answers_for_subcommands() -> None:
    env = {**os.environ, "_CTWA_COMPLETE": "complete_bash", "COMP_WORDS": "ctwa send-",
           "COMP_CWORD": "1"}
    out = subprocess.run([sys.executable, "-m", "ctwa"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "send-template" in out and "send-freeform" in out


def _commands(group, prefix=""):
    import typer.main

    command = typer.main.get_command(group)
    for name, sub in command.commands.items():
        yield f"{prefix}{name}", sub
        if hasattr(sub, "commands"):
            for inner, leaf in sub.commands.items():
                yield f"{prefix}{name} {inner}", leaf


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, command in _commands(app):
        assert (command.help or "").strip(), f"{name} has no help text"
        top = name.split()[0]
        assert f"ctwa {top}" in readme, f"README does not mention ctwa {top}"


@pytest.mark.parametrize(("words", "expected"), [
    ("ctwa send-template --sample mu", {"multi-button"}),
    ("ctwa send-freeform --type i", {"image"}),
    ("ctwa upload-users x.csv --region in", {"in1"}),
    ("ctwa profile add x --auth b", {"basic", "bearer"}),
])
def test_option_values_complete(words: str, expected: set[str]) -> None:
    env = {**os.environ, "_CTWA_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1)}
    out = subprocess.run([sys.executable, "-m", "ctwa"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert set(out.split()) == expected


def test_template_and_profile_names_complete(tmp_path) -> None:
    from ctwa.cli import complete
    from ctwa.infra.config import ConfigStore
    from ctwa.templates.library import Entry, TemplateLibrary, default_root

    library = TemplateLibrary(default_root(None))
    path = library.put({"name": "order_update", "language": "en", "components": []})
    library.save_index({"order_update|en": Entry("order_update", "en", path.name)})
    assert complete.templates("order") == ["order_update"]
    assert complete.profiles("") == [] and ConfigStore().load().profiles == {}

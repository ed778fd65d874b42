"""Help and suggestions: DIR for folders, durations' defaults with their unit, "did you mean"
for a kind or a profile, the Locust line as the README says, the demo's story on stdout, and
the import summary's URL whole."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import typer.main

from ctwa.cli.app import app
from ctwa.cli.options import seconds
from tests.cli.test_hints import check_command_line

TREE = typer.main.get_command(app)


def _params() -> list[tuple[str, Any]]:
    found = []

    def walk(command: Any, path: list[str]) -> None:
        for param in command.params:
            if param.param_type_name == "option":
                found.append((" ".join(path), param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(TREE, [])
    return found


def test_folders_show_dir(cli) -> None:
    from ctwa.cli.commands import plain_metavar

    assert re.search(r"--templates DIR\s+Folder", cli("sandbox", "--help").stdout)
    assert re.search(r"--library DIR\s+Library folder", cli("templates", "show", "--help")
                     .stdout)
    ctx = TREE.context_class(TREE)
    for where, param in _params():
        words = set(re.findall(r"[a-z]+", (param.help or "").lower()))
        if {"folder", "directory"} & words and not {"file", "files"} & words \
                and param.metavar in (None, "DIR") and not getattr(param, "is_flag", False):
            # the word the help shows (ctwa.cli.commands renders it from Typer's type name)
            assert plain_metavar(param, param.display_type(ctx)) == "DIR", (where, param.opts)


def test_every_duration_default_shows_its_unit_and_reads_back(cli) -> None:
    durations = [(where, p) for where, p in _params() if p.metavar == "DURATION"
                 and p.default is not None]
    assert len(durations) >= 10
    for where, param in durations:
        assert re.fullmatch(r"\d+(\.\d+)?(ms|s|m)", str(param.default)), (where, param.opts)
        assert seconds(str(param.default)) > 0
    help_text = " ".join(cli("send-template", "--help").stdout.split())
    assert "[default: 10s]" in help_text and "[default: 1s]" in help_text
    assert "[default: 1m]" in help_text  # --callback-timeout, 60 s
    assert not re.search(r"\[default: \d+(\.\d+)?\]", " ".join(
        cli("upload-users", "--help").stdout.split()).replace("[default: 1000", "").replace(
        "[default: 5", ""))


def test_a_duration_default_still_arrives_as_seconds(cli, monkeypatch) -> None:
    seen = {}

    def deliver(endpoint, payload, *, timeout, deadline, trace=None):
        seen.update(timeout=timeout, deadline=deadline)
        raise KeyboardInterrupt

    import ctwa.send.messaging

    monkeypatch.setattr(ctwa.send.messaging, "deliver", deliver)
    cli("send-template", "--sample", "lto", "--endpoint", "http://127.0.0.1:9/x")
    assert seen == {"timeout": 10.0, "deadline": 1.0}


def test_usage_never_doubles_the_ellipsis(cli) -> None:
    assert "Usage: ctwa lint [OPTIONS] FILE...\n" in cli("lint", "--help").stdout


def test_schema_kind_did_you_mean_runs_as_printed(cli) -> None:
    done = cli("schema", "stauts")
    assert done.exit_code == 2
    assert "did you mean 'status'? (`ctwa schema status`)" in done.stderr
    check_command_line("ctwa schema status")
    assert "did you mean" in cli("lint", "--kind", "templte", "x.json").stderr
    assert "did you mean" not in cli("schema", "xyzzy").stderr


def test_profile_use_did_you_mean(cli) -> None:
    assert cli("profile", "add", "acme", "--waba", "919999999998").exit_code == 0
    done = cli("profile", "use", "acmee")
    assert done.exit_code == 2
    assert "did you mean 'acme'? (`ctwa profile use acme`)" in done.stderr
    assert cli("profile", "use", "acme").exit_code == 0
    assert "did you mean 'acme'?" in cli("-p", "Acme", "profile", "show").stderr


def test_the_locust_command_printed_has_the_stop_timeout(cli, tmp_path) -> None:
    done = cli("load", "export", "--locust", str(tmp_path / "lt"), "send-template", "--sample",
               "lto", "--to", "919000000001", "--endpoint", "http://127.0.0.1:9/bsp")
    assert done.exit_code == 0, done.stderr
    assert "--stop-timeout 10 " in done.stdout


def test_the_import_summary_never_breaks_its_url() -> None:
    from rich.console import Console

    from ctwa.cli.output import Output
    from ctwa.cli.templates import _report_import
    from ctwa.templates.importer import ImportReport

    url = "https://vendor.example/templates/import?waba=919999999998&fields=" + "x" * 80
    buffer = io.StringIO()
    out = Output(_stdout=Console(file=buffer, width=60, force_terminal=True, no_color=True),
                 _stderr=Console(file=io.StringIO(), width=60))
    _report_import(out, ImportReport(url=url, pages=1, fetched=2), Path("lib"))
    assert f"import from {url}" in buffer.getvalue().splitlines()


def test_the_demos_story_goes_to_stdout_and_its_progress_to_stderr(cli) -> None:
    done = cli("demo")
    assert done.exit_code == 0, done.stderr
    assert re.search(r"\[1/\d+\] A throwaway profile", done.stdout)
    assert "  ok: profile 'demo' is the current profile" in done.stdout
    assert "Every step behaved as expected" in done.stdout
    assert "sandbox on http://127.0.0.1:" in done.stderr and "demo finished in" in done.stderr
    assert not re.search(r"\[1/\d+\]", done.stderr)

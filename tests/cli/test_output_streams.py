"""Every output verb says its stream in its name, and writes there and nowhere else."""

from __future__ import annotations

import inspect

import pytest

from ctwa.cli.output import Output

#: Methods that measure and write nothing.
NOT_WRITING = {"preview_width", "table_width"}


def _verbs() -> list[str]:
    return sorted(name for name, member in inspect.getmembers(Output, inspect.isfunction)
                  if not name.startswith("_") and name not in NOT_WRITING)


def _call(out: Output, verb: str, text: str) -> None:
    if verb == "stdout_json":
        out.stdout_json({"said": text})
    elif verb == "stdout_table":
        from rich.table import Table

        table = Table("said")
        table.add_row(text)
        out.stdout_table(table)
    else:
        getattr(out, verb)(text)


def test_every_writing_verb_names_a_stream() -> None:
    verbs = _verbs()
    assert {"stdout_line", "stdout_result", "stdout_table", "stdout_json", "stderr_line",
            "stderr_print", "stderr_log", "stderr_warn", "stderr_error", "stderr_success",
            "stderr_trace"} <= set(verbs)
    assert [v for v in verbs if not v.startswith(("stdout_", "stderr_"))] == []


@pytest.mark.parametrize("verb", _verbs())
def test_each_verb_writes_to_the_stream_its_name_says(verb: str, capsys) -> None:
    out = Output(verbose=True)  # stderr_trace writes only with -v
    text = f"marker-of-{verb}"
    _call(out, verb, text)
    captured = capsys.readouterr()
    said, silent = ((captured.out, captured.err) if verb.startswith("stdout_")
                    else (captured.err, captured.out))
    assert text in said, (verb, captured)
    assert silent == "", (verb, captured)


def test_the_consoles_are_named_after_their_streams(capsys) -> None:
    out = Output()
    out.stdout_console.print("to-stdout")
    out.stderr_console.print("to-stderr")
    captured = capsys.readouterr()
    assert captured.out.strip() == "to-stdout" and captured.err.strip() == "to-stderr"

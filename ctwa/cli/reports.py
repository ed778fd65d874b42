"""``--report`` and ``--junit`` for every long run, ``ctwa runs list`` and ``ctwa report
diff/render``: each run's summary is kept in the store and can be rendered again by its id."""

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.commands import Typer
from ctwa.cli.context import Invocation, of
from ctwa.cli.options import int_option
from ctwa.cli.output import Output
from ctwa.infra.errors import ExitCode, InputError

REPORTS = "Reports"
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", metavar="FILE.html", help="Write an HTML report of the run (offline, charts).",
    rich_help_panel=REPORTS)]
JunitOpt = Annotated[Path | None, typer.Option(
    "--junit", metavar="FILE.xml", help="Write JUnit XML: one test case per criterion.",
    rich_help_panel=REPORTS)]


def check_report_paths(report: Path | None, junit: Path | None, *,
                       inputs: Iterable[Path] = (), **others: Path | None) -> None:
    """Before the run: a report that cannot be written is said now, not after ten minutes
    (nor written over an input of the run, the store, or another output). ``others``: more
    outputs, by option name (``record=`` is ``--record``)."""
    from ctwa.infra.outputs import check_outputs

    outputs = {"--report": report, "--junit": junit}
    outputs.update({f"--{name.replace('_', '-')}": path for name, path in others.items()})
    check_outputs(outputs, inputs)


#: How each criterion status is styled on a console.
STATUS_STYLE = {"pass": "green", "attested": "green", "fail": "red"}
OUTCOME_STYLE = {"passed": "bold green", "failed": "bold red", "incomplete": "bold yellow"}


def render_verdict(out: Output, verdict: Any) -> None:
    """The verdict's warnings on stderr, then on stdout one line per criterion and the
    outcome (nothing of it in --json mode: the document carries the verdict)."""
    for warning in verdict.warnings:
        out.stderr_warn(warning)
    if out.json_mode:
        return
    for criterion in verdict.criteria:
        out.stdout_line(criterion.line, STATUS_STYLE.get(criterion.status, "yellow"))
    out.stdout_line(f"verdict: {verdict.headline}", OUTCOME_STYLE[verdict.outcome])


def render_send_verdict(out: Output, verdict: Any) -> None:
    """A single send's verdict, short: the criteria that did not pass (the line before it
    says the rest), then the outcome."""
    if out.json_mode:
        return
    for criterion in verdict.criteria:
        if criterion.status != "pass":
            out.stdout_line(criterion.line, STATUS_STYLE.get(criterion.status, "yellow"))
    out.stdout_line(f"verdict: {verdict.headline}", OUTCOME_STYLE[verdict.outcome])


def finish_run(inv: Invocation, summary: dict[str, Any], report: Path | None,
               junit: Path | None, keep: bool = True) -> int:
    """Keep the summary in the store (unless told not to use it), write the report files
    asked for, and return the exit code the summary's verdict gives."""
    from ctwa.report.verdict import of_summary
    from ctwa.store.db import StoreError

    out = inv.out
    verdict = of_summary(summary)
    if keep:
        try:
            with inv.store() as store:
                store.add_run(summary["id"], summary["kind"], verdict.outcome, summary)
        except StoreError as exc:
            out.stderr_warn(f"the run's summary was not kept in the store: {exc}")
    write_reports(out, summary, report, junit)
    return verdict.exit_code()


def conclude(inv: Invocation, summary: dict[str, Any], *, document: Any = None,
             render: Any = None, report: Path | None = None, junit: Path | None = None,
             keep: bool = True, strict: bool = False) -> int:
    """The end every long run shares, once its summary (with its verdict) is made:
    the --json ``document`` or the console ``render()``, then the verdict's lines, the
    summary kept in the store with the report files asked for; returns the exit code the
    verdict gives (``strict``: incomplete fails), for the command to raise after its hints."""
    from ctwa.report.verdict import of_summary

    out = inv.out
    verdict = of_summary(summary)
    if out.json_mode:
        if document is not None:
            out.stdout_json(document)
    elif render is not None:
        render()
    render_verdict(out, verdict)
    finish_run(inv, summary, report, junit, keep)
    return verdict.exit_code(strict)


def write_reports(out: Output, summary: dict[str, Any], report: Path | None,
                  junit: Path | None) -> None:
    from ctwa.report.summary import safe_summary

    summary = safe_summary(summary)  # a run kept by an older ctwa is made safe here too
    if report is not None:
        from ctwa.report.html import render

        _write(report, render(summary))
        out.stderr_line(f"report: {report}")
    if junit is not None:
        from ctwa.report.junit import write_junit

        try:
            write_junit(summary, junit)
        except OSError as exc:
            raise InputError(f"{junit}: cannot write ({exc.strerror})") from exc
        out.stderr_line(f"JUnit: {junit}")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror})") from exc


runs_app = Typer(help="Runs kept in the store (load, upload, import, replay, listen, "
                 "certify).", no_args_is_help=True)
report_app = Typer(help="Render a kept run again, or compare two runs.",
                   no_args_is_help=True)


@runs_app.command("list")
def runs_list(ctx: typer.Context, limit: Annotated[int, int_option(
        "--limit", min=1, help="How many of the latest runs.")] = 20) -> None:
    """The latest runs, newest first: id, when, kind, outcome (passed, incomplete, failed)."""
    import time


    inv = of(ctx)
    out = inv.out
    with inv.store(readonly=True) as store:
        runs = store.runs(limit)
    if out.json_mode:
        out.stdout_json(runs)
        return
    if not runs:
        out.stderr_line(
            "no run kept yet: load runs, uploads, imports, replays and listens keep one")
        return
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["at"]))
        outcome = run.get("outcome") or {1: "passed", 0: "failed"}.get(run["passed"], "-")
        out.stdout_line(f"{run['id']:32} {when}  {run['command']:8} {outcome}")


@report_app.command("diff")
def report_diff(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(metavar="BASE", help="A run id or summary JSON file.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="A run id or summary JSON file.")],
    max_regression: Annotated[str, typer.Option(
        "--max-regression", metavar="METRIC=N%,...",
        help="How much worse NEW may be: p99=10% (relative), errors=0.1% (points).")]
    = "p99=10%,rps=10%,errors=0.1%",
) -> None:
    """Compare two runs side by side; exit 1 when NEW regressed past a threshold."""
    from ctwa.report.diff import compare, outcomes, parse_thresholds, resolve

    inv = of(ctx)
    out = inv.out
    thresholds = parse_thresholds(max_regression)
    with inv.store(readonly=True) as store:
        first, second = resolve(base, store), resolve(new, store)
    rows = compare(first, second, thresholds)
    regressed = [row for row in rows if row.regressed]
    base_outcome, new_outcome, outcome_worse = outcomes(first, second)
    if out.json_mode:
        out.stdout_json({"base": first.get("id"), "new": second.get("id"), "regressed":
                         bool(regressed) or outcome_worse, "base_outcome": base_outcome,
                         "new_outcome": new_outcome, "metrics": [row.__dict__ for row in rows]})
    else:
        from rich.table import Table

        table = Table(box=None)
        for name in ("metric", "BASE", "NEW", "change", "limit", ""):
            table.add_column(name, justify="right" if name in ("BASE", "NEW") else "left")
        table.add_row("outcome", base_outcome or "-", new_outcome or "-", "", "",
                      "REGRESSED" if outcome_worse else "")
        for row in rows:
            table.add_row(row.metric, _num(row.base), _num(row.new), row.change, row.limit,
                          "REGRESSED" if row.regressed else "")
        out.stdout_table(table)
        named = [f"{r.metric} {r.change}" for r in regressed]
        if outcome_worse:
            named.insert(0, f"its verdict is {new_outcome} (BASE: {base_outcome})")
        if named:
            out.stderr_error("NEW regressed: " + ", ".join(named))
        else:
            out.stderr_line("no regression past the thresholds", "green")
    if regressed or outcome_worse:
        raise typer.Exit(ExitCode.FAILED)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"


@report_app.command("render")
def report_render(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id from `ctwa runs list`.")],
    report: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Write the HTML report (and JUnit XML) of a run kept in the store."""
    import json


    inv = of(ctx)
    out = inv.out
    if report is None and junit is None:
        raise InputError("nothing to write", hint="give --report FILE.html and/or --junit FILE")
    check_report_paths(report, junit)
    with inv.store(readonly=True) as store:
        kept = store.run(run)
    if kept is None:
        raise InputError(f"no run {run!r} in the store", hint="`ctwa runs list` shows them")
    write_reports(out, json.loads(kept["summary"]), report, junit)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.add_typer(report_app, name="report")

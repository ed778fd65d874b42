"""``--report`` and ``--junit`` for every long run, ``ctwa runs list`` and ``ctwa report
diff/render``: each run's summary is kept in the store and can be rendered again by its id."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.output import Output
from ctwa.infra.errors import ExitCode, InputError

REPORTS = "Reports"
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", metavar="FILE.html", help="Write an HTML report of the run (offline, charts).",
    rich_help_panel=REPORTS)]
JunitOpt = Annotated[Path | None, typer.Option(
    "--junit", metavar="FILE.xml", help="Write JUnit XML: one test case per criterion.",
    rich_help_panel=REPORTS)]


def check_report_paths(*paths: Path | None) -> None:
    """Before the run: a report that cannot be written is said now, not after ten minutes
    (nor written over the store)."""
    from ctwa.infra.outputs import check_outputs

    names = ("--report", "--junit")  # the order every command passes them in
    check_outputs({names[i] if i < len(names) else f"output {i + 1}": path
                   for i, path in enumerate(paths)})


def finish_run(out: Output, summary: dict[str, Any], report: Path | None,
               junit: Path | None, keep: bool = True) -> None:
    """Keep the summary in the store (unless told not to use it), and write the report
    files asked for."""
    from ctwa.store.db import Store, StoreError

    if not keep:
        write_reports(out, summary, report, junit)
        return
    try:
        with Store() as store:
            store.add_run(summary["id"], summary["kind"], summary["passed"], summary)
    except StoreError as exc:
        out.warn(f"the run's summary was not kept in the store: {exc}")
    write_reports(out, summary, report, junit)


def write_reports(out: Output, summary: dict[str, Any], report: Path | None,
                  junit: Path | None) -> None:
    from ctwa.report.summary import safe_summary

    summary = safe_summary(summary)  # a run kept by an older ctwa is made safe here too
    if report is not None:
        from ctwa.report.html import render

        _write(report, render(summary))
        out.say(f"report: {report}")
    if junit is not None:
        from ctwa.report.junit import write_junit

        try:
            write_junit(summary, junit)
        except OSError as exc:
            raise InputError(f"{junit}: cannot write ({exc.strerror})") from exc
        out.say(f"JUnit: {junit}")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror})") from exc


runs_app = typer.Typer(help="Runs kept in the store (load, upload, import, replay, listen, "
                       "certify).", no_args_is_help=True)
report_app = typer.Typer(help="Render a kept run again, or compare two runs.",
                         no_args_is_help=True)


@runs_app.command("list")
def runs_list(ctx: typer.Context, limit: Annotated[int, typer.Option(
        "--limit", min=1, help="How many of the latest runs.")] = 20) -> None:
    """The latest runs, newest first: id, when, kind, passed."""
    import time

    from ctwa.store.db import Store

    out: Output = ctx.obj
    with Store(readonly=True) as store:
        runs = store.runs(limit)
    if out.json_mode:
        out.data(runs)
        return
    if not runs:
        out.say("no run kept yet: load runs, uploads, imports, replays and listens keep one")
        return
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["at"]))
        verdict = {1: "passed", 0: "FAILED"}.get(run["passed"], "-")
        out.line(f"{run['id']:32} {when}  {run['command']:8} {verdict}")


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
    from ctwa.report.diff import compare, parse_thresholds, resolve
    from ctwa.store.db import Store

    out: Output = ctx.obj
    thresholds = parse_thresholds(max_regression)
    with Store(readonly=True) as store:
        first, second = resolve(base, store), resolve(new, store)
    rows = compare(first, second, thresholds)
    regressed = [row for row in rows if row.regressed]
    if out.json_mode:
        out.data({"base": first.get("id"), "new": second.get("id"), "regressed":
                  bool(regressed), "metrics": [row.__dict__ for row in rows]})
    else:
        from rich.table import Table

        table = Table(box=None)
        for name in ("metric", "BASE", "NEW", "change", "limit", ""):
            table.add_column(name, justify="right" if name in ("BASE", "NEW") else "left")
        for row in rows:
            table.add_row(row.metric, _num(row.base), _num(row.new), row.change, row.limit,
                          "REGRESSED" if row.regressed else "")
        out.table(table)
        if regressed:
            out.error("NEW regressed: " + ", ".join(f"{r.metric} {r.change}" for r in regressed))
        else:
            out.say("no regression past the thresholds", "green")
    if regressed:
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

    from ctwa.store.db import Store

    out: Output = ctx.obj
    if report is None and junit is None:
        raise InputError("nothing to write", hint="give --report FILE.html and/or --junit FILE")
    check_report_paths(report, junit)
    with Store(readonly=True) as store:
        kept = store.run(run)
    if kept is None:
        raise InputError(f"no run {run!r} in the store", hint="`ctwa runs list` shows them")
    write_reports(out, json.loads(kept["summary"]), report, junit)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.add_typer(report_app, name="report")

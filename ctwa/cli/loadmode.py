"""Load mode for the send commands: the options, the run, the live line and the report."""

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.context import Invocation
from ctwa.cli.options import float_option, int_option
from ctwa.cli.output import Output
from ctwa.infra.errors import InputError

LOAD = "Load mode (campaign-like volume)"
CountOpt = Annotated[int | None, int_option(
    "--count", min=1, help="Send this many messages (load mode).", rich_help_panel=LOAD)]
DurationOpt = Annotated[str | None, typer.Option(
    "--duration", help="Send for this long, e.g. 30s or 2m (load mode).",
    rich_help_panel=LOAD)]
RateOpt = Annotated[float | None, float_option(
    "--rate", min=0.1, help="Arrivals per second, whatever the endpoint's speed.",
    rich_help_panel=LOAD)]
ConcurrencyOpt = Annotated[int | None, int_option(
    "--concurrency", min=1, max=20_000,
    help="Requests in flight (default: min(count, 1500), CleverTap's).", rich_help_panel=LOAD)]
WorkersOpt = Annotated[int | None, int_option(
    "--workers", min=1, max=64, help="Client processes (default: the number of cores).",
    rich_help_panel=LOAD)]
ToFileOpt = Annotated[Path | None, typer.Option(
    "--to-file", help="Recipients, one number per line, cycled (load mode).",
    rich_help_panel=LOAD)]


@dataclass(frozen=True)
class LoadFlags:
    count: int | None = None
    duration: str | None = None
    rate: float | None = None
    concurrency: int | None = None
    workers: int | None = None
    to_file: Path | None = None
    report: Path | None = None
    junit: Path | None = None

    @property
    def active(self) -> bool:
        return self.count is not None or self.duration is not None

    def duration_seconds(self) -> float | None:
        from ctwa.infra.durations import parse_duration

        return parse_duration(self.duration, "--duration") if self.duration else None

    def check(self, exporting: bool = False, inputs: Iterable[Path] = ()) -> None:
        """Usage conflicts, reported before anything else (a missing secret included);
        ``exporting``: for a Locust project, where the load options need no --count;
        ``inputs``: the files the payload came from, which no output may overwrite (nor the
        --to-file list of recipients)."""
        if self.count is not None and self.duration is not None:
            raise InputError("give --count or --duration, not both")
        self.duration_seconds()
        if not self.active and not exporting and (
                self.rate or self.concurrency or self.workers or self.to_file or self.report
                or self.junit):
            raise InputError("--rate, --concurrency, --workers, --to-file, --report and --junit "
                             "are load-mode options", hint="add --count N or --duration 30s")
        from ctwa.cli.reports import check_report_paths

        check_report_paths(self.report, self.junit,
                           inputs=[*inputs, *([self.to_file] if self.to_file else [])])


def recipients(to: str | None, to_file: Path | None) -> tuple[str, ...]:
    from ctwa.wire.numbers import check_phone

    if to_file is None:
        if not to:
            raise InputError("no recipient given", hint="pass --to NUMBER or --to-file FILE")
        return (check_phone(to),)
    try:
        lines = to_file.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"{to_file}: cannot read: {exc.strerror}") from exc
    numbers = []
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            numbers.append(check_phone(line.strip(), f"{to_file}:{number}"))
    if not numbers:
        raise InputError(f"{to_file}: no numbers in the file")
    return tuple(numbers)


def export_locust(out: Output, request: Any, folder: Path) -> None:
    """Write the Locust project for the load run a send command's request describes
    (ctwa.cli.send.SendRequest), instead of running it."""
    from ctwa import __version__
    from ctwa.infra.masking import is_secret_header
    from ctwa.load.plan import CAMPAIGN_CONCURRENCY
    from ctwa.locust.scenario import SECRET_ENV, Scenario, write_project
    from ctwa.wire.outbound import is_wrapped

    flags = request.load
    flags.check(exporting=True)
    request.awaiting.check()
    endpoint = request.endpoint(secrets=False)  # the scenario holds no secret: none is asked
    headers = dict(endpoint.headers)
    for name in headers:
        if is_secret_header(name):
            raise InputError(f"--header {name}: a secret header cannot go into a Locust "
                             "scenario file", hint="use --auth header --header-name NAME "
                             f"(its value then comes from {SECRET_ENV['header']})")
    auth = endpoint.auth
    scenario = Scenario(
        url=endpoint.url, payload=request.body,
        recipients=list(recipients(request.to, flags.to_file)),
        wrapped=is_wrapped(request.body), deadline=request.deadline, timeout=request.timeout,
        concurrency=flags.concurrency or CAMPAIGN_CONCURRENCY,
        auth={"kind": auth.kind, **({"username": auth.username} if auth.username else {}),
              **({"header_name": auth.header_name} if auth.header_name else {})},
        headers=headers, ctwa_version=__version__)
    written = write_project(folder, scenario)
    if out.json_mode:
        out.stdout_json({"written": [str(p) for p in written]})
        return
    for path in written:
        out.stdout_result(f"wrote {path}")
    users = scenario.concurrency
    env = SECRET_ENV.get(auth.kind)
    out.stderr_line("next (pip install 'ctwa[locust]'" + (f"; export {env} on every process" if env
                                                         else "") + "):", "dim")
    out.stdout_line(f"locust -f {folder}/locustfile.py --headless --processes 2 -u {users} "
                    f"-r {users} -t 60s --stop-timeout 10 --ctwa-json run.json "
                    "--ctwa-report run.html")


def run_load_mode(inv: Invocation, job: Any, flags: LoadFlags) -> None:
    """A load run (ctwa.send.job.SendJob with ``load``): run it, then its verdict, the
    summary kept in the store with its report files, the rendering, the exit code."""
    out = inv.out
    from ctwa.cli.roundtrip import render_round_trip, wait_progress
    from ctwa.send.job import Hooks, run_job

    def starting(plan: Any) -> None:
        if out.json_mode:
            return
        load = job.load
        # a count reads as messages, a duration as a time (never a bare number)
        target = (f"{load.count:,} message(s)" if load.count else
                  f"for {load.duration:g}s" if load.duration is not None else
                  f"for {flags.duration}")
        pace = f" at {load.rate:g}/s" if load.rate else ""
        out.stderr_line(f"load: {target}{pace} to {plan.url}, {plan.concurrency} in flight, "
                        f"{plan.workers} worker process(es)", "bold")

    with _load_progress(out) as on_progress:
        hooks = Hooks(say=out.stderr_line, warn=out.stderr_warn, on_progress=on_progress,
                      on_wait=wait_progress(out, job.awaiting) if job.awaiting else None,
                      on_start=starting)
        done = run_job(job, hooks)
    report = done.result
    from ctwa.cli.reports import conclude
    from ctwa.report.summary import load_summary

    def render() -> None:
        _render_load(out, report)
        if report.round_trip is not None:
            render_round_trip(out, report.round_trip)

    code = conclude(inv, load_summary(report, done.started, done.ended),
                    document=report.as_dict(), render=render, report=flags.report,
                    junit=flags.junit)
    if report.interrupted:
        out.stderr_line("interrupted: the report above covers what was sent; run the command again "
                        "for a full run", "bold")
    elif report.stopped_on_auth:
        out.stderr_error("the endpoint refused the credentials; check --username/--password or "
                         "--token (or the profile's secrets) and run again")
    if code:
        raise typer.Exit(code)


def _load_progress(out: Output):
    if out.json_mode or not out.stderr_console.is_terminal:
        return contextlib.nullcontext()
    from contextlib import contextmanager

    from rich.live import Live
    from rich.text import Text

    @contextmanager
    def live():
        with Live(Text("starting..."), console=out.stderr_console, transient=True,
                  refresh_per_second=4) as view:
            def update(p: Any) -> None:
                rate = p.answered / p.elapsed if p.elapsed else 0.0
                view.update(Text(f"sent {p.sent:,}  in flight {p.in_flight:,}  "
                                 f"{rate:,.0f}/s  not accepted {p.not_accepted:,}  "
                                 f"{p.elapsed:,.1f} s"))

            yield update

    return live()


#: The percentiles the latency table has a column for; set-up and loop lag fill three.
SPREAD = ("p50", "p90", "p95", "p99", "p99.9", "max")


def _latency_table(report: Any) -> Any:
    """The report's timings as a table of their own, one column per percentile: a row of six
    figures reads across at 80 columns (in the counts table its figures wrapped mid-row), and
    at 40 it stacks as one figure a line."""
    from rich.table import Table

    table = Table(box=None, show_header=True)
    timings = []
    if report.latency_ms:
        timings.append(("from due" if report.service_ms else "answer time", report.latency_ms))
    if report.service_ms:
        timings.append(("from write", report.service_ms))
    if report.connect_ms:
        timings.append(("connection set-up", report.connect_ms))
    if report.loop_lag_ms:
        timings.append(("client loop lag", report.loop_lag_ms))
    figures = [[f"{values[name]:g}" if name in values else "" for name in SPREAD]
               for _, values in timings]
    # right-aligned here (Output.stdout_table lays cells out unjustified, so that none is cut), all
    # to one width: stacked at 40 columns, the `p50: 11.07` lines align as well
    width = max(len(text) for text in (*SPREAD, *(f for row in figures for f in row)))
    table.add_column("latency ms")
    for name in SPREAD:
        table.add_column(name.rjust(width))
    for (label, _), row in zip(timings, figures, strict=True):
        table.add_row(label, *(f.rjust(width) if f else "" for f in row))
    return table


def _render_load(out: Output, report: Any) -> None:
    from rich.table import Table

    from ctwa.wire.codes import messaging_error_meaning

    table = Table(title=f"load report: {report.url}", box=None, show_header=False)
    rows = [("sent", f"{report.sent:,}"), ("accepted in time", f"{report.accepted:,}"),
            *([("accepted late", f"{report.accepted_late:,}")] if report.accepted_late else []),
            *([("abandoned at Ctrl-C", f"{report.abandoned:,}")] if report.abandoned else []),
            (f"answers over the {report.deadline:g} s deadline", f"{report.too_slow:,}"),
            (f"timeouts (no answer within {report.timeout:g} s)" if report.timeout else
             "timeouts", f"{report.timeouts:,}"),
            ("connection errors (refused, reset)", f"{report.connection_errors:,}"),
            *([("answers too large", f"{report.too_large:,}")] if report.too_large else []),
            *([("failed in ctwa itself", f"{report.client_errors:,}")]
              if report.client_errors else []),
            ("contract violations", f"{report.contract_violations:,}")]
    for code, n in report.failure_codes.items():
        meaning = messaging_error_meaning(int(code)) if code.isdecimal() else "no code"
        rows.append((f"failure {code} ({meaning})", f"{n:,}"))
    for status, n in report.http_statuses.items():
        rows.append((f"HTTP {status}", f"{n:,}"))
    if report.connect_ms:
        rows.append(("connections opened before the start", f"{report.connections:,}"))
    if report.gc_pause_ms:
        gc = report.gc_pause_ms
        rows.append(("client GC pauses: count / longest ms",
                     f"{gc['count']:,.0f} / {gc['max']:g}"))
    rows += [("requests/s", f"{report.requests_per_second:,.0f}"),
             ("in flight: peak / mean", f"{report.peak_in_flight:,} / {report.mean_in_flight:,}"),
             ("time", f"{report.elapsed:.1f} s ({report.workers} process(es), {report.loop})")]
    for label, value in rows:
        table.add_row(label, value)
    out.stdout_table(table)
    latency = _latency_table(report)
    if latency.row_count:
        out.stdout_table(latency)
    for sample in report.error_samples[:5]:
        out.stdout_line(f"  e.g. {sample}", "dim")

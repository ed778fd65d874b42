"""Load mode for the send commands: the options, the run, the live line and the report."""

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.output import Output
from ctwa.infra.errors import ExitCode, InputError

LOAD = "Load mode (campaign-like volume)"
CountOpt = Annotated[int | None, typer.Option(
    "--count", min=1, help="Send this many messages (load mode).", rich_help_panel=LOAD)]
DurationOpt = Annotated[str | None, typer.Option(
    "--duration", help="Send for this long, e.g. 30s or 2m (load mode).",
    rich_help_panel=LOAD)]
RateOpt = Annotated[float | None, typer.Option(
    "--rate", min=0.1, help="Arrivals per second, whatever the endpoint's speed.",
    rich_help_panel=LOAD)]
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", min=1, max=20_000,
    help="Requests in flight (default: min(count, 1500), CleverTap's).", rich_help_panel=LOAD)]
WorkersOpt = Annotated[int | None, typer.Option(
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
    export_locust: Path | None = None  # write a Locust project instead of running

    @property
    def active(self) -> bool:
        return self.count is not None or self.duration is not None

    def duration_seconds(self) -> float | None:
        from ctwa.infra.durations import parse_duration

        return parse_duration(self.duration, "--duration") if self.duration else None

    def check(self) -> None:
        """Usage conflicts, reported before anything else (a missing secret included)."""
        if self.count is not None and self.duration is not None:
            raise InputError("give --count or --duration, not both")
        self.duration_seconds()
        if not self.active and not self.export_locust and (
                self.rate or self.concurrency or self.workers or self.to_file or self.report
                or self.junit):
            raise InputError("--rate, --concurrency, --workers, --to-file, --report and --junit "
                             "are load-mode options", hint="add --count N or --duration 30s")
        from ctwa.cli.reports import check_report_paths

        check_report_paths(self.report, self.junit)


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


def export_locust(out: Output, payload: Any, endpoint: Any, timeout: float, deadline: float,
                  flags: LoadFlags, to: str | None, wrapped: bool = False) -> None:
    """Write the Locust project for this load run instead of running it."""
    from ctwa import __version__
    from ctwa.infra.masking import is_secret_header
    from ctwa.load.plan import CAMPAIGN_CONCURRENCY
    from ctwa.locust.scenario import SECRET_ENV, Scenario, write_project

    assert flags.export_locust is not None
    headers = dict(endpoint.headers)
    for name in headers:
        if is_secret_header(name):
            raise InputError(f"--header {name}: a secret header cannot go into a Locust "
                             "scenario file", hint="use --auth header --header-name NAME "
                             f"(its value then comes from {SECRET_ENV['header']})")
    auth = endpoint.auth
    scenario = Scenario(
        url=endpoint.url, payload=payload, recipients=list(recipients(to, flags.to_file)),
        wrapped=wrapped, deadline=deadline, timeout=timeout,
        concurrency=flags.concurrency or CAMPAIGN_CONCURRENCY,
        auth={"kind": auth.kind, **({"username": auth.username} if auth.username else {}),
              **({"header_name": auth.header_name} if auth.header_name else {})},
        headers=headers, ctwa_version=__version__)
    written = write_project(flags.export_locust, scenario)
    if out.json_mode:
        out.data({"written": [str(p) for p in written]})
        return
    for path in written:
        out.result(f"wrote {path}")
    users = scenario.concurrency
    folder = flags.export_locust
    env = SECRET_ENV.get(auth.kind)
    out.say("next (pip install 'ctwa[locust]'" + (f"; export {env} on every process" if env
                                                 else "") + "):", "dim")
    out.line(f"locust -f {folder}/locustfile.py --headless --processes 2 -u {users} "
             f"-r {users} -t 60s --stop-timeout 10 --ctwa-json run.json "
             "--ctwa-report run.html")


def run_load_mode(out: Output, payload: Any, endpoint: Any, timeout: float, deadline: float,
                  flags: LoadFlags, to: str | None, wrapped: bool = False,
                  awaiting: Any = None) -> None:
    import os

    from ctwa.cli.roundtrip import (
        await_load,
        finish_load_record,
        render_round_trip,
        start_load_record,
    )
    from ctwa.http import load_headers
    from ctwa.load.engine import run_load
    from ctwa.load.plan import CAMPAIGN_CONCURRENCY, LoadPlan

    duration = flags.duration_seconds()  # flags.check() ran before the endpoint was resolved
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    small = flags.count is not None and flags.count < 500
    workers = flags.workers or (1 if small else cores)
    concurrency = flags.concurrency or min(flags.count or CAMPAIGN_CONCURRENCY,
                                           CAMPAIGN_CONCURRENCY)
    plan = LoadPlan(endpoint.url, load_headers(endpoint.auth, endpoint.headers), payload,
                    recipients(to, flags.to_file), flags.count, duration, flags.rate,
                    max(concurrency, workers), workers, deadline, timeout, wrapped,
                    record=True)
    run_id = start_load_record(out, plan, payload, awaiting)
    if not out.json_mode:
        target = f"{flags.count} messages" if flags.count else f"{flags.duration}"
        pace = f" at {flags.rate:g}/s" if flags.rate else ""
        out.say(f"load: {target}{pace} to {endpoint.url}, {plan.concurrency} in flight, "
                f"{workers} worker process(es)", "bold")
    import time

    started = time.time()
    with _load_progress(out) as on_progress:
        report = run_load(plan, on_progress)
    if run_id is not None:
        finish_load_record(out, run_id, report)
    if awaiting is not None and awaiting.active and not report.interrupted:
        await_load(out, plan, report, awaiting)
    if out.json_mode:
        out.data(report.as_dict())
    else:
        _render_load(out, report)
        if report.round_trip is not None:
            render_round_trip(out, report.round_trip)
    from ctwa.cli.reports import finish_run
    from ctwa.report.summary import load_summary

    finish_run(out, load_summary(report, started, time.time()), flags.report, flags.junit)
    if report.interrupted:
        out.say("interrupted: the report above covers what was sent; run the command again "
                "for a full run", "bold")
        raise typer.Exit(ExitCode.INTERRUPTED)
    if report.stopped_on_auth:
        out.error("the endpoint refused the credentials; check --username/--password or "
                  "--token (or the profile's secrets) and run again")
        raise typer.Exit(ExitCode.CONFIG)
    trip = report.round_trip
    if not report.passed or (trip is not None and (trip["problems"]
                                                   or trip["complete"] < trip["accepted"])):
        raise typer.Exit(ExitCode.FAILED)



def _load_progress(out: Output):
    if out.json_mode or not out.console.is_terminal:
        return contextlib.nullcontext()
    from contextlib import contextmanager

    from rich.live import Live
    from rich.text import Text

    @contextmanager
    def live():
        with Live(Text("starting..."), console=out.console, transient=True,
                  refresh_per_second=4) as view:
            def update(p: Any) -> None:
                rate = p.answered / p.elapsed if p.elapsed else 0.0
                view.update(Text(f"sent {p.sent:,}  in flight {p.in_flight:,}  "
                                 f"{rate:,.0f}/s  not accepted {p.not_accepted:,}  "
                                 f"{p.elapsed:,.1f} s"))

            yield update

    return live()


def _figures(values: dict[str, float], names: tuple[str, ...]) -> str:
    return " / ".join(f"{values[name]:g}" for name in names)


def _render_load(out: Output, report: Any) -> None:
    from rich.table import Table

    from ctwa.wire.codes import messaging_error_meaning

    table = Table(title=f"load report: {report.url}", box=None, show_header=False)
    rows = [("sent", f"{report.sent:,}"), ("accepted in time", f"{report.accepted:,}"),
            *([("abandoned at Ctrl-C", f"{report.abandoned:,}")] if report.abandoned else []),
            (f"over the {report.deadline:g} s deadline", f"{report.too_slow:,}"),
            ("connection errors", f"{report.connection_errors:,}"),
            *([("answers too large", f"{report.too_large:,}")] if report.too_large else []),
            *([("failed in ctwa itself", f"{report.client_errors:,}")]
              if report.client_errors else []),
            ("contract violations", f"{report.contract_violations:,}")]
    for code, n in report.failure_codes.items():
        meaning = messaging_error_meaning(int(code)) if code.isdecimal() else "no code"
        rows.append((f"failure {code} ({meaning})", f"{n:,}"))
    for status, n in report.http_statuses.items():
        rows.append((f"HTTP {status}", f"{n:,}"))
    spread = ("p50", "p90", "p95", "p99", "p99.9", "max")
    if report.latency_ms:
        label = "latency ms from due" if report.service_ms else "latency ms"
        rows.append((f"{label} p50/p90/p95/p99/p99.9/max", _figures(report.latency_ms, spread)))
    if report.service_ms:
        rows.append(("latency ms from write p50/p90/p95/p99/p99.9/max",
                     _figures(report.service_ms, spread)))
    if report.connect_ms:
        rows.append((f"connection set-up ms p50/p99/max ({report.connections:,} opened "
                     "before the start)", _figures(report.connect_ms, ("p50", "p99", "max"))))
    if report.loop_lag_ms:
        rows.append(("client loop lag ms p50/p99/max",
                     _figures(report.loop_lag_ms, ("p50", "p99", "max"))))
    if report.gc_pause_ms:
        gc = report.gc_pause_ms
        rows.append(("client GC pauses: count / longest ms",
                     f"{gc['count']:,.0f} / {gc['max']:g}"))
    rows += [("requests/s", f"{report.requests_per_second:,.0f}"),
             ("in flight: peak / mean", f"{report.peak_in_flight:,} / {report.mean_in_flight:,}"),
             ("time", f"{report.elapsed:.1f} s ({report.workers} process(es), {report.loop})")]
    for label, value in rows:
        table.add_row(label, value)
    out.table(table)
    for sample in report.error_samples[:5]:
        out.line(f"  e.g. {sample}", "dim")
    for line in report.verdict:
        style = "green" if line.startswith("PASS") else (
            "red" if line.startswith(("FAIL", "WARNING", "INTERRUPTED")) else "yellow")
        out.line(line, style)

"""``ctwa callback replay`` and ``ctwa callback listen``."""


import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.commands import Typer
from ctwa.cli.context import of
from ctwa.cli.options import float_option, int_option, seconds
from ctwa.cli.output import Output, problem_line
from ctwa.cli.reports import JunitOpt, ReportOpt, check_report_paths
from ctwa.infra.errors import InputError

app = Typer(help="Send DLR and inbound callbacks from fixtures (replay), receive and "
            "check them in a strict local listener (listen), and turn Meta's webhooks "
            "into them (convert).", no_args_is_help=True,
            rich_markup_mode=None)


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


@app.command("replay")
def replay(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(metavar="FIXTURE...", help="YAML fixtures.")],
    status_url: Annotated[str | None, typer.Option(
        "--status-url", metavar="URL", help="DLR callback URL (default: the profile's).")]
    = None,
    inbound_url: Annotated[str | None, typer.Option(
        "--inbound-url", metavar="URL", help="Inbound callback URL (default: the profile's).")]
    = None,
    no_delay: Annotated[bool, typer.Option("--no-delay", help="Ignore every `after`.")] = False,
    speed: Annotated[float, float_option("--speed", min=0.01,
                                         help="Play `after` waits this much faster.")] = 1.0,
    group: Annotated[int, int_option(
        "--group", min=1, help="Put up to N consecutive statuses in one statuses[] request.")]
    = 1,
    concurrency: Annotated[int, int_option(
        "--concurrency", min=1, max=256,
        help="Requests in parallel; each msgId's callbacks stay in order.")] = 1,
    allow_invalid: Annotated[bool, typer.Option(
        "--allow-invalid", help="Send events that break the contract (raw tests).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the bodies; send nothing.")]
    = False,
    max_events: Annotated[int, int_option(
        "--max-events", min=1, help="Refuse fixtures that expand to more events than this.")]
    = 1_000_000,
    timeout: Annotated[float, typer.Option(
        "--timeout", parser=seconds, metavar="DURATION", help="Per request, e.g. 10s.")]
    = 10.0,
    report_file: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Send the callbacks described in YAML fixtures, in order, and show every answer.

    Every event is checked against the callback formats first (exit 2 on errors). Exit 1 if
    any answer was not 2xx, 3 if the URL could not be reached.
    """
    from ctwa.callbacks.fixtures import load_fixture
    from ctwa.callbacks.replay import Replayer, group_statuses, validate
    from ctwa.http import make_client

    inv = of(ctx)
    out = inv.out
    check_report_paths(report_file, junit, inputs=files)
    events = []
    for path in files:
        events += load_fixture(path, max_events).events
    problems = validate(events)
    if problems and not allow_invalid:
        for problem in problems[:50]:
            out.stderr_error(problem)
        raise InputError(f"{len(problems)} problem(s) in the fixtures; nothing was sent",
                         hint="fix them, or pass --allow-invalid to send them as they are")
    if dry_run:
        events = group_statuses(events, group)
        out.stdout_json([{"target": e.target, "after_ms": round(e.after * 1000), "body": e.body}
                         for e in events])
        return
    _, profile = inv.profile()
    with make_client(timeout=timeout, max_connections=max(concurrency, 10),
                     trace=out.stderr_trace if out.verbose else None) as client:
        replayer = Replayer(client, status_url or profile.status_callback_url,
                            inbound_url or profile.inbound_callback_url, speed, not no_delay)
        if not out.json_mode:  # printed under the replayer's lock, so lines are in time order
            replayer.on_send = lambda a: out.stderr_line(
                f"{_clock(time.time())} -> {a.planned.label:22} {a.planned.msg_id}", "dim")
            replayer.on_answer = lambda a: _say_answer(out, a)
        started = time.time()
        interrupted = False
        try:
            answers = replayer.run(events, concurrency, group)
        except KeyboardInterrupt:
            replayer.stop()
            answers, interrupted = list(replayer.answers), True
    if replayer.gave_up:
        out.stderr_warn(f"{replayer.gave_up}; the rest of the {len(events):,} event(s) were not "
                        "sent: run the command again once the URL answers")
    from ctwa.cli.reports import conclude
    from ctwa.report.summary import replay_verdict, simple_summary

    verdict = replay_verdict(answers, len(events), interrupted)
    target = " and ".join(filter(None, (replayer.status_url, replayer.inbound_url))) or "-"
    elapsed = max(time.time() - started, 1e-9)
    failed = [a for a in answers if not a.ok]
    summary = simple_summary(
        "replay", target, started, time.time(), verdict,
        {"events": len(events), "requests": len(answers), "failed": len(failed),
         "interrupted": interrupted},
        {"requests": float(len(answers)), "failed": float(len(failed)),
         "requests_per_second": round(len(answers) / elapsed, 1)})
    code = conclude(inv, summary, document={
        "events": len(events), "sent": len(answers), "failed": len(failed),
        "interrupted": interrupted, "outcome": verdict.outcome, "verdict": verdict.as_dict(),
        "answers": [a.as_dict() for a in answers]},
        render=lambda: out.stdout_line(
            f"{len(answers)} request(s), {len(answers) - len(failed)} answered 2xx, "
            f"{len(failed)} not" + (f", interrupted (the fixtures hold {len(events)} "
                                    "event(s))" if interrupted else ""), "bold"),
        report=report_file, junit=junit)
    if interrupted:
        out.stderr_line("interrupted: run the command again to send the fixtures from the start",
                        "bold")
    if code:
        raise typer.Exit(code)


def _say_answer(out: Output, answer: Any) -> None:
    label = f"{answer.planned.label:22} {answer.planned.msg_id}"
    if answer.status is None:
        out.stderr_line(f"{_clock(time.time())} <- ERR  {label}  {answer.error}", "red")
    else:
        style = "green" if answer.ok else "red"
        detail = "" if answer.ok else f"  {answer.body[:120]}"
        out.stderr_line(f"{_clock(time.time())} <- {answer.status}  {label}  "
                        f"({answer.elapsed_ms:g} ms){detail}", style)


@app.command("listen")
def listen(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, int_option("--port", min=0, max=65535, help="Port.")] = 8787,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Answer 400 with the problems to a callback that breaks the contract.")]
    = False,
    record: Annotated[Path | None, typer.Option(
        "--record", help="Write every valid callback to this fixture file.")] = None,
    forward_to: Annotated[str | None, typer.Option(
        "--forward-to", metavar="URL", help="Relay each valid callback to this URL.")] = None,
    forward_inbound_to: Annotated[str | None, typer.Option(
        "--forward-inbound-to", metavar="URL",
        help="Relay inbound callbacks here instead (CleverTap has two callback URLs).")] = None,
    no_store: Annotated[bool, typer.Option(
        "--no-store", help="Do not keep the callbacks in the store (`ctwa trace` and "
        "--await-callbacks read them there).")] = False,
    report_file: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Receive callbacks on /status, /inbound (or / to detect which), check each against the
    contract, keep each in the store, and keep CleverTap-like campaign stats (GET /stats;
    printed on Ctrl-C)."""
    import uvicorn

    from ctwa.callbacks.listener import Listener, Recorder
    from ctwa.infra.ports import check_port_free

    inv = of(ctx)
    out = inv.out
    check_report_paths(report_file, junit, record=record)
    check_port_free(host, port)
    started = time.time()
    recorder = Recorder(record) if record else None
    listener = Listener(strict=strict, recorder=recorder)
    if not no_store:
        from ctwa.store.writer import BatchWriter

        listener.store = BatchWriter()
    budget = _LineBudget(out)
    listener.on_receive = lambda r: _say_received(out, r, budget)
    client = None
    if forward_to or forward_inbound_to:
        from ctwa.http import make_async_client, send_async

        client = make_async_client(timeout=10, max_connections=50)

        async def forward(target: str, body: bytes) -> str:
            url = (forward_inbound_to or forward_to) if target == "inbound" else forward_to
            if not url:
                return "not forwarded"
            try:
                exchange = await send_async(client, "POST", url, content=body,
                                            headers={"Content-Type": "application/json"})
            except Exception as exc:  # report, never crash the listener
                return f"forward failed: {exc}"
            return f"forwarded: HTTP {exchange.response.status_code}"

        listener.forward = forward
    config = uvicorn.Config(listener.app(), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    import socket

    # bound here, so --port 0 prints the port the system chose
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the backlog until the server takes them
    real_port = sock.getsockname()[1]
    out.stderr_line(f"listening on http://{host}:{real_port}  (POST /status, /inbound or /; "
                    "GET /stats)", "bold")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown: the stats are the answer
    finally:
        if recorder is not None:
            recorder.close()
        if listener.store is not None:
            listener.store.close()
    tallies = listener.stats.tallies()
    if listener.store is not None:
        writer = listener.store
        tallies["store"] = {"path": str(writer.path), "written": writer.written,
                            "lost": writer.lost, "orphans_not_kept": writer.orphans_dropped}
        if writer.error:
            out.stderr_warn(f"{writer.lost:,} callback(s) not kept in the store: {writer.error}")
        if writer.orphans_dropped:
            out.stderr_warn(f"{writer.orphans_dropped:,} callback(s) about msgIds ctwa never sent "
                            f"were counted but not kept (the first {writer.orphan_limit:,} were)")
    from ctwa.cli.reports import conclude
    from ctwa.report.summary import listen_verdict, simple_summary

    verdict = listen_verdict(tallies)
    invalid = tallies["invalid"]
    summary = simple_summary(
        "listen", f"http://{host}:{real_port}", started, time.time(), verdict, tallies,
        {"callbacks": float(tallies["callbacks"]), "invalid": float(invalid),
         "anomalies": float(tallies["anomaly_count"])})
    code = conclude(inv, summary, document={**tallies, "outcome": verdict.outcome,
                                            "verdict": verdict.as_dict()},
                    render=lambda: _print_stats(out, tallies), report=report_file,
                    junit=junit, keep=not no_store)
    if code:  # callbacks that break the contract, or came out of order
        raise typer.Exit(code)


class _LineBudget:
    """At most LINES_PER_SECOND lines a second for callbacks that are fine; the rest are
    counted and said in one line when the second is over. Invalid callbacks always show.
    No one reads 10,000 lines a second, and writing them would slow the listener down."""

    LINES_PER_SECOND = 100

    def __init__(self, out: Output) -> None:
        self.out = out
        self.second = 0
        self.shown = 0
        self.hidden = 0

    def allow(self, now: float) -> bool:
        second = int(now)
        if second != self.second:
            if self.hidden:
                self.out.stderr_log(f"  ... {self.hidden:,} more valid callback(s) not shown "
                                    "(all are counted in GET /stats and kept in the store)", "dim")
            self.second, self.shown, self.hidden = second, 0, 0
        if self.shown < self.LINES_PER_SECOND:
            self.shown += 1
            return True
        self.hidden += 1
        return False


def _say_received(out: Output, received: Any, budget: _LineBudget | None = None) -> None:
    if received.error:
        out.stderr_log(f"{_clock(received.at)} {received.path:9} INVALID  {received.error}", "red")
        return
    result = received.result
    if result.ok and not received.notes and budget is not None and not budget.allow(
            received.at):
        return
    stamp = _clock(received.at)
    what = received.kind or "?"
    value = result.value
    if what == "status" and value is not None:
        what = ", ".join(f"{e.status} {e.msgId}" for e in value.statuses)
    elif what == "inbound" and value is not None:
        what = f"inbound {value.type} from {value.from_}"
    if not result.ok:
        out.stderr_log(f"{stamp} {received.path:9} INVALID  {what}", "red")
    else:
        out.stderr_log(f"{stamp} {received.path:9} ok       {what}",
                       "yellow" if result.warnings else "green")
    for problem in result.problems:
        line, style = problem_line(problem)
        out.stderr_log(f"    {line}", style)
    for note in received.notes:
        out.stderr_log(f"    {note}", "magenta")


def _print_stats(out: Output, tallies: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="campaign stats from callbacks", box=None, show_header=False)
    for key in ("callbacks", "valid", "invalid", "with_variants", "messages", "sent",
                "delivered", "read", "clicked", "replies", "anomaly_count"):
        table.add_row(key.replace("_", " "), str(tallies[key]))
    table.add_row("failed", ", ".join(f"{c}: {n}" for c, n in tallies["failed"].items()) or "0")
    table.add_row("inbound", ", ".join(f"{k}: {n}" for k, n in tallies["inbound"].items())
                  or "0")
    out.stdout_table(table)


@app.command("convert")
def convert(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE...", help="Meta webhook bodies (JSON or YAML; a JSON array holds several)."
    )],
    msgid_map: Annotated[Path | None, typer.Option(
        "--msgid-map", metavar="FILE", help="Provider message id -> CleverTap msgId (CSV with "
        "two columns, or a JSON/YAML mapping).")] = None,
    waba: Annotated[str | None, typer.Option(
        "--waba", metavar="NUMBER", help="Business number for inbound callbacks (default: the "
        "webhook's metadata.display_phone_number).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write the callbacks here instead of stdout.")]
    = None,
) -> None:
    """Print the CleverTap callbacks that Meta's WhatsApp Cloud API webhooks correspond to.

    Statuses become status callbacks (Meta's error codes mapped to 1000-1010), messages become
    inbound callbacks; what CleverTap cannot represent is named and left out. The output is a
    YAML stream that `ctwa lint` checks and `ctwa callback replay` sends as it is. Exit 0, or 2
    when a file is not a Meta webhook.
    """
    from ctwa.callbacks.convert import Converter, load_msgid_map, to_yaml
    from ctwa.wire.lint import load_documents
    from ctwa.wire.numbers import check_phone

    out = of(ctx).out
    converter = Converter(load_msgid_map(msgid_map) if msgid_map else {},
                          check_phone(waba, "--waba") if waba else None)
    for path in files:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        for source, doc in load_documents(path):
            converter.convert(doc, source)
    result = converter.result
    if out.json_mode:  # the JSON carries them: said once, there, and counted here
        if result.skipped or result.warnings:
            out.stderr_line(
                f"{len(result.warnings)} warning(s) and {len(result.skipped)} left out: "
                "see `warnings` and `skipped` in the JSON", "yellow")
    else:
        for line in result.skipped:
            out.stderr_warn(f"left out: {line}")
        for line in result.warnings:
            out.stderr_warn(line)
    if result.placeholders:  # a count in the JSON; the advice is said here
        out.stderr_warn(
            f"{result.placeholders} msgId(s) are placeholders (unmapped|<provider id>): "
            "Meta's ids are the provider's, not the msgIds CleverTap sent; pass "
            "--msgid-map FILE to fill them")
    if out.json_mode:
        out.stdout_json(result.as_dict())
    else:
        from ctwa.infra.masking import scrub
        from ctwa.infra.safetext import mask_value

        for callback in result.callbacks:  # masked on the values, never on the YAML text
            callback.body = mask_value(callback.body)
        text = to_yaml(result, [scrub(str(f)) for f in files])
        if output is not None:
            output.write_text(text, encoding="utf-8")
            out.stderr_line(f"wrote {len(result.callbacks)} callback(s) to {output}")
        else:
            typer.echo(text, nl=False)
    out.stderr_line(
        f"{len(result.callbacks)} CleverTap callback(s); check them with `ctwa lint`, send "
        "them with `ctwa callback replay`", "dim")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="callback")

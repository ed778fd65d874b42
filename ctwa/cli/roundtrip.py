"""``--await-callbacks`` for the send commands, ``ctwa trace`` and ``ctwa store``: the round
trip of a message, from what was sent to every callback it caused, read from the store."""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ctwa.cli import complete
from ctwa.cli.options import seconds
from ctwa.cli.output import Output
from ctwa.infra.errors import ExitCode, InputError

ROUND_TRIP = "Round trip (callbacks)"
AwaitOpt = Annotated[bool, typer.Option(
    "--await-callbacks", help="After sending, wait for the callbacks each message causes and "
    "report them (a listener is started on --listen when none runs).",
    rich_help_panel=ROUND_TRIP)]
UntilOpt = Annotated[str, typer.Option(
    "--until", autocompletion=complete.fixed("sent", "delivered", "read"),
    help="Wait until each message is sent, delivered or read (failed ends it too).",
    rich_help_panel=ROUND_TRIP)]
CallbackTimeoutOpt = Annotated[float, typer.Option(
    "--callback-timeout", parser=seconds, metavar="DURATION",
    help="How long to wait for the callbacks, e.g. 60s.", rich_help_panel=ROUND_TRIP)]
ListenOpt = Annotated[str, typer.Option(
    "--listen", metavar="HOST:PORT", help="Where the callbacks arrive: a running `ctwa "
    "callback listen`, or one started here.", rich_help_panel=ROUND_TRIP)]


@dataclass(frozen=True)
class AwaitFlags:
    active: bool = False
    until: str = "delivered"
    timeout: float = 60.0
    listen: str = "127.0.0.1:8787"

    def check(self) -> None:
        from ctwa.roundtrip.waiting import parse_listen

        if self.until not in ("sent", "delivered", "read"):
            raise InputError(f"--until {self.until!r}: expected sent, delivered or read")
        if self.active:
            parse_listen(self.listen)


def store_path() -> Any:
    from ctwa.store.db import store_path as path

    return path()


@contextlib.contextmanager
def listening(out: Output, flags: AwaitFlags, endpoint: str | None = None) -> Iterator[None]:
    """A listener for the wait, up before anything is sent (callbacks can come within
    milliseconds); nothing when not awaiting. ``endpoint``: where the messages go (a ctwa
    sandbox calls back to itself)."""
    if not flags.active:
        yield
        return
    from ctwa.roundtrip.waiting import listener_for

    with listener_for(flags.listen, store_path(), out.say, endpoint):
        yield


def record_send(out: Output, result: Any, at: float) -> str | None:
    """Keep one send in the store; its msgId. A store that fails is a warning here: the
    message went, and saying so matters more than keeping it."""
    from ctwa.roundtrip.record import send_record
    from ctwa.store.db import Store, StoreError

    record = send_record(result, at)
    if record is None:
        return None
    try:
        with Store() as store:
            store.add_sends([record])
    except StoreError as exc:
        out.warn(f"not kept in the store: {exc}")
    return record.msg_id


def await_single(out: Output, msg_id: str, sent_at: float, flags: AwaitFlags,
                 send: dict[str, Any]) -> int:
    """Wait for one message's callbacks, print its timeline; the exit code."""
    from ctwa.roundtrip.record import message_kind
    from ctwa.roundtrip.story import callback_events
    from ctwa.roundtrip.waiting import round_trip, wait_for
    from ctwa.store.db import Store

    interrupted = False
    with Store() as store:
        try:
            reached = wait_for(store, flags.until, flags.timeout, msg_ids=[msg_id],
                               expected=1, on_progress=_progress(out, flags))
        except KeyboardInterrupt:  # Ctrl-C: show what did arrive
            reached, interrupted = False, True
        payload = (send.get("request") or {}).get("body")
        trip = round_trip(store, {msg_id: sent_at}, flags.until, sent_at, time.time(),
                          kinds={msg_id: message_kind(payload)}, where=_where(flags))
        events = callback_events(store, msg_id, sent_at)
    if out.json_mode:
        out.data({**send, "msgId": msg_id, "reached": reached, "interrupted": interrupted,
                  "timeline": [{k: v for k, v in e.items() if k != "body"} for e in events],
                  "round_trip": trip.as_dict()})
    else:
        out.result(f"callbacks for {msg_id}:")
        for event in events:
            _event_line(out, event)
        if not events:
            out.line("  (none)", "dim")
        _anomaly_lines(out, trip)
        diagnosis_lines(out, trip.diagnoses)
    if interrupted:
        out.say(f"interrupted while waiting; `ctwa trace {msg_id}` shows the callbacks that "
                "arrive later (while a listener keeps them)", "bold")
        return ExitCode.INTERRUPTED
    if not reached:
        from ctwa.roundtrip.diagnose import line

        why = "; ".join(line(d) for d in trip.diagnoses[:1])
        out.error(f"no {flags.until} status for {msg_id} within {flags.timeout:g} s"
                  + (f"; {why}" if why else ""))
        return ExitCode.FAILED
    return ExitCode.FAILED if trip.problems else ExitCode.OK


def _where(flags: AwaitFlags) -> str:
    from ctwa.roundtrip.waiting import parse_listen

    host, port = parse_listen(flags.listen)
    return f"http://{host}:{port}"


def diagnosis_lines(out: Output, diagnoses: list[dict[str, Any]]) -> None:
    """Each cause the callbacks show: what was seen, what it means, what to change."""
    for diagnosis in diagnoses:
        style = "yellow" if diagnosis["cause"] == "warning" else "red"
        out.line(f"DIAGNOSIS {diagnosis['seen']}", style)
        out.line(f"  means: {diagnosis['meaning']}")
        out.line(f"  fix:   {diagnosis['fix']}")


def _progress(out: Output, flags: AwaitFlags) -> Any:
    last = [0.0]

    def show(done: int, expected: int, waited: float) -> None:
        if waited - last[0] >= 5.0 and done < expected:
            last[0] = waited
            out.say(f"waiting for callbacks: {done:,} of {expected:,} reached {flags.until} "
                    f"({waited:.0f} of {flags.timeout:g} s)", "dim")

    return show


def _event_line(out: Output, event: dict[str, Any]) -> None:
    """One callback of a message's story (ctwa.roundtrip.story.callback_events)."""
    problems = event["problems"]
    what = event["status"] or event["kind"]
    if event["kind"] == "inbound":
        what = f"reply ({event['status']})"
    code = f" {event['code']}" if event["code"] is not None else ""
    errors = [p for p in problems if not p.startswith("warning: ")]
    warnings = [p for p in problems if p.startswith("warning: ")]
    verdict = "valid" if event["valid"] else "INVALID: " + "; ".join(errors[:3])
    if warnings:
        verdict += " (" + "; ".join(warnings[:2]) + ")"
    out.line(f"  +{event['after_ms']:>9,.0f} ms  {what}{code}  {event['route']}  {verdict}",
             None if event["valid"] else "red")


def _anomaly_lines(out: Output, trip: Any) -> None:
    from ctwa.roundtrip.analyze import ANOMALY_TEXT

    for kind, count in trip.anomalies.items():
        example = trip.examples.get(kind, [""])[0]
        out.line(f"ANOMALY {kind}: {count:,} ({ANOMALY_TEXT[kind]})"
                 + (f", e.g. {example}" if example else ""), "red")


def start_load_record(out: Output, plan: Any, payload: Any,
                      flags: AwaitFlags | None) -> str | None:
    """The run's row, written before it starts; a store that fails is a warning unless the
    run is to await its callbacks (which the store must hold)."""
    from ctwa.roundtrip.record import start_load_run
    from ctwa.store.db import Store, StoreError

    try:
        with Store() as store:
            return start_load_run(store, plan, payload)
    except StoreError as exc:
        if flags is not None and flags.active:
            raise
        out.warn(f"messages not kept in the store: {exc}")
        return None


def finish_load_record(out: Output, run_id: str, report: Any) -> None:
    from ctwa.roundtrip.record import finish_load_run
    from ctwa.store.db import Store, StoreError

    try:
        with Store() as store:
            finish_load_run(store, run_id, report)
    except StoreError as exc:
        out.warn(f"messages not kept in the store: {exc}")


def await_load(out: Output, plan: Any, report: Any, flags: AwaitFlags) -> None:
    """Wait for the run's callbacks and put DLR completeness in the report."""
    from ctwa.roundtrip.record import load_round_trip
    from ctwa.roundtrip.waiting import wait_for
    from ctwa.store.db import Store

    outcomes = report.outcomes
    if outcomes is None:
        return
    expected = outcomes.accepted_count()
    if not out.json_mode:
        out.say(f"waiting up to {flags.timeout:g} s for the callbacks of {expected:,} "
                f"accepted message(s) to reach {flags.until}", "bold")
    with Store() as store:
        try:
            wait_for(store, flags.until, flags.timeout, prefix=plan.prefix, expected=expected,
                     on_progress=_progress(out, flags))
        except KeyboardInterrupt:  # Ctrl-C: judge what did arrive
            report.interrupted = True
        report.round_trip = load_round_trip(store, plan, report, flags.until).as_dict()


def render_round_trip(out: Output, trip: dict[str, Any]) -> None:
    from ctwa.roundtrip.analyze import ANOMALY_TEXT

    furthest = trip["furthest"]
    out.result(f"callbacks: of {trip['accepted']:,} accepted, furthest status: "
               + ", ".join(f"{k} {v:,}" for k, v in furthest.items()))
    if trip["failed_codes"]:
        out.line("  failed by code: " + ", ".join(f"{code} x{n:,}" for code, n in
                                                  trip["failed_codes"].items()))
    for status, figures in trip["time_to_status_ms"].items():
        if figures:
            out.line(f"  time to {status} ms p50/p90/p99/max: "
                     + " / ".join(f"{figures[k]:g}" for k in ("p50", "p90", "p99", "max")))
    out.line(f"  reached {trip['until']} (or failed): {trip['complete']:,} of "
             f"{trip['accepted']:,}; inbound replies: {trip['replies']:,}")
    if trip.get("only_invalid"):
        out.line(f"  of the {furthest['none']:,} that reached no status, "
                 f"{trip['only_invalid']:,} got only invalid callbacks")
    for kind, count in trip["anomalies"].items():
        example = trip["examples"].get(kind, [""])[0]
        out.line(f"ANOMALY {kind}: {count:,} ({ANOMALY_TEXT[kind]})"
                 + (f", e.g. {example}" if example else ""), "red")
    diagnosis_lines(out, trip.get("diagnoses", []))
    if not trip["anomalies"]:
        out.line("PASS: every accepted message's callbacks came back in order, in CleverTap's "
                 "format", "green")


# --- ctwa trace ------------------------------------------------------------------------------


def trace(
    ctx: typer.Context,
    msg_id: Annotated[str | None, typer.Argument(
        metavar="MSGID", help="The msgId of a message ctwa sent.")] = None,
    last: Annotated[bool, typer.Option("--last", help="The last message sent.")] = False,
) -> None:
    """One message's whole story from the store: what was sent and answered, then every
    callback in arrival order with its delay and problems, and the replies to it."""
    from ctwa.roundtrip.story import story
    from ctwa.store.db import Store

    out: Output = ctx.obj
    if (msg_id is None) == (not last):
        raise InputError("give a MSGID or --last", hint="e.g. `ctwa trace --last`")
    with Store(readonly=True) as store:
        told = story(store, msg_id, last=last)
    if out.json_mode:
        out.data(told)
        return
    send = told["send"]
    out.result(f"msgId {told['msgId']}")
    out.line(f"  sent {_when(send['at'])} to {send.get('recipient') or '?'}: "
             f"{send.get('kind') or '?'}" + (f" {send['template']}" if send.get("template")
                                             else "") + f" -> {send.get('url') or '?'}")
    import json

    latency = send.get("latency_ms")
    answer = f"HTTP {send['http_status']}, " if send.get("http_status") else ""
    out.line(f"  answer: {send.get('verdict') or '?'} ({answer}"
             f"{f'{latency:g} ms' if latency is not None else 'no answer'})"
             + (f" {json.dumps(send['answer'], ensure_ascii=False)}" if send.get("answer")
                else ""))
    if send.get("run"):
        out.line(f"  part of load run {send['run']}", "dim")
    for event in told["callbacks"]:
        _event_line(out, event)
    if not told["callbacks"]:
        out.line("  no callback has arrived for it", "yellow")
    diagnosis_lines(out, told.get("diagnoses", []))


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


# --- ctwa store ------------------------------------------------------------------------------

store_app = typer.Typer(help="The local store of sends, callbacks and runs.",
                        no_args_is_help=True)


@store_app.command("info")
def store_info(ctx: typer.Context) -> None:
    """Where the store is, its size, and how many sends, callbacks and runs it holds."""
    from ctwa.store.db import Store

    out: Output = ctx.obj
    with Store(readonly=True) as store:
        info = store.info()
    if out.json_mode:
        out.data(info)
        return
    out.result(f"store {info['path']}")
    out.line(f"  {info['bytes'] / 1e6:,.1f} MB, schema {info['schema']}")
    out.line(f"  sends {info['sends']:,}, load runs {info['load_runs']:,}, callbacks "
             f"{info['callbacks']:,}, runs {info['runs']:,}")
    if info["oldest"]:
        out.line(f"  oldest entry {_when(info['oldest'])}")


@store_app.command("prune")
def store_prune(
    ctx: typer.Context,
    older_than: Annotated[float, typer.Option(
        "--older-than", parser=seconds, metavar="DURATION",
        help="Delete what is older than this, e.g. 30d or 12h.")],
) -> None:
    """Delete sends, callbacks and runs older than --older-than, and give the space back."""
    from ctwa.store.db import Store

    out: Output = ctx.obj
    with Store() as store:
        removed = store.prune(time.time() - older_than)
    if out.json_mode:
        out.data({"removed": removed})
        return
    out.result("removed " + ", ".join(f"{n:,} {table.replace('_', ' ')}"
                                      for table, n in removed.items()))


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)
    app.add_typer(store_app, name="store")

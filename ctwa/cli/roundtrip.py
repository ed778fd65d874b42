"""``--await-callbacks`` for the send commands: its options, and the round trip of a message
(what was sent, every callback it caused, the diagnoses) rendered for people; ``ctwa trace``
renders a stored message's story with the same lines."""

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ctwa.cli import complete
from ctwa.cli.options import seconds
from ctwa.cli.output import Output
from ctwa.infra.errors import InputError

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


def wait_progress(out: Output, awaiting: Any) -> Any:
    """A line every 5 s while callbacks are awaited (``awaiting``: until, timeout)."""
    last = [0.0]

    def show(done: int, expected: int, waited: float) -> None:
        if waited - last[0] >= 5.0 and done < expected:
            last[0] = waited
            out.stderr_line(f"waiting for callbacks: {done:,} of {expected:,} reached "
                            f"{awaiting.until} ({waited:.0f} of {awaiting.timeout:g} s)", "dim")

    return show


def render_single_trip(out: Output, done: Any) -> None:
    """One send's callbacks (a ctwa.send.job.JobOutcome that awaited them): the timeline,
    the anomalies, and what to do when they did not come; the --json document."""
    awaiting, msg_id, trip, events = done.job.awaiting, done.msg_id, done.trip, done.events
    verdict = done.verdict
    if out.json_mode:
        out.stdout_json({**done.result.as_dict(), "msgId": msg_id, "reached": done.reached,
                         "interrupted": done.interrupted,
                         "timeline": [{k: v for k, v in e.items() if k != "body"} for e in events],
                         "round_trip": trip.as_dict(), "outcome": verdict.outcome,
                         "criteria": [c.as_dict() for c in verdict.criteria]})
    else:
        out.stdout_result(f"callbacks for {msg_id}:")
        for event in events:
            _event_line(out, event)
        if not events:
            out.stdout_line("  (none)", "dim")
        _anomaly_lines(out, trip)
        diagnosis_lines(out, trip.diagnoses)
    if done.interrupted:
        out.stderr_line(
            f"interrupted while waiting; `ctwa trace {msg_id}` shows the callbacks that "
            "arrive later (while a listener keeps them)", "bold")
    elif not done.reached:
        from ctwa.roundtrip.diagnose import line

        why = "; ".join(line(d) for d in trip.diagnoses[:1])
        out.stderr_error(f"no {awaiting.until} status for {msg_id} within {awaiting.timeout:g} s"
                         + (f"; {why}" if why else ""))


def diagnosis_lines(out: Output, diagnoses: list[dict[str, Any]]) -> None:
    """Each cause the callbacks show: what was seen, what it means, what to change."""
    for diagnosis in diagnoses:
        style = "yellow" if diagnosis["cause"] == "warning" else "red"
        out.stdout_line(f"DIAGNOSIS {diagnosis['seen']}", style)
        out.stdout_line(f"  means: {diagnosis['meaning']}")
        out.stdout_line(f"  fix:   {diagnosis['fix']}")


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
    out.stdout_line(f"  +{event['after_ms']:>9,.0f} ms  {what}{code}  {event['route']}  {verdict}",
                    None if event["valid"] else "red")


def _anomaly_lines(out: Output, trip: Any) -> None:
    from ctwa.roundtrip.analyze import ANOMALY_TEXT

    for kind, count in trip.anomalies.items():
        example = trip.examples.get(kind, [""])[0]
        out.stdout_line(f"ANOMALY {kind}: {count:,} ({ANOMALY_TEXT[kind]})"
                        + (f", e.g. {example}" if example else ""), "red")


def render_round_trip(out: Output, trip: dict[str, Any]) -> None:
    from ctwa.roundtrip.analyze import ANOMALY_TEXT

    furthest = trip["furthest"]
    out.stdout_result(f"callbacks: of {trip['accepted']:,} accepted, furthest status: "
                      + ", ".join(f"{k} {v:,}" for k, v in furthest.items()))
    if trip["failed_codes"]:
        out.stdout_line("  failed by code: " + ", ".join(f"{code} x{n:,}" for code, n in
                                                         trip["failed_codes"].items()))
    for status, figures in trip["time_to_status_ms"].items():
        if figures:
            out.stdout_line(f"  time to {status} ms p50/p90/p99/max: "
                            + " / ".join(f"{figures[k]:g}" for k in ("p50", "p90", "p99", "max")))
    out.stdout_line(f"  reached {trip['until']} (or failed): {trip['complete']:,} of "
                    f"{trip['accepted']:,}; inbound replies: {trip['replies']:,}")
    if trip.get("only_invalid"):
        out.stdout_line(f"  of the {furthest['none']:,} that reached no status, "
                        f"{trip['only_invalid']:,} got only invalid callbacks")
    for kind, count in trip["anomalies"].items():
        example = trip["examples"].get(kind, [""])[0]
        out.stdout_line(f"ANOMALY {kind}: {count:,} ({ANOMALY_TEXT[kind]})"
                        + (f", e.g. {example}" if example else ""), "red")
    diagnosis_lines(out, trip.get("diagnoses", []))

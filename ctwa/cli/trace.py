"""``ctwa trace``: one message's story from the store, from what was sent to every callback it
caused, with delays and problems."""

import time
from typing import Annotated

import typer

from ctwa.cli.context import of
from ctwa.cli.roundtrip import _event_line, diagnosis_lines
from ctwa.infra.errors import InputError


def trace(
    ctx: typer.Context,
    msg_id: Annotated[str | None, typer.Argument(
        metavar="MSGID", help="The msgId of a message ctwa sent.")] = None,
    last: Annotated[bool, typer.Option("--last", help="The last message sent.")] = False,
) -> None:
    """One message's whole story from the store: what was sent and answered, then every
    callback in arrival order with its delay and problems, and the replies to it."""
    from ctwa.roundtrip.story import story

    inv = of(ctx)
    out = inv.out
    if (msg_id is None) == (not last):
        raise InputError("give a MSGID or --last", hint="e.g. `ctwa trace --last`")
    with inv.store(readonly=True) as store:
        told = story(store, msg_id, last=last)
    if out.json_mode:
        out.stdout_json(told)
        return
    send = told["send"]
    out.stdout_result(f"msgId {told['msgId']}")
    out.stdout_line(f"  sent {when(send['at'])} to {send.get('recipient') or '?'}: "
                    f"{send.get('kind') or '?'}" + (f" {send['template']}" if send.get("template")
                                                    else "") + f" -> {send.get('url') or '?'}")
    import json

    latency = send.get("latency_ms")
    answer = f"HTTP {send['http_status']}, " if send.get("http_status") else ""
    out.stdout_line(f"  answer: {send.get('verdict') or '?'} ({answer}"
                    f"{f'{latency:g} ms' if latency is not None else 'no answer'})"
                    + (f" {json.dumps(send['answer'], ensure_ascii=False)}" if send.get("answer")
                       else ""))
    if send.get("run"):
        out.stdout_line(f"  part of load run {send['run']}", "dim")
    for event in told["callbacks"]:
        _event_line(out, event)
    if not told["callbacks"]:
        out.stdout_line("  no callback has arrived for it", "yellow")
    diagnosis_lines(out, told.get("diagnoses", []))


def when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)

"""``ctwa load export --locust DIR COMMAND [its options]``: the load run a send command would
make, written as a Locust project (locustfile and scenario) for a distributed run."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.commands import Typer
from ctwa.cli.context import of
from ctwa.infra.errors import InputError

SEND_COMMANDS = ("send-template", "send-freeform", "validate-endpoint")

app = Typer(help="Load runs beyond one machine.", no_args_is_help=True)


@app.command("export", context_settings={"allow_extra_args": True,
                                         "ignore_unknown_options": True})
def export(
    ctx: typer.Context,
    locust: Annotated[Path, typer.Option(
        "--locust", metavar="DIR", help="Write the Locust project (locustfile.py, "
        "scenario.yaml) here.")],
    command: Annotated[str, typer.Argument(
        metavar="COMMAND", help="send-template, send-freeform or validate-endpoint, with "
        "its options (payload, recipients, endpoint, auth, --deadline, --concurrency).")],
) -> None:
    """Write ctwa's load scenario as a Locust project: the payloads ctwa builds, the
    recipients, the endpoint, auth by environment variable only, the deadline and criteria.

    e.g. ctwa load export --locust loadtest send-template --sample lto --to-file numbers.txt
    --endpoint URL --username acme"""
    from ctwa.cli.loadmode import export_locust
    from ctwa.cli.send import REQUESTS

    inv = of(ctx)
    out = inv.out
    if command not in SEND_COMMANDS:
        raise InputError(f"{command!r} cannot be exported",
                         hint="give one of " + ", ".join(SEND_COMMANDS) + " and its options")
    # the send command's own options, parsed by its own definition, make the request the
    # exporter writes: nothing is sent, and the root command is not run again
    root = ctx.find_root()
    send = root.command.get_command(root, command)  # type: ignore[attr-defined]
    parsed = send.make_context(command, list(ctx.args), parent=ctx)
    build: Any = REQUESTS[command]
    export_locust(out, build(inv, **parsed.params), locust)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="load")

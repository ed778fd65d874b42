"""``ctwa load export --locust DIR COMMAND [its options]``: the load run a send command would
make, written as a Locust project (locustfile and scenario) for a distributed run."""

from pathlib import Path
from typing import Annotated

import typer

from ctwa.cli.output import Output
from ctwa.infra.errors import InputError

SEND_COMMANDS = ("send-template", "send-freeform", "validate-endpoint")

app = typer.Typer(help="Load runs beyond one machine.", no_args_is_help=True)


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
    import typer.main

    from ctwa.cli.app import app as root_app

    out: Output = ctx.obj
    if command not in SEND_COMMANDS:
        raise InputError(f"{command!r} cannot be exported",
                         hint="give one of " + ", ".join(SEND_COMMANDS) + " and its options")
    given = [*(["--json"] if out.json_mode else []),
             *(["--profile", out.profile] if out.profile else [])]
    root = typer.main.get_command(root_app)
    root.main([*given, command, *ctx.args, "--export-locust", str(locust)], prog_name="ctwa",
              standalone_mode=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="load")

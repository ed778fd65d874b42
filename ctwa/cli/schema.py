"""``ctwa schema``: the JSON Schema of a wire format, to validate in your own services."""

import typer

from ctwa.cli.context import of
from ctwa.cli.lint import complete_schema_kind
from ctwa.infra.errors import InputError


def schema(
    ctx: typer.Context,
    kind: str = typer.Argument(
        None, autocompletion=complete_schema_kind, help="Wire format; omit to list them."
    ),
) -> None:
    """Print the JSON Schema of a wire format, to validate payloads in your own services."""
    from ctwa.wire.kinds import KINDS

    out = of(ctx).out
    if kind is None:
        if out.json_mode:
            out.stdout_json({name: spec.title for name, spec in KINDS.items()})
            return
        for name, spec in KINDS.items():
            out.stdout_line(f"{name:16} {spec.title}")
        return
    if kind not in KINDS:
        from ctwa.infra.suggest import did_you_mean

        raise InputError(f"unknown kind {kind!r}", hint=did_you_mean(
            kind, KINDS, "ctwa schema", otherwise=f"use one of {', '.join(KINDS)}"))
    out.stdout_json(KINDS[kind].json_schema())


def register(app: typer.Typer) -> None:
    app.command()(schema)

"""The root ``ctwa`` command: global options, sub-commands, and exit-code discipline.

Every failure surfaces as one line on stderr and an exit code from :class:`ExitCode`; only
``--debug`` lets a traceback through. Sub-command modules import their heavy dependencies
inside the command functions, so ``ctwa --help`` stays fast.
"""


from typing import Any

import typer
from typer.core import TyperGroup

from ctwa import __version__
from ctwa.cli.output import Output
from ctwa.infra import envvars
from ctwa.infra.errors import CtwaError, ExitCode
from ctwa.infra.masking import scrub


class CtwaGroup(TyperGroup):
    """Turns every exception from any sub-command into a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.TyperException):  # typer's own exits and usage errors
            raise
        except (KeyboardInterrupt, typer.Abort):
            _output(ctx).error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except CtwaError as exc:
            out = _output(ctx)
            if out.debug:
                raise
            out.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            out = _output(ctx)
            if out.debug:
                raise
            out.error(f"unexpected {type(exc).__name__}: {scrub(str(exc))}; this is a bug in "
                      "ctwa, rerun with --debug for the traceback and report it")
            raise typer.Exit(ExitCode.INTERNAL) from None


def _output(ctx: typer.Context) -> Output:
    obj = ctx.find_object(Output)
    return obj if obj is not None else Output()


app = typer.Typer(
    cls=CtwaGroup,
    name="ctwa",
    help="Operations tool for CleverTap's Generic WhatsApp integration: send CleverTap's "
    "exact payloads, lint wire formats, manage profiles and credentials.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: typer's rich help costs ~125 ms of start-up
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctwa {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: str = typer.Option(
        None, "--profile", "-p", envvar=envvars.PROFILE, show_envvar=True,
        help="Profile to use (default: the current one).",
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print one JSON document on stdout and nothing else there."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show requests and responses (secrets masked)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    ctx.obj = Output(json_mode=json_output, verbose=verbose or debug, debug=debug,
                     profile=profile)


def _register() -> None:
    from ctwa.cli import callbacks, demo, profiles, sandbox, send, templates, tools, users

    demo.register(app)
    sandbox.register(app)
    send.register(app)
    callbacks.register(app)
    templates.register(app)
    users.register(app)
    app.add_typer(profiles.app, name="profile")
    tools.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ctwa")

"""The root ``ctwa`` command: global options, sub-commands, and exit-code discipline.

Every failure surfaces as one line on stderr and an exit code from :class:`ExitCode`; only
``--debug`` lets a traceback through. Sub-command modules import their heavy dependencies
inside the command functions, so ``ctwa --help`` stays fast.
"""


from typing import Any

import typer

from ctwa import __version__
from ctwa.cli import complete
from ctwa.cli.commands import PlainGroup, Typer, duration_text
from ctwa.cli.context import Invocation, of
from ctwa.cli.output import Output
from ctwa.infra import envvars
from ctwa.infra.errors import CtwaError, ExitCode
from ctwa.infra.masking import scrub

#: Options of the root command that may also be given after the sub-command.
GLOBAL_FLAGS = frozenset({"--json", "--verbose", "-v", "--debug"})
GLOBAL_VALUED = frozenset({"--profile", "-p", "--store"})
GLOBAL_HELP = ("Global options, before or after the command: --json (one JSON document on "
               "stdout), -v/--verbose (requests and answers, secrets masked), --debug "
               "(tracebacks), -p/--profile NAME, --store FILE (the local store of sends and "
               "callbacks).")
EXIT_HELP = ("Exit codes: 0 all good; 1 the remote side reported failures or a check failed; "
             "2 usage error or invalid input; 3 could not reach the remote; 4 missing "
             "configuration or credentials; 130 interrupted.")


def hoist_globals(args: list[str]) -> list[str]:
    """Move global options found after the sub-command to the front, so that
    ``ctwa upload-users users.csv --json`` means what ``ctwa --json upload-users ...`` does.
    Everything after ``--`` is left alone."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in GLOBAL_FLAGS:
            hoisted.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(args):
            hoisted += [arg, args[i + 1]]
            i += 1
        elif arg.startswith(("--profile=", "--store=")) or (arg.startswith("-p") and len(arg) > 2
                                               and not arg.startswith("--")):
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def _default_with_unit(param: Any) -> None:
    """A duration option's default shown with its unit, ``[default: 10s]``: the duration
    parser reads it back the same."""
    if param.metavar == "DURATION" and isinstance(param.default, (int, float)) and not \
            isinstance(param.default, bool):
        param.default = duration_text(float(param.default))


def _document(command: Any) -> None:
    """Every command's help ends with the global options and the exit codes (its plain
    metavars are the command classes' doing: ctwa.cli.commands)."""
    extra = f"{GLOBAL_HELP}\n\n{EXIT_HELP}"
    command.epilog = f"{command.epilog}\n\n{extra}" if command.epilog else extra
    if command.help and not command.short_help:  # `ctwa --help` shows summaries whole
        command.short_help = " ".join(command.help.strip().split("\n\n")[0].split())
    for param in getattr(command, "params", []):
        _default_with_unit(param)
    for sub in getattr(command, "commands", {}).values():
        _document(sub)


class CtwaGroup(PlainGroup):
    """Turns every exception from any sub-command into a message and an exit code, takes the
    global options anywhere on the line, and documents them in every command's help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _document(command)
        for param in self.params:
            _default_with_unit(param)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_globals(list(args)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.TyperException):  # typer's own exits and usage errors
            raise
        except (KeyboardInterrupt, typer.Abort):
            _output(ctx).stderr_error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except CtwaError as exc:
            out = _output(ctx)
            if out.debug:
                raise
            out.stderr_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            out = _output(ctx)
            if out.debug:
                raise
            out.stderr_error(
                f"unexpected {type(exc).__name__}: {scrub(str(exc))}; this is a bug in "
                "ctwa, rerun with --debug for the traceback and report it")
            raise typer.Exit(ExitCode.INTERNAL) from None


def _output(ctx: typer.Context) -> Output:
    return of(ctx).out


app = Typer(
    cls=CtwaGroup,
    name="ctwa",
    help="Operations tool for CleverTap's Generic WhatsApp integration: send CleverTap's "
    "exact payloads (once or at campaign load), follow each message to its callbacks, "
    "certify a BSP, report and compare runs, lint wire formats, manage profiles and "
    "credentials.",
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
        None, "--profile", "-p", envvar=envvars.PROFILE, show_envvar=True, metavar="NAME",
        autocompletion=complete.profiles,
        help="Profile to use (default: the current one).",
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print one JSON document on stdout and nothing else there."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show requests and responses (secrets masked)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    store: str = typer.Option(
        None, "--store", envvar=envvars.STORE, show_envvar=True, metavar="FILE",
        help="The local store of sends, callbacks and runs (default: store.sqlite3 in ctwa's "
        "data directory)."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    if store:  # the environment carries it to every part of this run, worker processes too
        import os

        os.environ[envvars.STORE] = store
    ctx.obj = Invocation(Output(json_mode=json_output, verbose=verbose or debug, debug=debug),
                         profile_name=profile)


def _register() -> None:
    from ctwa.cli import (
        bridge,
        callbacks,
        certify,
        demo,
        lint,
        load,
        profiles,
        reports,
        sandbox,
        schema,
        send,
        store,
        templates,
        trace,
        users,
    )

    demo.register(app)
    sandbox.register(app)
    send.register(app)
    callbacks.register(app)
    trace.register(app)
    store.register(app)
    reports.register(app)
    certify.register(app)
    bridge.register(app)
    load.register(app)
    templates.register(app)
    users.register(app)
    app.add_typer(profiles.app, name="profile")
    lint.register(app)
    schema.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ctwa")

"""The classes every ctwa command and group is made of: help in plain words.

Typer shows what an option takes as Python type names (``<str>``, ``<int range>``,
``<list[Path]>``) and a required argument as ``{NAME}``. ctwa's help shows words instead: N
for numbers, FILE or DIR for paths, the choices, or a word for the option's name (one word per
idea across commands). This is done only through the public hooks of Typer and Click: the
command classes given with ``cls=`` (:class:`Typer` passes them for every command and group)
render the usage line (``collect_usage_pieces``) and the Arguments and Options sections
(``format_options``) from each parameter's public attributes and its help record. No
parameter, and none of Typer's or Click's own functions, is patched.

A note for whoever upgrades Typer: Typer 0.29 checks values with pydantic and no longer takes
``click_type=`` (a ``click.ParamType`` per option): passing it is a ``TypeError`` when the
module is imported, that is, ctwa crashes at start-up. Options that need their own wording
(durations, numbers) use ``parser=`` (see :mod:`ctwa.cli.options`), which Typer calls before
its own checks and whose ``typer.BadParameter`` reaches the user as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def duration_text(seconds: float) -> str:
    """A duration as an option takes it: 500ms, 10s, 2m."""
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


#: What an option takes, by the end of its name: one word per idea across commands.
_WORDS_BY_NAME = (("url", "URL"), ("endpoint", "URL"), ("to", "NUMBER"), ("waba", "NUMBER"),
                  ("header", "NAME"), ("header_name", "NAME"), ("username", "USER"),
                  ("auth", "basic|bearer|header|none"), ("track_clicks", "DOMAIN"),
                  ("id", "ID"), ("token", "TOKEN"), ("password", "PASSWORD"),
                  ("passcode", "PASSCODE"), ("language", "CODE"), ("host", "HOST"),
                  ("filename", "NAME"), ("expires", "TIME"), ("coupon", "CODE"),
                  ("location", "LAT,LONG"))


def plain_metavar(param: Any, shown: str) -> str:
    """A word for what an option takes instead of Typer's Python type names (``<str>``,
    ``<int range>``, ``<list[str]>``, given as ``shown``): its metavar when it has one, N for
    numbers, FILE for paths, the choices, or a word for the option's name."""
    if param.metavar:
        return str(param.metavar)
    inner = (shown or "").strip("<>")
    if inner.startswith(("int", "float")):
        return "N"
    if inner in ("path", "file", "directory") or inner.lower().startswith("list[path"):
        return "DIR" if _is_folder(param) else "FILE"
    if "|" in inner:
        return inner.removeprefix("list[").removesuffix("]")
    name = param.name or "value"
    for ending, word in _WORDS_BY_NAME:
        if name == ending or name.endswith("_" + ending):
            return word
    return name.upper()


def _is_folder(param: Any) -> bool:
    """A path option for a folder: its help speaks of a folder and of no file."""
    words = set(re.findall(r"[a-z]+", (getattr(param, "help", None) or "").lower()))
    return bool(words & {"folder", "directory"}) and not words & {"file", "files"}


def argument_word(param: Any) -> str:
    """An argument as usage and help show it: its metavar or its name in capitals, with
    ``...`` when it takes several."""
    word = str(param.metavar or (param.name or "value").upper())
    return word + ("..." if param.nargs != 1 and not word.endswith("...") else "")


def _option_names(param: Any) -> str:
    """An option's names as Click joins them: the short ones first."""
    return ", ".join(sorted(param.opts, key=lambda opt: len(opt) - len(opt.lstrip("-/"))))


def _takes_a_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


class PlainHelp:
    """The usage line and the Arguments and Options sections in plain words; mixed into
    Typer's command and group classes (it comes first in their bases)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS]``, then each argument in words (an optional one in brackets; Typer
        would put a required one in braces), then a group's ``COMMAND [ARGS]...``."""
        pieces = [self.options_metavar] if self.options_metavar else []  # type: ignore[attr-defined]
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if param.param_type_name == "argument":
                word = argument_word(param)
                pieces.append(word if param.required else f"[{word}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        if isinstance(self, TyperGroup):
            pieces.append(self.subcommand_metavar)
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            record = param.get_help_record(ctx)
            if record is None:
                continue
            names, help_text = record
            if param.param_type_name == "argument":
                arguments.append((argument_word(param), help_text))
            elif param.param_type_name == "option":
                if _takes_a_value(param):
                    word = plain_metavar(param, param.display_type(ctx))
                    names = f"{_option_names(param)} {word}"
                options.append((names, help_text))
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)
        if isinstance(self, TyperGroup):
            self.format_commands(ctx, formatter)


class PlainCommand(PlainHelp, TyperCommand):
    """A ctwa command: Typer's, with help in plain words."""


class PlainGroup(PlainHelp, TyperGroup):
    """A group of ctwa commands (``ctwa callback``, ``ctwa profile``): Typer's, with help in
    plain words."""


class Typer(typer.Typer):
    """``typer.Typer`` whose commands and groups are :class:`PlainCommand` and
    :class:`PlainGroup` unless ``cls=`` says otherwise: every ctwa sub-app is made with it."""

    def __init__(self, *args: Any, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, cls=cls or PlainGroup, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[Any], Any]:
        return super().command(name, cls=cls or PlainCommand, **kwargs)

"""Option types shared by every command, so one idea has one spelling and one parser."""

from __future__ import annotations

import math
from typing import Any

import typer


def seconds(value: str | float) -> float:
    """A duration with units (``500ms``, ``5s``, ``2m``); a bare number is seconds."""
    from ctwa.infra.durations import parse_duration
    from ctwa.infra.errors import InputError

    if isinstance(value, float):
        return value
    try:
        return parse_duration(value, "duration")
    except InputError:
        raise typer.BadParameter(f"{value!r} is not a duration: write e.g. 500ms, 5s or 2m "
                                 "(a bare number is seconds)") from None


def _in_range(kind: type, words: str, low: float | None, high: float | None) -> Any:
    """A ``parser=`` for Typer: the value as ``kind`` (int or float), within ``low`` and
    ``high`` (both included), or a ``typer.BadParameter`` in ctwa's words."""

    def parse(value: Any) -> Any:
        number: Any
        if isinstance(value, kind) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            try:
                number = kind(text)
            except (TypeError, ValueError):
                raise typer.BadParameter(f"{value!r} must be {words}") from None
            if kind is float and not math.isfinite(number):
                raise typer.BadParameter(f"{value!r} must be {words}")
        if low is not None and number < low:
            raise typer.BadParameter(f"{value!r} must be at least {low}")
        if high is not None and number > high:
            raise typer.BadParameter(f"{value!r} must be at most {high}")
        return number

    return parse


def int_option(*decls: Any, min: int | None = None, max: int | None = None, **kwargs: Any) -> Any:
    """``typer.Option`` for a whole number (metavar N), at least ``min`` and at most ``max``
    when given (the help shows the range): ``'abc' must be a whole number``, ``'0' must be
    at least 1``. Typer's own check would answer in pydantic's words."""
    kwargs.setdefault("metavar", "N")
    return typer.Option(*decls, min=min, max=max,
                        parser=_in_range(int, "a whole number", min, max), **kwargs)


def float_option(*decls: Any, min: float | None = None, max: float | None = None,
                 **kwargs: Any) -> Any:
    """``typer.Option`` for a number (metavar N), like :func:`int_option`: ``'x' must be a
    number``."""
    kwargs.setdefault("metavar", "N")
    return typer.Option(*decls, min=min, max=max,
                        parser=_in_range(float, "a number", min, max), **kwargs)

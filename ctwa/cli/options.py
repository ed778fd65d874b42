"""Option types shared by every command, so one idea has one spelling and one parser."""

from __future__ import annotations

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

"""One precedence rule for every setting ctwa reads, in every command:

command-line option > environment variable > profile > default.

A setting given on the command line also beats a profile value of another name that would
decide the same thing (``--region`` beats the profile's ``base_url``, ``--endpoint`` the
profile's endpoint and so its credentials); each such override is said in a note the
command prints with ``-v``, naming the profile value it overrode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT = "default"


@dataclass(frozen=True)
class Setting:
    """A value and where it came from: an option (``--region``), an environment variable
    (``CTWA_ACCOUNT_ID``), ``profile`` or ``default``."""

    value: Any
    source: str


def choose(*candidates: tuple[str, Any], default: Any = None) -> Setting:
    """The first candidate given (not None, not empty), in the order passed: option,
    environment, profile; else the default."""
    for source, value in candidates:
        if value is not None and value != "":
            return Setting(value, source)
    return Setting(default, DEFAULT)


def overrode(option: str, value: Any, field: str, profile_value: Any) -> str:
    """The -v note for an option that overrode a profile value."""
    shown = f" {value}" if value not in (None, True) else ""
    return f"{option}{shown} overrides the profile's {field} ({profile_value})"

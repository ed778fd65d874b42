"""Phone numbers as CleverTap's payloads carry them: digits with the country code, with or
without ``+`` (the spec sends both). Shared by the send commands and profile settings."""

from __future__ import annotations

import re

from ctwa.infra.errors import InputError

_PHONE = re.compile(r"^\+?\d{6,15}$")


def check_phone(number: str, option: str = "--to") -> str:
    """A number with or without ``+`` (CleverTap sends both); spaces and dashes removed."""
    cleaned = re.sub(r"[\s-]", "", number)
    if not _PHONE.match(cleaned):
        raise InputError(f"{option} {number!r} is not a phone number",
                         hint="digits with country code, with or without +, e.g. 919876543210")
    return cleaned

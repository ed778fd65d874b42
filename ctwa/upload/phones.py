"""Phone numbers to E.164, as phonenumbers decides, at a fraction of its cost per number.

``phonenumbers.parse`` spends most of its ~20 us normalising free-form input. Numbers in CSV
exports are mostly already ``+<country><number>``; for those the country code and national
number are read off directly and only ``is_valid_number`` runs. Whenever the shortcut could
differ from ``parse`` (a national number that starts with 0 or with the region's national
prefix) or says "invalid", the full ``parse`` decides, so the verdict and the reason are
always phonenumbers' own. A property test holds the two paths equal.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

_STRICT = re.compile(r"\+[1-9][0-9]{6,16}")


@lru_cache(maxsize=512)
def _prefix_for_parsing(country_code: int) -> Any:
    """The region's national-prefix pattern (what ``parse`` would strip), or None."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return False  # no metadata: let parse decide
    pattern = metadata.national_prefix_for_parsing
    return re.compile(pattern) if pattern else None


def _fast(text: str) -> str | None:
    """``text`` itself when it is strict E.164 and valid, else None (not decided here)."""
    if not _STRICT.fullmatch(text):
        return None
    digits = text[1:]
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if len(national) < 2 or national[0] == "0":
        return None
    prefix = _prefix_for_parsing(country_code)
    if prefix is False or (prefix is not None and prefix.match(national)):
        return None
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    return text if phonenumbers.is_valid_number(number) else None


def to_e164(raw: str, region: str | None) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, the reason it is not usable)."""
    text = raw.strip()
    fast = _fast(text)
    if fast is not None:
        return fast, None
    if not any(c.isdigit() for c in text) or any(c.isalpha() for c in text):
        return None, (f"phone {text!r} is not a phone number; write it as +<country><number>, "
                      "e.g. +14155551234")
    if not text.startswith("+") and region is None:
        return None, ("phone has no + and country code; write it as +<country><number>, or "
                      "pass --default-region")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        detail = re.sub(r"^\(\d+\)\s*", "", str(exc)).rstrip(".")
        return None, f"phone {text!r} cannot be read: {detail}"
    if not phonenumbers.is_valid_number(number):
        return None, f"phone {text!r} is not a valid number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None

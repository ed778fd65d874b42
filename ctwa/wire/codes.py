"""Error and result codes of the contract, with their meanings (spec + FACTS.md)."""

from __future__ import annotations

#: In a messaging endpoint's 200 answer: ``{"status": "failure", "error": {"code": ...}}``.
MESSAGING_ERRORS: dict[int, str] = {
    2000: "invalid credentials",
    2001: "invalid template parameters",
    2002: "invalid phone number",
    2003: "phone number not subscribed",
    2004: "other (shows as a generic miscellaneous error in campaign stats)",
}

#: In a failed status callback: ``statuses[].error.code``.
CALLBACK_ERRORS: dict[int, str] = {
    1000: "Invalid credentials",
    1001: "Invalid template parameters",
    1002: "Invalid phone number",
    1003: "The phone number is no longer active",
    1004: "Too many send requests to phone numbers",
    1005: "The phone number is temporarily unavailable or not in the provider network",
    1006: "Phone number is blacklisted",
    1007: "User device can't receive the message",
    1008: "This message is sent outside of the WhatsApp chat window",
    1009: "Other",
    1010: "WhatsApp Message Blocked by Meta",
}

#: Per-record codes in a CleverTap upload answer's ``unprocessed[]``.
UPLOAD_RECORD_ERRORS: dict[int, str] = {
    514: "invalid gender",
    515: "invalid email",
    516: "invalid phone",
    517: "invalid employment",
    518: "invalid education",
    519: "invalid marital status",
    520: "invalid age",
    523: "missing identity",
    524: "neither event nor profile",
    525: "timestamp not in epoch",
    526: "invalid objectId",
    555: "miscellaneous server error",
}

#: Codes that CleverTap's campaign stats lump into "generic miscellaneous errors".
GENERIC_MISC_CODES = frozenset({2004, 1009})


def messaging_error_meaning(code: int | None) -> str:
    if code is None:
        return "no error code given"
    return MESSAGING_ERRORS.get(code, f"unknown code {code} (the contract defines 2000-2004)")


def callback_error_title(code: int) -> str | None:
    return CALLBACK_ERRORS.get(code)

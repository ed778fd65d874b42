"""Error and result codes of the contract, with their meanings (spec + FACTS.md)."""

from __future__ import annotations

from typing import Any

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


#: Words a failure title uses for each callback code's meaning, most specific first (1010
#: before 1006: "blocked by Meta" is not a blacklisted number). What a middleware writes in
#: ``error.title`` is compared with these to tell a title that contradicts its code (ERRATA 19).
_TITLE_WORDS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1010, ("blocked by meta", "meta blocked", "blocked by whatsapp")),
    (1008, ("chat window", "24 hour", "24-hour", "customer service window",
            "re-engagement", "reengagement")),
    (1004, ("too many", "rate limit", "throttl", "spam rate")),
    (1003, ("no longer active", "not active", "inactive number", "deactivated")),
    (1005, ("temporarily unavailable", "provider network", "not in the network")),
    (1006, ("blacklist", "blocklist", "black list", "block list", "opted out", "opt-out",
            "stopped marketing")),
    (1007, ("can't receive", "cannot receive", "can not receive", "undeliverable",
            "not a whatsapp user", "not on whatsapp", "device")),
    (1000, ("credential", "unauthori", "authentication", "access token", "invalid token")),
    (1001, ("template param", "invalid param", "parameter", "template")),
    (1002, ("invalid phone", "invalid number", "invalid mobile", "invalid recipient",
            "phone number is invalid", "wrong number", "invalid msisdn")),
)

#: The messaging API's codes (answer) that name the same failure as a callback code.
_MESSAGING_TO_CALLBACK = {2000: 1000, 2001: 1001, 2002: 1002, 2004: 1009}


def _plain_title(title: str) -> str:
    return " ".join(title.lower().replace("’", "'").strip(" .!").split())


def title_codes(title: str) -> list[int]:
    """The callback codes whose meaning a failure title names (none for "Other" or for a
    title the table does not recognise)."""
    plain = _plain_title(title)
    if not plain:
        return []
    exact = [code for code, text in CALLBACK_ERRORS.items() if _plain_title(text) == plain]
    if exact:
        return exact
    return [code for code, words in _TITLE_WORDS if any(w in plain for w in words)]


def contradicting_title(code: int, title: str) -> int | None:
    """The code a title belongs to when it names another code's meaning than ``code``'s
    (the spec's own sample pairs 1004 with "Invalid phone number.", ERRATA 19)."""
    found = title_codes(title)
    if not found or code in found or code not in CALLBACK_ERRORS:
        return None
    return found[0]


def closest_callback_code(code: Any, title: str | None = None,
                          meta_codes: dict[int, int] | None = None) -> tuple[int, str]:
    """For a failure code outside 1000-1010: the table's code with the closest meaning, and
    why (the title's meaning, Meta's code, the messaging API's code; else 1009, Other)."""
    if title:
        found = title_codes(title)
        if found:
            return found[0], f'the title "{title[:60]}" is its meaning'
    if isinstance(code, int) and not isinstance(code, bool):
        if meta_codes and code in meta_codes:
            return meta_codes[code], f"{code} is Meta's error code, which CleverTap's table " \
                "maps so"
        if code in _MESSAGING_TO_CALLBACK:
            return _MESSAGING_TO_CALLBACK[code], f"{code} is the messaging answer's code for " \
                "the same failure"
        if 100 <= code <= 599:
            return 1009, f"{code} looks like an HTTP status, not a WhatsApp failure"
    return 1009, "no code in the table fits"

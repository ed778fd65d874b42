"""Remote text made safe once, where it enters: every writer can then take it.

A BSP's answer, a vendor's template, a callback's msgId or a user's profile name can hold
anything: a lone surrogate (half an emoji, which no UTF-8 writer accepts), control characters
(ESC and OSC sequences that drive the terminal, characters XML 1.0 forbids), Rich markup, or a
secret echoed back. :func:`safe_text` and :func:`safe_value` turn such text into text that the
terminal, JSON, NDJSON, XML and HTML writers all take as it is:

- lone surrogates become U+FFFD (the replacement character);
- control characters (C0, DEL, C1) and the two non-characters U+FFFE/U+FFFF are written as
  visible escapes (``\\x1b``, ``\\x85``, ``\\ufffe``); line breaks (a CRLF as LF) and tabs
  are kept in multi-line text (``keep_lines=True``), escaped in one-line fields;
- registered secrets and credential forms are masked (:func:`ctwa.infra.masking.scrub`),
  on the value itself, never on serialised text;
- a text longer than ``limit`` characters is cut, saying so.

Rich markup is not escaped here: it is not dangerous to a file, only to Rich, so the terminal
layer (``ctwa.cli.output``) escapes it, or renders the text as ``rich.text.Text``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ctwa.infra.masking import needs_scrub, scrub

#: The longest remote text kept in one field (a whole answer body is capped where it is read).
DEFAULT_LIMIT = 100_000

# C0 controls but tab and line feed, DEL, C1 controls, U+FFFE/U+FFFF, and lone surrogates.
_UNSAFE_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, keep_lines: bool = True) -> str:
    """``text`` with lone surrogates replaced and control characters escaped (no masking)."""
    pattern = _UNSAFE_LINES if keep_lines else _UNSAFE_ONE_LINE
    if pattern.search(text) is None:
        return text
    if keep_lines and "\r\n" in text:  # a Windows line end is a line end, not a CR shown
        text = text.replace("\r\n", "\n")
    return pattern.sub(_escape, text)


def safe_text(text: str, *, keep_lines: bool = True, limit: int | None = DEFAULT_LIMIT) -> str:
    """One remote text fit for every writer: surrogates replaced, controls escaped, secrets
    masked, at most ``limit`` characters (then cut, saying how long it was)."""
    if limit is not None and len(text) > limit:  # cut to ``limit`` in all: cutting is idempotent
        note = f"... ({len(text):,} characters)"
        text = text[:max(0, limit - len(note))] + note
    return scrub(escape_controls(text, keep_lines))


def safe_value(value: Any, *, keep_lines: bool = True, limit: int | None = DEFAULT_LIMIT) -> Any:
    """A decoded document (dicts, lists, strings, numbers) with every string, keys included,
    made safe by :func:`safe_text`. Other values are kept as they are."""
    if isinstance(value, str):
        return safe_text(value, keep_lines=keep_lines, limit=limit)
    if isinstance(value, Mapping):
        return {(safe_text(k, keep_lines=False, limit=limit) if isinstance(k, str) else k):
                safe_value(v, keep_lines=keep_lines, limit=limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_value(v, keep_lines=keep_lines, limit=limit) for v in value]
    return value


def json_ready(value: Any) -> Any:
    """``value`` with what ``json.dumps(default=str)`` would stringify turned into strings
    first, so that those strings are made safe and masked too."""
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k):
                json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def mask_value(value: Any) -> Any:
    """A document with every string (keys included) masked, and nothing else changed: for
    documents whose text was made safe where it entered, or that ctwa wrote itself."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {(scrub(k) if isinstance(k, str) else k): mask_value(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_path(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first string (or key) holding a lone surrogate, or None: such a
    document cannot be written as UTF-8, so it is refused by name rather than stored."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{escape_controls(str(key), keep_lines=False)}"
            if isinstance(key, str) and _SURROGATE.search(key):
                return where
            found = surrogate_path(item, where)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            found = surrogate_path(item, f"{path}[{n}]")
            if found:
                return found
    return None


#: What ``json.dumps(ensure_ascii=False)`` leaves raw but no terminal or UTF-8 writer should
#: get: DEL, C1 controls, U+2028/U+2029, the non-characters, lone surrogates.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")


def dumps_safe(value: Any, **options: Any) -> str:
    """A JSON text of ``value`` that is masked on its values (never on the text) and holds no
    raw control character or lone surrogate, yet parses back to the same values: json.dumps
    escapes C0 controls; the rest are written as ``\\uXXXX`` escapes, which JSON allows in
    strings (and they can only be in strings)."""
    try:  # most documents hold no secret: serialised once, then checked as a whole
        text = json.dumps(value, ensure_ascii=False, default=str, **options)
    except (TypeError, ValueError):  # a key json cannot take: json_ready makes it a string
        text = ""
    # an escape (\\u0001) can hide a URL's password or query value from a test on the text:
    # then the values are masked one by one whatever the test says
    escaped = "\\" in text and ("@" in text or "=" in text)
    if not text or escaped or needs_scrub(text):
        text = json.dumps(mask_value(json_ready(value)), ensure_ascii=False, **options)
    if _JSON_RAW.search(text) is None:
        return text
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def has_unsafe(text: str, keep_lines: bool = True) -> bool:
    """Whether ``text`` holds a character :func:`escape_controls` would change."""
    pattern = _UNSAFE_LINES if keep_lines else _UNSAFE_ONE_LINE
    return pattern.search(text) is not None

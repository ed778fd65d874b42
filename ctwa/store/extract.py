"""The store's rows for one received callback, found even in callbacks that break the contract
(a Meta webhook, a wrong code): the round trip must still tie them to the message they are
about, and name what is wrong with them."""

from __future__ import annotations

from typing import Any

from ctwa.store.records import CallbackRecord

#: The store's codes fit SQLite's INTEGER; a longer one (5000 digits) is no code.
_MAX_CODE = 10 ** 18


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_MAX_CODE < value < _MAX_CODE else None
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 18:
        return int(value)
    return None


def _entries(document: Any, kind: str) -> list[tuple[str | None, str | None, int | None]]:
    """(msgId, status, code) for each thing the callback reports (inside a known envelope
    such as ``{url, payload}`` too: the message it is about must still be found)."""
    from ctwa.wire.callbacks import find_wrapper

    wrapped = find_wrapper(document)
    if wrapped is not None:
        document = wrapped.inner
        if kind not in ("status", "inbound", "meta-webhook"):
            kind = "status" if isinstance(document, dict) and "statuses" in document \
                else "inbound"
    if not isinstance(document, dict):
        return [(None, None, None)]
    if kind == "meta-webhook" or ("entry" in document and "statuses" not in document):
        return _meta_entries(document) or [(None, None, None)]
    if kind == "status" or "statuses" in document:
        statuses = document.get("statuses")
        found = []
        for entry in statuses if isinstance(statuses, list) else []:
            if isinstance(entry, dict):
                error = entry.get("error")
                code = _code(error.get("code")) if isinstance(error, dict) else None
                found.append((_text(entry.get("msgId")), _text(entry.get("status")), code))
        return found or [(None, None, None)]
    if kind == "inbound":
        context = document.get("context")
        reply_to = _text(context.get("id")) if isinstance(context, dict) else None
        return [(reply_to, _text(document.get("type")), None)]
    return [(None, None, None)]


def _meta_entries(document: dict[str, Any]) -> list[tuple[str | None, str | None, int | None]]:
    found: list[tuple[str | None, str | None, int | None]] = []
    for entry in _list(document.get("entry")):
        for change in _list(entry.get("changes") if isinstance(entry, dict) else None):
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            for status in _list(value.get("statuses")):
                if isinstance(status, dict):
                    errors = _list(status.get("errors"))
                    code = _code(errors[0].get("code")) if errors and isinstance(
                        errors[0], dict) else None
                    found.append((_text(status.get("id")), _text(status.get("status")), code))
            for message in _list(value.get("messages")):
                if isinstance(message, dict):
                    context = message.get("context")
                    reply_to = _text(context.get("id")) if isinstance(context, dict) else None
                    found.append((reply_to, _text(message.get("type")), None))
    return found


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def callback_records(document: Any, kind: str | None, route: str, at: float, body: str,
                     problems: list[str], warnings: list[str] | None = None
                     ) -> list[CallbackRecord]:
    """One row per status entry (or one for an inbound message), valid when no problems;
    its warnings are kept after the problems, each starting ``warning:``."""
    kind = kind or "unknown"
    noted = problems + [f"warning: {w}" for w in warnings or []]
    return [CallbackRecord(at=at, route=route, kind=kind, msg_id=msg_id, status=status,
                           code=code, valid=not problems, problems=noted, body=body)
            for msg_id, status, code in _entries(document, kind)]

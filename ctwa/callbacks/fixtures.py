"""Callback fixtures: a YAML file of ``vars``, ``defaults`` and an ordered list of ``events``
that becomes the exact HTTP bodies a BSP would send to CleverTap's callback URLs.

Values may hold ``{{ name }}`` references: ``vars``, ``{{ env.NAME | default }}``, built-ins
(``now``, ``uuid``, ``msg_id``) and fields of earlier named events (``{{ first.msgId }}``).
Every error names the file, the line and the field.
"""

from __future__ import annotations

import difflib
import os
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ctwa.callbacks.yamlpos import Located, load_located
from ctwa.infra import durations
from ctwa.infra.errors import InputError
from ctwa.send.msgid import MsgIdFactory
from ctwa.wire.callbacks import CALLBACK_VERSION, INBOUND_TYPES, STATUSES
from ctwa.wire.codes import CALLBACK_ERRORS

Target = Literal["status", "inbound"]
_REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
BUILTINS = ("now", "uuid", "msg_id")
EVENT_KEYS = {"status", "inbound", "raw", "messages"}
_STATUS_FIELDS = {"name", "status", "msgId", "timestamp", "error", "url", "shortUrl",
                  "userAgent", "after"}
_INBOUND_FIELDS = {"name", "inbound", "from", "wabaNumber", "timestamp", "context", "after",
                   "text", "image", "video", "audio", "document", "file", "location"}
_VOLUME_FIELDS = {"messages", "statuses", "failure_rate", "failure_code", "reply_rate",
                  "reply_text", "from", "wabaNumber", "seed", "after"}


@dataclass
class Planned:
    """One callback request: where it goes, its body, and how long to wait before it."""

    target: Target
    body: dict[str, Any]
    after: float = 0.0
    name: str | None = None
    line: int = 0
    source: str = ""

    @property
    def label(self) -> str:
        if self.target == "status":
            entries = _entries(self.body.get("statuses")) or [{}]
            kinds = ",".join(str(e.get("status", "?")) for e in entries)
            return f"status {kinds}"
        return f"inbound {self.body.get('type', '?')}"

    @property
    def msg_id(self) -> str:
        if self.target == "status":
            ids = {str(e.get("msgId")) for e in _entries(self.body.get("statuses"))}
            return ",".join(sorted(ids))
        context = self.body.get("context")
        return str(context.get("id")) if isinstance(context, dict) else "-"


def _entries(statuses: Any) -> list[dict[str, Any]]:
    """The mappings in a body's ``statuses`` (whatever a hand-written file put there)."""
    return [e for e in statuses if isinstance(e, dict)] if isinstance(statuses, list) else []


@dataclass
class Fixture:
    path: Path
    events: list[Planned] = field(default_factory=list)


def parse_duration(value: Any, where: str) -> float:
    """A fixture's ``after``: ``500ms``, ``2s``, ``1.5s``, ``1m``; a bare number is ms."""
    return durations.parse_duration(value, f"{where}: after", bare_unit="ms")


@dataclass
class _Context:
    path: Path
    vars: dict[str, Any]
    named: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: MsgIdFactory = field(default_factory=MsgIdFactory)
    max_events: int = 1_000_000

    def where(self, line: int, field_name: str) -> str:
        return f"{self.path}:{line}: {field_name}"

    def resolve(self, value: Any, line: int, field_name: str) -> Any:
        if isinstance(value, str):
            return self._string(value, line, field_name)
        if isinstance(value, Located):
            out = Located()
            out.line, out.key_lines = value.line, value.key_lines
            for key, item in value.items():
                out[key] = self.resolve(item, value.line_of(key), f"{field_name}.{key}")
            return out
        if isinstance(value, dict):
            return {k: self.resolve(v, line, f"{field_name}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, line, f"{field_name}[{i}]") for i, v in enumerate(value)]
        return value

    def _string(self, text: str, line: int, field_name: str) -> Any:
        whole = _REFERENCE.fullmatch(text.strip())
        if whole:
            return self._lookup(whole.group(1), line, field_name)
        return _REFERENCE.sub(lambda m: str(self._lookup(m.group(1), line, field_name)), text)

    def _lookup(self, expression: str, line: int, field_name: str) -> Any:
        name, _, default = (part.strip() for part in expression.partition("|"))
        if name == "now":
            return str(int(time.time()))
        if name == "uuid":
            return str(uuid.uuid4())
        if name == "msg_id":
            return self.ids.next()
        if name.startswith("env."):
            value = os.environ.get(name[4:])
            if value is None and not default and "|" not in expression:
                raise InputError(f"{self.where(line, field_name)}: environment variable "
                                 f"{name[4:]} is not set",
                                 hint=f"set it, or give a default: {{{{ {name} | value }}}}")
            return value if value is not None else default
        head, _, rest = name.partition(".")
        if head in self.named:
            event = self.named[head]
            if not rest:
                raise InputError(f"{self.where(line, field_name)}: {{{{ {name} }}}} names an "
                                 "event; name one of its fields",
                                 hint=f"e.g. {{{{ {head}.msgId }}}}")
            if rest not in event:
                hint = _did_you_mean(rest, list(event))
                raise InputError(f"{self.where(line, field_name)}: event {head!r} has no field "
                                 f"{rest!r}", hint=hint)
            return event[rest]
        if name in self.vars and not rest:
            return self.vars[name]
        known = [*self.vars, *BUILTINS, *self.named, "env.NAME"]
        raise InputError(f"{self.where(line, field_name)}: unknown reference {{{{ {name} }}}}",
                         hint=_did_you_mean(name, known) or f"known: {', '.join(known)}")


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _only(event: Located, allowed: set[str], what: str, ctx: _Context) -> None:
    """Refuse a field the event kind does not have, naming its line and the closest one."""
    unknown = sorted(set(event) - allowed)
    if unknown:
        raise InputError(f"{ctx.where(event.line_of(unknown[0]), unknown[0])}: not a field of "
                         f"{what}", hint=_did_you_mean(unknown[0], sorted(allowed)))


def _timestamp(value: Any) -> str:
    return str(int(time.time())) if value is None else str(value)


def _status_event(event: Located, ctx: _Context) -> Planned:
    _only(event, _STATUS_FIELDS, "a status event", ctx)
    status = str(event["status"])
    if status not in STATUSES:
        raise InputError(f"{ctx.where(event.line_of('status'), 'status')}: {status!r} is not "
                         f"a status", hint=f"use one of {', '.join(STATUSES)}")
    if "msgId" not in event:
        raise InputError(f"{ctx.where(event.line, 'msgId')}: a status event needs msgId",
                         hint="e.g. msgId: '{{ msg_id }}' or '{{ first.msgId }}'")
    entry: dict[str, Any] = {"msgId": ctx.resolve(event["msgId"], event.line_of("msgId"),
                                                  "msgId"),
                             "status": status}
    timestamp = ctx.resolve(event.get("timestamp"), event.line_of("timestamp"), "timestamp")
    entry["timestamp"] = _timestamp(timestamp)
    if status == "failed":
        entry["error"] = _error(ctx.resolve(event.get("error"), event.line_of("error"),
                                            "error"), ctx, event.line_of("error"))
    if status == "clicked":
        for key in ("url", "shortUrl", "userAgent"):
            if key in event:
                entry[key] = ctx.resolve(event[key], event.line_of(key), key)
    body = {"payloadVersion": CALLBACK_VERSION, "statuses": [entry]}
    return Planned("status", body, line=event.line)


def _error(value: Any, ctx: _Context, line: int) -> dict[str, Any]:
    if value is None:
        raise InputError(f"{ctx.where(line, 'error')}: a failed status needs error.code",
                         hint="e.g. error: {code: 1002} (the title is filled in)")
    error = {"code": value} if not isinstance(value, dict) else dict(value)
    try:
        code = int(error["code"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise InputError(f"{ctx.where(line, 'error.code')}: needs a number from 1000 to 1010",
                         hint="see the callback error codes in the spec") from None
    if code not in CALLBACK_ERRORS:
        raise InputError(f"{ctx.where(line, 'error.code')}: {code} is not a callback error "
                         "code", hint="use 1000-1010")
    return {"code": code, "title": str(error.get("title") or CALLBACK_ERRORS[code])}


_MEDIA_KEY = {"image": "image", "video": "video", "audio": "audio", "file": "document",
              "location": "location", "text": "text"}


def _inbound_event(event: Located, ctx: _Context) -> Planned:
    _only(event, _INBOUND_FIELDS, "an inbound event", ctx)
    kind = str(event["inbound"])
    if kind not in INBOUND_TYPES:
        raise InputError(f"{ctx.where(event.line_of('inbound'), 'inbound')}: {kind!r} is not "
                         "an inbound type", hint=f"use one of {', '.join(INBOUND_TYPES)}")
    resolved = {k: ctx.resolve(v, event.line_of(k), k) for k, v in event.items()}
    body: dict[str, Any] = {"payloadVersion": CALLBACK_VERSION}
    for key in ("from", "wabaNumber"):
        value = resolved.get(key)
        if value is None:
            raise InputError(f"{ctx.where(event.line, key)}: an inbound event needs {key!r}",
                             hint=f"give it here or under defaults: {{{key}: ...}}")
        body[key] = str(value)
    body["timestamp"] = _timestamp(resolved.get("timestamp"))
    body["type"] = kind
    context = resolved.get("context")
    if context is not None:
        body["context"] = context if isinstance(context, dict) else {"id": str(context)}
    key = _MEDIA_KEY[kind]
    content = resolved.get(key, resolved.get("file") if kind == "file" else None)
    if content is None:
        raise InputError(f"{ctx.where(event.line, key)}: an inbound {kind} needs {key!r}",
                         hint="e.g. text: Hello" if kind == "text" else
                         f"e.g. {key}: {{mediaURL: https://...}}")
    if kind == "text" and not isinstance(content, dict):
        content = {"body": str(content)}
    body[key] = dict(content) if isinstance(content, dict) else content
    return Planned("inbound", body, line=event.line)


def _raw_event(event: Located, ctx: _Context) -> Planned:
    raw = event.get("raw")
    if not isinstance(raw, dict):
        raise InputError(f"{ctx.where(event.line_of('raw'), 'raw')}: a raw body is a mapping",
                         hint='e.g. raw: {"payloadVersion": "0.1", "statuses": [...]}')
    target = event.get("to", "status" if "statuses" in raw else "inbound")
    if target not in ("status", "inbound"):
        raise InputError(f"{ctx.where(event.line_of('to'), 'to')}: raw events go to status or "
                         "inbound")
    literal = event.get("literal") is True  # recorded: never read as template syntax
    body = raw if literal else ctx.resolve(raw, event.line_of("raw"), "raw")
    if not isinstance(body, dict):
        raise InputError(f"{ctx.where(event.line_of('raw'), 'raw')}: a raw body is a mapping")
    return Planned(target, _json_values(dict(body), ctx.where(event.line_of("raw"), "raw")),
                   line=event.line)


def _json_values(value: Any, where: str) -> Any:
    """A loaded YAML value as plain dicts and lists (no line bookkeeping), with what JSON has
    no form for: dates and times become their ISO text (YAML reads ``2024-01-01`` as a date),
    binary (``!!binary``) is refused; the rest is kept."""
    import datetime

    if isinstance(value, dict):
        return {str(k): _json_values(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_values(v, where) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, set)):
        raise InputError(f"{where}: {type(value).__name__} values cannot be sent as JSON",
                         hint="write the value as text")
    return value


def _volume(event: Located, ctx: _Context) -> Iterator[Planned]:
    """``messages: N`` with ``statuses: [...]``: N messages' callbacks, for volume tests."""
    _only(event, _VOLUME_FIELDS, "a volume event", ctx)
    try:
        count = int(event["messages"])
        failure_rate = float(event.get("failure_rate", 0))
        reply_rate = float(event.get("reply_rate", 0))
        code = int(event.get("failure_code", 1009))
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{ctx.where(event.line, 'messages')}: messages, failure_rate, "
                         "reply_rate and failure_code are numbers") from None
    if count < 1 or not 0 <= failure_rate <= 1 or not 0 <= reply_rate <= 1:
        raise InputError(f"{ctx.where(event.line, 'messages')}: messages >= 1 and rates "
                         "between 0 and 1")
    if count > ctx.max_events:
        raise InputError(f"{ctx.where(event.line, 'messages')}: {count:,} messages is over the "
                         f"limit of {ctx.max_events:,} events per run",
                         hint="raise it with --max-events if you mean it")
    ctx.max_events -= count
    if code not in CALLBACK_ERRORS:
        raise InputError(f"{ctx.where(event.line_of('failure_code'), 'failure_code')}: {code} "
                         "is not a callback error code", hint="use 1000-1010")
    seed = event.get("seed", 0)
    if not isinstance(seed, (int, str)) or isinstance(seed, bool):
        raise InputError(f"{ctx.where(event.line_of('seed'), 'seed')}: a seed is a number "
                         "or a word")
    statuses = event.get("statuses", ["sent", "delivered", "read"])
    if not isinstance(statuses, list) or any(s not in STATUSES for s in statuses):
        raise InputError(f"{ctx.where(event.line_of('statuses'), 'statuses')}: a list of "
                         f"{', '.join(STATUSES)}")
    rng = random.Random(seed)
    now = str(int(time.time()))
    sender = str(ctx.resolve(event.get("from", "919000000001"),
                             event.line, "from"))
    waba = str(ctx.resolve(event.get("wabaNumber", "919000000000"),
                           event.line, "wabaNumber"))
    for _ in range(count):
        msg_id = ctx.ids.next()
        failed = rng.random() < failure_rate
        for status in statuses:
            if failed and status in ("delivered", "read", "clicked"):
                continue
            entry: dict[str, Any] = {"msgId": msg_id, "status": status, "timestamp": now}
            if status == "clicked":
                entry["url"] = "https://example.com/offer"
            yield Planned("status", {"payloadVersion": CALLBACK_VERSION, "statuses": [entry]},
                          line=event.line)
        if failed:
            entry = {"msgId": msg_id, "status": "failed", "timestamp": now,
                     "error": {"code": code, "title": CALLBACK_ERRORS.get(code, "Other")}}
            yield Planned("status", {"payloadVersion": CALLBACK_VERSION, "statuses": [entry]},
                          line=event.line)
        elif rng.random() < reply_rate:
            yield Planned("inbound", {"payloadVersion": CALLBACK_VERSION, "from": sender,
                                      "wabaNumber": waba, "timestamp": now, "type": "text",
                                      "context": {"id": msg_id},
                                      "text": {"body": str(event.get("reply_text", "Yes"))}},
                          line=event.line)


_DEFAULTABLE = {
    "status": _STATUS_FIELDS - {"name", "status", "msgId"},
    "inbound": _INBOUND_FIELDS - {"name", "inbound"},
    "messages": _VOLUME_FIELDS - {"messages"},
    "raw": {"after", "to"},
}


def _with_defaults(event: Located, defaults: dict[str, Any], kind: str) -> Located:
    """The event with every default its kind can take and it does not set itself."""
    merged = Located(event)
    merged.line, merged.key_lines = event.line, dict(event.key_lines)
    for key, value in defaults.items():
        if key in _DEFAULTABLE[kind] and key not in merged:
            merged[key] = value
    return merged


def load_callback_documents(path: Path) -> Fixture | None:
    """A file of plain CleverTap callbacks (``callback convert``'s output, a saved JSON body),
    or None when the file is a fixture. Each document goes to its route as it is: recorded and
    converted values are literal, never expanded."""
    from ctwa.wire.lint import load_documents
    from ctwa.wire.webhook import CONVERT_HINT, is_meta_webhook

    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        return None
    try:
        documents = load_documents(path)
    except InputError:
        return None  # load_fixture reports it, with the line
    if not documents or any(not isinstance(doc, dict) or "events" in doc
                            for _, doc in documents):
        return None
    fixture = Fixture(path)
    for number, (source, doc) in enumerate(documents, start=1):
        if is_meta_webhook(doc):
            raise InputError(f"{source}: this is Meta's WhatsApp Cloud API webhook format, not "
                             "CleverTap's callback format", hint=CONVERT_HINT)
        target: Target
        if "statuses" in doc:
            target = "status"
        elif "from" in doc:
            target = "inbound"
        else:
            return None
        fixture.events.append(Planned(target, _json_values(doc, source), line=number,
                                      source=source))
    return fixture


#: Events one replay may expand to unless --max-events says otherwise: a volume event of ten
#: million messages is more likely a typo than a plan, and would fill memory first.
MAX_EVENTS = 1_000_000


def load_fixture(path: Path, max_events: int = MAX_EVENTS) -> Fixture:
    """Parse, resolve and expand a fixture file; any error names file, line and field.

    A file of plain callbacks (see :func:`load_callback_documents`) is sent as it is; it is
    read again only when the file is not a fixture (a fixture is parsed once)."""
    try:
        data = load_located(path)
    except InputError:  # a YAML stream of several callbacks is no single document
        plain = load_callback_documents(path)
        if plain is not None:
            return plain
        raise
    if not (isinstance(data, Located) and "events" in data):
        plain = load_callback_documents(path)
        if plain is not None:
            return plain
    if not isinstance(data, Located):
        raise InputError(f"{path}: a fixture is a mapping with an `events` list")
    unknown = sorted(set(data) - {"vars", "defaults", "events"})
    if unknown:
        raise InputError(f"{path}:{data.line_of(unknown[0])}: unknown key {unknown[0]!r}",
                         hint="a fixture has vars, defaults and events")
    variables = data.get("vars") or {}
    defaults = data.get("defaults") or {}
    events = data.get("events")
    if not isinstance(variables, dict) or not isinstance(defaults, dict):
        raise InputError(f"{path}: vars and defaults are mappings")
    if not isinstance(events, list) or not events:
        raise InputError(f"{path}:{data.line_of('events')}: events must be a non-empty list")
    ctx = _Context(path, {}, max_events=max_events)
    ctx.vars = {k: ctx.resolve(v, data.line_of("vars"), f"vars.{k}")
                for k, v in variables.items()}
    defaults = {k: ctx.resolve(v, data.line_of("defaults"), f"defaults.{k}")
                for k, v in defaults.items()}
    fixture = Fixture(path)
    for index, event in enumerate(events):
        if not isinstance(event, Located):
            raise InputError(f"{path}: events[{index}] is not a mapping")
        kinds = sorted(EVENT_KEYS & set(event))
        if len(kinds) != 1:
            raise InputError(f"{path}:{event.line}: events[{index}]: give exactly one of "
                             "status, inbound, raw or messages")
        kind = kinds[0]
        event = _with_defaults(event, defaults, kind)
        after = parse_duration(event["after"], ctx.where(event.line_of("after"), "after")) \
            if "after" in event else 0.0
        if kind == "messages":
            expanded = list(_volume(event, ctx))
            if expanded:
                expanded[0].after = after
            fixture.events += expanded
            continue
        if kind == "status":
            planned = _status_event(event, ctx)
        elif kind == "inbound":
            planned = _inbound_event(event, ctx)
        else:
            planned = _raw_event(event, ctx)
        planned.after, planned.name, planned.source = after, event.get("name"), str(path)
        if planned.name:
            fields = (planned.body["statuses"][0] if planned.target == "status"
                      and planned.body.get("statuses") else planned.body)
            ctx.named[str(planned.name)] = dict(fields)
        fixture.events.append(planned)
    return fixture

"""A strict local receiver for CleverTap callbacks: validates each one against the contract,
keeps campaign-like stats, records what it receives as a fixture, and can relay callbacks on.

CleverTap says nothing back about a malformed callback, it is just lost; this listener says
exactly what is wrong, one line per callback.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctwa.callbacks.stats import CampaignStats
from ctwa.infra.asgi import BodyTooLarge, read_limited
from ctwa.wire import webhook
from ctwa.wire.callbacks import check_callback_url
from ctwa.wire.kinds import detect_kind
from ctwa.wire.lint import LintResult, lint_document

MAX_BODY = 1 << 20
ACCEPTED = b'{"status":"accepted","problems":[]}'


@dataclass
class Received:
    """One callback as the listener saw it, for the one-line log."""

    at: float
    path: str
    kind: str | None
    result: LintResult | None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None and self.result.ok


class Recorder:
    """Writes every valid callback as a ``raw`` fixture event that ``replay`` sends again,
    marked ``literal``: what users sent is never read as template syntax (a reply holding
    ``{{ env.CTWA_PASSCODE }}`` stays those characters), and YAML's escapes carry every
    character (U+FFFF, U+0085, control characters) back byte for byte."""

    def __init__(self, path: Path) -> None:
        from ctwa.infra.textfiles import open_private

        self.path = path
        self._handle: TextIO = open_private(path, "w")
        self._handle.write("# recorded by `ctwa callback listen`; send again with "
                           "`ctwa callback replay`\nevents:\n")
        self._handle.flush()
        self._last: float | None = None
        self._lock = threading.Lock()

    def add(self, target: str, body: Any) -> None:
        with self._lock:
            now = time.monotonic()
            after = 0 if self._last is None else round((now - self._last) * 1000)
            self._last = now
            event = {"raw": body, "to": target, "after": f"{after}ms", "literal": True}
            self._handle.write(yaml.safe_dump([event], allow_unicode=True, sort_keys=False,
                                              width=1 << 20))
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


#: Relays a valid callback (target, raw body) and returns a note for the log line.
Forward = Callable[[str, bytes], Awaitable[str]]


@dataclass
class Listener:
    strict: bool = False
    stats: CampaignStats = field(default_factory=CampaignStats)
    recorder: Recorder | None = None
    forward: Forward | None = None
    on_receive: Callable[[Received], None] | None = None
    store: Any = None  # a ctwa.store.writer.BatchWriter: every callback is kept there

    def __post_init__(self) -> None:
        from ctwa.infra.asgi import Disconnects

        self.disconnects = Disconnects()

    def app(self) -> Starlette:
        return Starlette(exception_handlers=self.disconnects.handlers(), routes=[
            Route("/status", self._status, methods=["POST"]),
            Route("/inbound", self._inbound, methods=["POST"]),
            Route("/", self._any, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
        ])

    async def _status(self, request: Request) -> Response:
        return await self._handle(request, "status")

    async def _inbound(self, request: Request) -> Response:
        return await self._handle(request, "inbound")

    async def _any(self, request: Request) -> Response:
        return await self._handle(request, None)

    async def _stats(self, request: Request) -> Response:
        store = None if self.store is None else str(self.store.path)
        return JSONResponse({**self.stats.tallies(), "disconnected": self.disconnects.count,
                             "listener": "ctwa", "store": store})

    async def _handle(self, request: Request, kind: str | None) -> Response:
        self.stats.callbacks += 1
        path = request_path(request.scope)
        received = Received(time.time(), path, kind, None)
        try:
            body = await read_limited(request, MAX_BODY)
        except BodyTooLarge:
            return self._refuse(received, f"body over {MAX_BODY} bytes", 413)
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._refuse(received, f"not JSON: {str(exc)[:200]}", 400, body)
        except ValueError:  # a number past Python's 4300-digit limit
            return self._refuse(received, "not JSON ctwa can read: a number of thousands of "
                                "digits", 400, body)
        except RecursionError:
            return self._refuse(received, "not JSON ctwa can read: nested too deeply", 400,
                                body)
        if kind is None:
            kind = detect_kind(document)
            if kind is None:
                from ctwa.wire.callbacks import find_wrapper

                wrapped = find_wrapper(document)
                kind = detect_kind(wrapped.inner) if wrapped is not None else None
            if kind not in ("status", "inbound", "meta-webhook"):
                return self._refuse(received, _not_a_callback(document), 400, body, document)
            received.kind = kind
        if kind == webhook.KIND:  # correct as Meta's, but a callback URL takes CleverTap's
            result = LintResult(path, kind, webhook.explain(document))
        else:
            result = lint_document(document, kind, path)
        result.problems += check_callback_url(str(request.url), "the URL this callback was "
                                              "posted to")
        received.result = result
        refused = await self._keep(received, document, body,
                                   [_stored(p) for p in result.errors],
                                   [_stored(p) for p in result.warnings])
        if refused is not None:
            return refused
        if not result.ok:
            self.stats.invalid += 1
            self._emit(received)
            status = 400 if self.strict else 200
            return JSONResponse({"status": "invalid" if self.strict else "accepted",
                                 "problems": [p.as_dict() for p in result.problems]},
                                status_code=status)
        self.stats.valid += 1
        if result.warnings:
            self.stats.variants += 1
        self._account(kind, result.value, received)
        if self.recorder is not None:
            self.recorder.add(kind, document)
        if self.forward is not None:
            received.notes.append(await self.forward(kind, body))
        self._emit(received)
        if not result.problems:
            return Response(ACCEPTED, media_type="application/json")
        return JSONResponse({"status": "accepted",
                             "problems": [p.as_dict() for p in result.problems]})

    def _account(self, kind: str, value: Any, received: Received) -> None:
        if kind == "status":
            for entry in value.statuses:
                code = entry.error.code if entry.status == "failed" else None
                note = self.stats.status(entry.msgId, entry.status, code)
                if note:
                    received.notes.append(f"{entry.msgId}: {note}")
        else:
            context = value.context.id if value.context else None
            self.stats.reply(value.type, context)

    def _records(self, received: Received, document: Any, body: bytes,
                 problems: list[str], warnings: list[str] | None = None) -> list[Any]:
        from ctwa.store.extract import callback_records

        text = body.decode("utf-8", "replace")
        return callback_records(document, received.kind, received.path, received.at, text,
                                problems, warnings)

    async def _keep(self, received: Received, document: Any, body: bytes,
                    problems: list[str], warnings: list[str] | None = None
                    ) -> Response | None:
        """Keep the callback before it is answered 2xx: None once its records are durable
        in the store, else the answer that refuses it (400 for a record the store cannot
        take, 503 when the store itself fails: the sender should try again)."""
        if self.store is None:
            return None
        reason = await self.store.keep(self._records(received, document, body, problems,
                                                     warnings))
        if reason is None:
            return None
        self.stats.invalid += 1
        received.error = f"not kept in the store: {reason}"
        self._emit(received)
        from ctwa.store.writer import RECORD_REFUSALS

        status = 400 if reason in RECORD_REFUSALS else 503
        return JSONResponse({"status": "invalid" if status == 400 else "unavailable",
                             "error": received.error}, status_code=status)

    def _refuse(self, received: Received, error: str, status: int, body: bytes = b"",
                document: Any = None) -> Response:
        self.stats.invalid += 1
        received.error = error
        if self.store is not None:  # answered 4xx: nobody waits for it to be durable
            for record in self._records(received, document, body, [error]):
                self.store.put(record)
        self._emit(received)
        return JSONResponse({"status": "invalid", "error": error}, status_code=status)

    def _emit(self, received: Received) -> None:
        if self.on_receive is not None:
            self.on_receive(received)


def _stored(problem: Any) -> str:
    """A problem as the store keeps it: ``path: message -> hint``."""
    return f"{problem.path}: {problem.message}" + (f" -> {problem.hint}" if problem.hint
                                                   else "")


def _not_a_callback(document: Any) -> str:
    """Why a body on ``/`` is neither a status nor an inbound callback, in its own terms."""
    if isinstance(document, list):
        return (f"a JSON array of {len(document)} item(s), not one callback: CleverTap takes "
                "one callback object per request (several statuses go in one `statuses[]`)")
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__.replace('str', 'string')}, not a callback " \
            "object"
    keys = ", ".join(f"`{k}`" for k in list(document)[:6])
    return (f"neither a status nor an inbound callback (keys {keys or 'none'}): a status has "
            "`statuses`, an inbound message `from`")


def request_path(scope: Any) -> str:
    """The path the client asked for. Under a Mount (the sandbox's ``/clevertap``), Starlette
    gives the prefix in ``root_path`` and, since 0.33, in ``path`` as well: never twice."""
    root, path = scope.get("root_path", ""), scope["path"]
    return path if path.startswith(root) else root + path



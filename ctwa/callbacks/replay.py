"""Send planned callbacks to CleverTap-style callback URLs, in order, and record the answers.

Order matters to CleverTap's stats (sent, then delivered, then read), so events go one after
another, honouring each ``after``; with ``concurrency`` they are spread over workers by msgId,
so every message's own callbacks still arrive in order.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from ctwa.callbacks.fixtures import Planned
from ctwa.http import send
from ctwa.infra.errors import InputError, RemoteUnreachable
from ctwa.send.messaging import encode
from ctwa.wire.lint import lint_document


@dataclass
class Answer:
    planned: Planned
    url: str
    sent_at: float
    status: int | None = None
    elapsed_ms: float = 0.0
    error: str | None = None
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.planned.target, "label": self.planned.label,
                "msgId": self.planned.msg_id, "url": self.url, "status": self.status,
                "elapsed_ms": self.elapsed_ms, "error": self.error, "body": self.planned.body}


def validate(events: list[Planned]) -> list[str]:
    """Every problem in every event, as 'file:line: path: message' lines."""
    problems = []
    for planned in events:
        result = lint_document(planned.body, planned.target)
        for problem in result.errors:
            problems.append(f"{planned.source}:{planned.line}: {planned.label}: "
                            f"{problem.path}: {problem.message}")
    return problems


def group_statuses(events: list[Planned], size: int) -> list[Planned]:
    """Put up to ``size`` consecutive status events (with no wait between) in one request."""
    if size <= 1:
        return events
    out: list[Planned] = []
    for planned in events:
        last = out[-1] if out else None
        if (last is not None and planned.target == "status" and last.target == "status"
                and planned.after == 0 and len(last.body.get("statuses", [])) < size
                and isinstance(planned.body.get("statuses"), list)
                and isinstance(last.body.get("statuses"), list)
                and planned.body.get("payloadVersion") == last.body.get("payloadVersion")):
            merged = {**last.body, "statuses": [*last.body["statuses"],
                                                *planned.body["statuses"]]}
            out[-1] = Planned("status", merged, last.after, last.name, last.line, last.source)
        else:
            out.append(planned)
    return out


Hook = Callable[[Answer], None]

#: Consecutive requests that reach nobody (refused, timed out) after which a replay stops:
#: the URL is gone, and the rest would only fail the same way, one timeout each.
GIVE_UP_AFTER = 10


@dataclass
class Replayer:
    client: httpx.Client
    status_url: str | None
    inbound_url: str | None
    speed: float = 1.0
    delays: bool = True
    on_send: Hook | None = None
    on_answer: Hook | None = None
    give_up_after: int = GIVE_UP_AFTER

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.answers: list[Answer] = []  # every answer so far, for a summary at Ctrl-C
        self._unreachable = 0  # requests in a row that reached nobody
        self.gave_up: str | None = None  # why the replay stopped early, if it did

    def stop(self) -> None:
        """Send nothing more (Ctrl-C): lanes finish the request they are in and return."""
        self._stop.set()

    def url_for(self, planned: Planned) -> str:
        url = self.status_url if planned.target == "status" else self.inbound_url
        if not url:
            flag = "--status-url" if planned.target == "status" else "--inbound-url"
            raise InputError(f"no {planned.target} callback URL given",
                             hint=f"pass {flag} or set it in the profile")
        return url

    def run(self, events: list[Planned], concurrency: int = 1, group: int = 1) -> list[Answer]:
        """Send every event; with ``concurrency`` > 1, events are split by msgId into that
        many ordered lanes (and grouped within a lane), so no message's callbacks overtake
        each other."""
        for planned in events:
            self.url_for(planned)  # fail before sending anything
        if concurrency <= 1:
            return self._lane(group_statuses(events, group))
        lanes: list[list[Planned]] = [[] for _ in range(concurrency)]
        for planned in events:
            lanes[zlib.crc32(planned.msg_id.encode()) % concurrency].append(planned)

        pool = ThreadPoolExecutor(max_workers=concurrency)
        try:
            futures = [pool.submit(self._lane, group_statuses(lane, group))
                       for lane in lanes if lane]
            return [answer for future in futures for answer in future.result()]
        finally:
            self._stop.set()  # on Ctrl-C the lanes stop at their next event
            pool.shutdown(wait=True, cancel_futures=True)

    def _lane(self, events: list[Planned]) -> list[Answer]:
        answers = []
        for planned in events:
            if self._stop.is_set():
                break
            answers.append(self._one(planned))
        return answers

    def _one(self, planned: Planned) -> Answer:
        if self.delays and planned.after > 0:
            self._stop.wait(planned.after / max(self.speed, 1e-9))
        url = self.url_for(planned)
        answer = Answer(planned, url, time.time())
        self._emit(self.on_send, answer)
        try:
            exchange = send(self.client, "POST", url, content=encode(planned.body),
                            headers={"Content-Type": "application/json"})
        except RemoteUnreachable as exc:
            answer.error = str(exc)
        else:
            answer.status = exchange.response.status_code
            answer.elapsed_ms = round(exchange.elapsed * 1000, 1)
            answer.body = exchange.response.text[:500]
        with self._lock:
            self.answers.append(answer)
            self._unreachable = self._unreachable + 1 if answer.status is None else 0
            if self._unreachable >= self.give_up_after and self.gave_up is None:
                self.gave_up = (f"stopped after {self._unreachable} requests in a row reached "
                                f"nobody (last: {answer.error})")
                self._stop.set()
        self._emit(self.on_answer, answer)
        return answer

    def _emit(self, hook: Hook | None, answer: Answer) -> None:
        if hook is not None:
            with self._lock:
                hook(answer)

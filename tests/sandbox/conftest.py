"""A webhook receiver on 127.0.0.1 standing in for the bridge's ``/webhook``, and a sandbox
whose mock Cloud API posts to it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route

from tests.conftest import LiveServer


@dataclass
class Receiver:
    """Records each POST (raw body and headers); refuses the first ``refuse`` with 503."""

    url: str = ""
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refused: int = 0
    refuse: int = 0
    clicks: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def webhook(request: Request) -> PlainTextResponse:
            body = await request.body()
            with self.lock:
                if self.refused < self.refuse:
                    self.refused += 1
                    return PlainTextResponse("down", status_code=503)
                self.posts.append((dict(request.headers), body))
            return PlainTextResponse("ok")

        async def click(request: Request) -> RedirectResponse:
            self.clicks.append({"token": request.path_params["token"],
                                "agent": request.headers.get("user-agent", "")})
            return RedirectResponse("https://shop.example.com/done", status_code=302)

        return Starlette(routes=[Route("/webhook", webhook, methods=["POST"]),
                                 Route("/c/{token}", click, methods=["GET"])])

    def documents(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.posts]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for doc in self.documents() for e in doc["entry"] for c in e["changes"]
                for s in c["value"].get("statuses", [])]

    def messages(self) -> list[dict[str, Any]]:
        return [m for doc in self.documents() for e in doc["entry"] for c in e["changes"]
                for m in c["value"].get("messages", [])]

    def wait(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)


@pytest.fixture
def receiver():
    receiver = Receiver()
    with LiveServer(receiver.app()) as server:
        receiver.url = server.url
        yield receiver


@dataclass
class Verifying(Receiver):
    """A receiver that answers Meta's verification request when the token matches."""

    verify_token: str = "vt-1"
    verifications: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        app = super().app()

        async def verify(request: Request) -> PlainTextResponse:
            params = dict(request.query_params)
            self.verifications.append(params)
            if params.get("hub.mode") == "subscribe" and \
                    params.get("hub.verify_token") == self.verify_token:
                return PlainTextResponse(params.get("hub.challenge", ""))
            return PlainTextResponse("no", status_code=403)

        app.router.routes.insert(0, Route("/webhook", verify, methods=["GET"]))
        return app


@pytest.fixture
def verifying():
    receiver = Verifying()
    with LiveServer(receiver.app()) as server:
        receiver.url = server.url
        yield receiver

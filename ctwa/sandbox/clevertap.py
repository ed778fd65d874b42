"""A mock CleverTap upload API (``POST /1/upload``) that answers like the real one (FACTS.md):
account id and passcode headers, at most 1000 records, a per-account concurrency limit past
which it answers 429, and per-record refusals with CleverTap's codes in the recorded shapes."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctwa.wire.limits import IDENTITY_KEYS, MAX_RECORDS
from ctwa.wire.profiles import record_refusal


@dataclass
class UploadState:
    """What the mock has received; tests and the demo read it."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: Counter[str] = field(default_factory=Counter)  # identity -> times uploaded
    requests: int = 0
    refused: int = 0
    rejected_429: int = 0
    max_in_flight: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)


@dataclass
class MockCleverTap:
    accounts: dict[str, str]  # account id -> passcode
    concurrency: int = 15
    latency: float = 0.0
    fail_next: list[int] = field(default_factory=list)  # statuses to answer first, in order
    state: UploadState = field(default_factory=UploadState)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/1/upload", self.upload, methods=["POST"]),
                                 Route("/uploads", self.uploads, methods=["GET"])])

    async def uploads(self, request: Request) -> JSONResponse:
        state = self.state
        return JSONResponse({"requests": state.requests, "profiles": len(state.profiles),
                             "records_refused": state.refused,
                             "answered_429": state.rejected_429,
                             "max_in_flight": state.max_in_flight})

    def _authorised(self, request: Request) -> str | None:
        account = request.headers.get("x-clevertap-account-id", "")
        passcode = request.headers.get("x-clevertap-passcode", "")
        expected = self.accounts.get(account)
        if expected is None or not hmac.compare_digest(expected.encode(), passcode.encode()):
            return None
        return account

    async def upload(self, request: Request) -> JSONResponse:
        state = self.state
        state.requests += 1
        account = self._authorised(request)
        if account is None:
            return JSONResponse({"status": "fail", "error": "Account ID is not valid",
                                 "code": 401}, status_code=401)
        if state.in_flight[account] >= self.concurrency:
            state.rejected_429 += 1
            return JSONResponse({"status": "fail", "error": "Too many concurrent requests",
                                 "code": 429}, status_code=429)
        state.in_flight[account] += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight[account])
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse({"status": "fail", "error": "try again later",
                                     "code": status}, status_code=status)
            return self._answer(await request.body())
        finally:
            state.in_flight[account] -= 1

    def _answer(self, body: bytes) -> JSONResponse:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"status": "fail", "error": "Invalid JSON", "code": 400},
                                status_code=400)
        records = data.get("d") if isinstance(data, dict) else None
        if not isinstance(records, list) or not records:
            return JSONResponse({"status": "fail", "error": "d must be a non-empty list",
                                 "code": 400}, status_code=400)
        if len(records) > MAX_RECORDS:
            return JSONResponse({"status": "fail", "error": f"at most {MAX_RECORDS} records "
                                 "per request", "code": 400}, status_code=400)
        processed, unprocessed = 0, []
        for number, record in enumerate(records, start=1):
            refusal = record_refusal(record)
            if refusal is None:
                processed += 1
                identity = next(str(record[k]) for k in IDENTITY_KEYS
                                if record.get(k) is not None and record.get(k) != "")
                self.state.profiles[identity] = record.get("profileData") or {}
                self.state.uploads[identity] += 1
                continue
            code, message = refusal
            self.state.refused += 1
            unprocessed.append({"status": "fail", "code": code,
                                "error": f"{message}. Skipped record number : {number}",
                                "record": record})
        if processed:
            for entry in unprocessed:  # partial answers carry the record as a JSON string
                entry["record"] = json.dumps(entry["record"])
        return JSONResponse({"status": "success" if processed else "fail",
                             "processed": processed, "unprocessed": unprocessed})

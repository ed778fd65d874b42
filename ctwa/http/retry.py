"""Retries for requests that are safe to repeat: exponential backoff with full jitter,
``Retry-After`` honoured, bounded in attempts and in total time, as an httpx transport."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time.

    Only connect errors (the request never left) and the listed statuses are retried: a read
    timeout on a POST may mean the message went out, so repeating it is the caller's call.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_time: float = 30.0
    statuses: frozenset[int] = RETRYABLE_STATUSES
    retry_read_errors: bool = False  # only for requests that are safe to repeat (GET)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: a uniform wait up to the exponential cap, so clients spread out."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(0, cap)

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
        value = response.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdecimal():
            return float(value)
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - time.time())

    def should_retry_error(self, exc: Exception) -> bool:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True
        return self.retry_read_errors and isinstance(
            exc, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)
        )


@dataclass
class _RetryState:
    policy: RetryPolicy
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    attempt: int = 0

    def next_delay(self, response: httpx.Response | None) -> float | None:
        """How long to wait before the next attempt, or None to give up."""
        if self.attempt >= self.policy.attempts:
            return None
        delay = self.policy.backoff(self.attempt, self.rng)
        if response is not None:
            hinted = self.policy.retry_after(response)
            if hinted is not None:
                delay = hinted
        remaining = self.policy.total_time - (time.monotonic() - self.started)
        if delay > remaining:
            return None
        return delay


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport and repeats requests that the policy says are safe to repeat."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner, self.policy, self.sleep = inner, policy, sleep
        self.rng = rng or random.Random()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        state = _RetryState(self.policy, self.rng)
        while True:
            state.attempt += 1
            request.extensions["ctwa_attempts"] = state.attempt
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                delay = state.next_delay(None) if self.policy.should_retry_error(exc) else None
                if delay is None:
                    raise
                self.sleep(delay)
                continue
            if response.status_code not in self.policy.statuses:
                return response
            delay = state.next_delay(response)
            if delay is None:
                return response
            response.close()
            self.sleep(delay)

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`RetryTransport`; the policy decisions are shared."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: RetryPolicy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.inner, self.policy = inner, policy
        self.rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        state = _RetryState(self.policy, self.rng)
        while True:
            state.attempt += 1
            request.extensions["ctwa_attempts"] = state.attempt
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                delay = state.next_delay(None) if self.policy.should_retry_error(exc) else None
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            if response.status_code not in self.policy.statuses:
                return response
            delay = state.next_delay(response)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self.inner.aclose()

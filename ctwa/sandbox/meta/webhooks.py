"""Signed webhooks from the mock Cloud API to the configured webhook URL, as Meta sends them.

Following graph-api/webhooks/getting-started ("Event Notifications", "Validating Payloads")
and cloud-api/webhooks/components: a POST of ``{"object": "whatsapp_business_account",
"entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {"messaging_product":
"whatsapp", "metadata": {...}, "statuses" | "messages" + "contacts": [...]}}]}]}`` with
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`` (and
the older ``X-Hub-Signature: sha1=...`` Meta still sends beside it), a ``facebookexternalua``
User-Agent, and delivery retried when the target does not answer 200
(Meta: "we will retry ... with decreasing frequency" for up to 7 days; the mock retries with
doubling backoff from ``retry_base`` up to ``retry_max`` apart, for ``retry_for`` seconds).
With a ``verify_token``, the URL is first verified as Meta verifies a callback URL when it is
configured ("Verification Requests": ``GET ?hub.mode=subscribe&hub.challenge=...&
hub.verify_token=...`` must answer 200 with the challenge); a URL that fails it gets no
webhooks, as on Meta, and the stats say why.
Updates that have queued up (at most ``batch``, waiting up to ``batch_wait`` for more) go in
one POST, as Meta batches several in one ``value`` under load.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ctwa.http.raw import HttpError, Pool
from ctwa.infra.safetext import safe_text
from ctwa.wire.cloudapi import sign

USER_AGENT = "facebookexternalua"


def signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``'s value for ``body`` (:func:`ctwa.wire.cloudapi.sign`)."""
    return sign(secret, body)


class SignedPool(Pool):
    """The load-mode client, each request carrying the signature of its own body."""

    def __init__(self, url: str, secret: str, *, size: int, timeout: float) -> None:
        super().__init__(url, {"Content-Type": "application/json", "User-Agent": USER_AGENT},
                         size=size, timeout=timeout)
        self.secret = secret

    def message(self, body: bytes) -> bytes:
        import hashlib
        import hmac

        legacy = hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()
        return (self.head + b"X-Hub-Signature-256: " + signature(self.secret, body).encode()
                + b"\r\nX-Hub-Signature: sha1=" + legacy.encode()
                + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


@dataclass
class Update:
    """One status or one message for the webhook (a message carries its sender's contact)."""

    kind: str  # "statuses" or "messages"
    item: dict[str, Any]
    contact: dict[str, Any] | None = None


@dataclass
class WebhookStats:
    posted: int = 0  # POSTs answered 2xx
    updates: dict[str, int] = field(default_factory=dict)  # delivered, by status / "message"
    failures: int = 0  # attempts that got no 2xx
    retries: int = 0
    given_up: int = 0
    last_error: str = ""
    verification: str = ""  # "", "passed", or why it failed


class WebhookSender:
    """A queue of updates and a few workers posting them to ``url``."""

    def __init__(self, url: str, secret: str, envelope: dict[str, Any], *, batch: int = 100,
                 concurrency: int = 16, timeout: float = 10.0, retry_base: float = 0.5,
                 retry_max: float = 30.0, retry_for: float = 900.0,
                 batch_wait: float = 0.0, verify_token: str | None = None) -> None:
        self.url, self.secret, self.envelope = url, secret, envelope
        self.batch, self.concurrency, self.timeout = max(1, batch), concurrency, timeout
        self.retry_base, self.retry_max, self.retry_for = retry_base, retry_max, retry_for
        self.batch_wait = batch_wait
        self.verify_token = verify_token
        self._verified: asyncio.Future[bool] | None = None
        self.stats = WebhookStats()
        self.queue: asyncio.Queue[Update] | None = None
        self.workers: list[asyncio.Task[None]] = []
        self.pool: SignedPool | None = None
        self.busy = 0

    def submit(self, update: Update) -> None:
        """Queue one update (from the server's event loop)."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.pool = SignedPool(self.url, self.secret, size=self.concurrency,
                                   timeout=self.timeout)
            self.workers = [asyncio.ensure_future(self._work())
                            for _ in range(self.concurrency)]
        self.queue.put_nowait(update)

    @property
    def pending(self) -> int:
        return (self.queue.qsize() if self.queue else 0) + self.busy

    def body(self, updates: list[Update]) -> bytes:
        """One webhook POST's body: Meta's envelope around the updates, statuses and messages
        in separate ``changes`` as Meta sends them."""
        changes = []
        statuses = [u.item for u in updates if u.kind == "statuses"]
        messages = [u for u in updates if u.kind == "messages"]
        base = {"messaging_product": "whatsapp", "metadata": self.envelope["metadata"]}
        if statuses:
            changes.append({"value": {**base, "statuses": statuses}, "field": "messages"})
        if messages:
            contacts = list({json.dumps(u.contact, sort_keys=True): u.contact
                             for u in messages if u.contact}.values())
            changes.append({"value": {**base, "contacts": contacts,
                                      "messages": [u.item for u in messages]},
                            "field": "messages"})
        document = {"object": "whatsapp_business_account",
                    "entry": [{"id": self.envelope["waba_id"], "changes": changes}]}
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    async def _work(self) -> None:
        assert self.queue is not None
        while True:
            updates = [await self.queue.get()]
            self.busy += 1
            until = time.monotonic() + self.batch_wait
            while len(updates) < self.batch:
                if self.queue.empty():
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        updates.append(await asyncio.wait_for(self.queue.get(), left))
                    except asyncio.TimeoutError:
                        break
                else:
                    updates.append(self.queue.get_nowait())
                self.busy += 1
            try:
                await self._deliver(updates)
            finally:
                self.busy -= len(updates)

    async def verify(self) -> bool:
        """Meta's verification request to the URL, once; whether it passed."""
        if self.verify_token is None:
            return True
        if self._verified is None:
            self._verified = asyncio.get_running_loop().create_future()
            self._verified.set_result(await self._handshake(self.verify_token))
        return await asyncio.shield(self._verified)

    async def _handshake(self, token: str) -> bool:
        import secrets

        import httpx

        from ctwa.http import make_async_client

        challenge = str(secrets.randbelow(10**9))
        params = {"hub.mode": "subscribe", "hub.challenge": challenge,
                  "hub.verify_token": token}
        try:
            async with make_async_client(timeout=self.timeout, max_connections=1) as client:
                answer = await client.get(self.url, params=params,
                                          headers={"User-Agent": USER_AGENT})
        except httpx.HTTPError as exc:  # named in the stats
            self.stats.verification = safe_text(f"failed: {type(exc).__name__}: {exc}",
                                                keep_lines=False, limit=200)
            return False
        if answer.status_code == 200 and answer.text.strip() == challenge:
            self.stats.verification = "passed"
            return True
        self.stats.verification = (f"failed: HTTP {answer.status_code}, "
                                   + ("the challenge echoed" if answer.text.strip() ==
                                      challenge else "not the challenge"))
        return False

    async def _deliver(self, updates: list[Update]) -> None:
        assert self.pool is not None
        if not await self.verify():
            self.stats.given_up += len(updates)
            self.stats.last_error = ("the URL failed Meta's verification "
                                     f"({self.stats.verification})")
            return
        body = self.body(updates)
        started = time.monotonic()
        delay = self.retry_base
        while True:
            try:
                status, _ = await self.pool.post(body)
                error = "" if 200 <= status < 300 else f"HTTP {status}"
            except HttpError as exc:
                error = str(exc)
            if not error:
                self.stats.posted += 1
                for update in updates:
                    key = (update.item.get("status", "?") if update.kind == "statuses"
                           else "message")
                    self.stats.updates[key] = self.stats.updates.get(key, 0) + 1
                return
            self.stats.failures += 1
            self.stats.last_error = safe_text(error, keep_lines=False, limit=200)
            if time.monotonic() - started + delay > self.retry_for:
                self.stats.given_up += len(updates)
                return
            self.stats.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued update was delivered (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        for worker in self.workers:
            worker.cancel()
        if self.workers:
            await asyncio.gather(*self.workers, return_exceptions=True)
        if self.pool is not None:
            self.pool.close()

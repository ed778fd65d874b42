"""One load worker: an event loop of long-lived sender coroutines (or timed arrivals with a
rate) over ctwa's keep-alive client, every answer judged like CleverTap would, latencies into a
histogram, and the loop's own lag measured, so the report can tell a slow endpoint from a
saturated client."""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ctwa.http.raw import AnswerTimeout, AnswerTooLarge, ClientLimit, HttpError, Pool
from ctwa.load.plan import LoadPlan, WorkerShare
from ctwa.send.judge import judge
from ctwa.store.records import VERDICT_CODE

#: Latencies and lags in microseconds, 1 us to 10 minutes, 2 significant digits.
HIST_RANGE = (1, 600_000_000, 2)
LAG_PERIOD = 0.05
SUCCESS_BODIES = frozenset({b'{"status":"success"}', b'{"status": "success"}',
                            b'{"status":"success"}\n', b'{"status": "success"}\n'})
_ERROR_SAMPLES = 5
PROGRESS_SLOTS = 4
#: After Ctrl-C, how long requests already in flight may take to answer before they are
#: abandoned (and counted as such): the summary must come in seconds, not at --timeout.
DRAIN_SECONDS = 3.0
#: Per-message outcomes are kept (9 bytes each, for the round trip and ``ctwa trace``) for
#: this many messages of a run; past it only the totals.
RECORD_LIMIT = 5_000_000
#: The per-message verdict bytes, as the store names them.
V_ACCEPTED, V_TOO_SLOW, V_REJECTED, V_VIOLATION, V_CONNECTION, V_TIMEOUT, V_CLIENT = (
    VERDICT_CODE[name] for name in ("accepted", "too-slow", "rejected", "violation",
                                    "connection-error", "timeout", "client-error"))

#: When this many first answers all refuse the credentials (401, 403, failure 2000), the
#: worker stops: every later message would be refused the same way.
AUTH_PROBE = 10


def _micros(seconds: float) -> int:
    """A duration as the histograms record it: whole microseconds, at least 1."""
    return max(1, int(seconds * 1_000_000))


def _histogram() -> Any:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(*HIST_RANGE)


def _dumps() -> Any:
    try:
        import orjson

        return orjson.dumps
    except ImportError:  # pragma: no cover - orjson is a dependency
        import json

        return lambda value: json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Counters:
    """What one worker saw; merged across workers by the engine.

    Every message sent is counted in exactly one class: accepted (in time), accepted_late,
    refused (failure_codes, http_statuses), contract_violations, too_large, timeouts,
    connection_errors, client_errors, or abandoned. ``too_slow`` is a measure across classes:
    the answers (of any kind) that came after the deadline."""

    sent: int = 0
    accepted: int = 0  # accepted within the deadline
    accepted_late: int = 0  # accepted, after the deadline
    too_slow: int = 0  # answers after the deadline, whatever they said
    timeouts: int = 0  # no answer (or no connection) within --timeout
    connection_errors: int = 0  # refused, reset, closed: no answer at all
    contract_violations: int = 0
    abandoned: int = 0  # in flight when the run was interrupted, never answered
    too_large: int = 0  # answers over MAX_ANSWER bytes
    client_errors: int = 0  # ctwa's own limits (file descriptors), not the endpoint's
    auth_refused: int = 0  # answers that refused the credentials
    stopped_on_auth: bool = False
    failure_codes: Counter[str] = field(default_factory=Counter)
    http_statuses: Counter[int] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    max_in_flight: int = 0
    busy: float = 0.0  # seconds summed over every request while it was in flight
    elapsed: float = 0.0
    latency: bytes = b""  # an encoded HdrHistogram, microseconds, from when each was due
    service: bytes = b""  # from when each was written (kept with --rate only, where they differ)
    lag: bytes = b""
    connect: bytes = b""  # each connection's set-up time, opened before the start line
    connect_errors: int = 0
    gc_pauses: int = 0
    gc_pause_max: float = 0.0  # seconds
    gc_pause_total: float = 0.0
    started_wall: float = 0.0  # time.time() at the start line
    offsets: bytes = b""  # per local message: uint32 ms from the start line to its write
    latencies: bytes = b""  # uint32 us
    verdicts: bytes = b""  # one V_* byte
    series: dict[str, Any] = field(default_factory=dict)  # ctwa.load.series.PerSecond
    loop: str = "asyncio"

    @property
    def answered(self) -> int:
        return (self.sent - self.connection_errors - self.timeouts - self.abandoned
                - self.too_large - self.client_errors)


class _Run:
    def __init__(self, plan: LoadPlan, share: WorkerShare, progress: Any | None,
                 stop: Any | None = None, ready: Any | None = None) -> None:
        self.plan, self.share, self.progress = plan, share, progress
        self.stop = stop  # anything with is_set(): Ctrl-C in the parent sets it
        self.ready = ready  # blocks until every worker is connected (the start line)
        self.counters = Counters()
        self.latency, self.lag = _histogram(), _histogram()
        self.service = _histogram() if share.rate is not None else None
        self.connect = _histogram()
        self.dumps = _dumps()
        self.in_flight = 0
        self.next_local = 0
        self.stop_at: float | None = None  # set at the start line
        self.done = False
        self.record = plan.record
        self.offsets, self.latencies = array("I"), array("I")
        self.verdicts = bytearray()
        self.started = 0.0
        from ctwa.load.series import PerSecond

        self.seconds = PerSecond()

    def _next_index(self) -> int | None:
        if self.share.count is not None and self.next_local >= self.share.count:
            return None
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            return None
        if self.stop is not None and self.stop.is_set():
            return None
        if self.counters.stopped_on_auth:
            return None
        local = self.next_local
        self.next_local += 1
        if self.record and local < RECORD_LIMIT:
            self.offsets.append(0)
            self.latencies.append(0)
            self.verdicts.append(0)
        return local * self.plan.workers + self.share.worker

    async def _send(self, session: Any, index: int, started: float | None = None) -> None:
        body = self.plan.body(index, self.dumps)
        counters = self.counters
        counters.sent += 1
        self.in_flight += 1
        counters.max_in_flight = max(counters.max_in_flight, self.in_flight)
        begin = started if started is not None else time.perf_counter()
        local = index // self.plan.workers
        kept = self.record and local < RECORD_LIMIT
        self.seconds.on_sent(begin - self.started)
        if kept:
            self.offsets[local] = max(0, int((begin - self.started) * 1000))
        error: BaseException | None = None
        entered = time.perf_counter()
        try:
            status, content, written = await session.post_timed(body)
        except HttpError as exc:
            error = exc
        except asyncio.CancelledError:
            counters.abandoned += 1
            raise
        finally:
            self.in_flight -= 1
            counters.busy += time.perf_counter() - entered
        if isinstance(error, AnswerTimeout):
            counters.timeouts += 1
            self._sample(f"timeout: {error}")
            verdict = V_TIMEOUT
        elif isinstance(error, AnswerTooLarge):
            counters.too_large += 1
            self._sample(str(error))
            verdict = V_VIOLATION
        elif isinstance(error, ClientLimit):
            counters.client_errors += 1
            self._sample(f"client: {error}")
            verdict = V_CLIENT
        elif error is not None:
            counters.connection_errors += 1
            self._sample(f"{type(error).__name__}: {error}")
            verdict = V_CONNECTION
        if error is not None:
            self.seconds.on_error(time.perf_counter() - self.started)
        else:
            now = time.perf_counter()
            elapsed = now - begin
            micros = _micros(elapsed)
            self.latency.record_value(micros)
            if self.service is not None:
                self.service.record_value(_micros(now - written))
            verdict = self._classify(status, content, elapsed)
            self.seconds.on_answer(now - self.started, micros, verdict == V_ACCEPTED)
            if kept:
                self.latencies[local] = min(micros, 0xFFFFFFFF)
        if kept:
            self.verdicts[local] = verdict
        self._report_progress()

    def _classify(self, status: int, content: bytes, elapsed: float) -> int:
        """Count one answer; its per-message verdict byte."""
        counters = self.counters
        late = elapsed > self.plan.deadline
        counters.too_slow += late
        if status == 200 and content in SUCCESS_BODIES:  # the common case, without parsing
            counters.accepted += not late
            counters.accepted_late += late
            return V_TOO_SLOW if late else V_ACCEPTED
        verdict = judge(status, content, 0.0, self.plan.deadline)  # the body; lateness above
        if verdict.accepted:
            counters.accepted += not late
            counters.accepted_late += late
            return V_TOO_SLOW if late else V_ACCEPTED
        if status in (401, 403) or (status == 200 and verdict.error_code == 2000):
            counters.auth_refused += 1
            answered = (counters.sent - counters.connection_errors - counters.timeouts
                        - self.in_flight)
            if counters.auth_refused == answered >= min(AUTH_PROBE, self.share.count or
                                                        AUTH_PROBE):
                counters.stopped_on_auth = True
        self._sample(f"HTTP {status}: {verdict.summary}")
        if status != 200:
            counters.http_statuses[status] += 1
            return V_REJECTED
        if verdict.outcome == "rejected":
            counters.failure_codes[str(verdict.error_code)] += 1
            return V_REJECTED
        counters.contract_violations += 1
        return V_VIOLATION

    def _sample(self, text: str) -> None:
        """Keep a few distinct examples of what went wrong, not five copies of one."""
        samples = self.counters.error_samples
        text = text[:200]
        if len(samples) < _ERROR_SAMPLES and text not in samples:
            samples.append(text)

    def _report_progress(self) -> None:
        """Shared counters for the live display: sent, answered, not accepted, in flight."""
        if self.progress is not None:
            base = self.share.worker * PROGRESS_SLOTS
            counters = self.counters
            done = counters.sent - self.in_flight
            self.progress[base] = counters.sent
            self.progress[base + 1] = done
            self.progress[base + 2] = done - counters.accepted
            self.progress[base + 3] = self.in_flight

    async def _closed(self, session: Any) -> None:
        """Long-lived senders: each sends its next message as soon as the last is answered."""

        async def sender() -> None:
            while (index := self._next_index()) is not None:
                await self._send(session, index)

        await asyncio.gather(*(sender() for _ in range(self.share.concurrency)))

    async def _open(self, session: Any) -> None:
        """Arrivals on a fixed schedule: a slow endpoint cannot slow them down, and latency
        counts from the scheduled time, so waiting for a free connection is counted too."""
        assert self.share.rate is not None
        interval = 1.0 / self.share.rate
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while (index := self._next_index()) is not None:
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self._send(session, index, started=due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        if tasks:
            await asyncio.gather(*tasks)

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.done:
            before = loop.time()
            await asyncio.sleep(LAG_PERIOD)
            late = loop.time() - before - LAG_PERIOD
            micros = _micros(late)
            self.lag.record_value(micros)
            self.seconds.on_tick(time.perf_counter() - self.started, self.in_flight, micros)

    async def _until_done_or_stopped(self, sending: asyncio.Future[None]) -> None:
        """Wait for the senders; once stopped, give requests in flight DRAIN_SECONDS, then
        abandon them."""
        while not sending.done():
            if self.stop is not None and self.stop.is_set():
                done, _ = await asyncio.wait({sending}, timeout=DRAIN_SECONDS)
                if not done:
                    sending.cancel()
                    await asyncio.gather(sending, return_exceptions=True)
                break
            await asyncio.wait({sending}, timeout=0.1)
        if sending.done() and not sending.cancelled():
            sending.result()

    async def _connect(self, pool: Pool) -> None:
        """Open the connections before the start line (their set-up times are reported on
        their own), then wait for the other workers to be ready too."""
        errors = await pool.fill(lambda seconds: self.connect.record_value(_micros(seconds)))
        self.counters.connect_errors = len(errors)
        for error in errors[:_ERROR_SAMPLES]:
            self._sample(f"{type(error).__name__}: {error}")
        if self.ready is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.ready)

    async def run(self) -> Counters:
        pool = Pool(self.plan.url, self.plan.headers, size=self.share.concurrency,
                    timeout=self.plan.timeout)
        try:
            await self._connect(pool)
            with _GcWatch(self.counters):
                started = self.started = time.perf_counter()
                self.counters.started_wall = time.time()
                if self.plan.duration is not None:
                    self.stop_at = time.monotonic() + self.plan.duration
                watcher = asyncio.ensure_future(self._watch_lag())
                sending = asyncio.ensure_future(self._closed(pool) if self.share.rate is None
                                                else self._open(pool))
                try:
                    await self._until_done_or_stopped(sending)
                finally:
                    self.counters.elapsed = time.perf_counter() - started
                    self.done = True
                    await watcher
        finally:
            pool.close()
        self._report_progress()
        self.counters.latency = self.latency.encode()
        self.counters.lag = self.lag.encode()
        self.counters.connect = self.connect.encode()
        self.counters.offsets = self.offsets.tobytes()
        self.counters.latencies = self.latencies.tobytes()
        self.counters.verdicts = bytes(self.verdicts)
        self.counters.series = self.seconds.to_dict()
        if self.service is not None:
            self.counters.service = self.service.encode()
        return self.counters


class _GcWatch:
    """Times the garbage collector's pauses during the run, after moving everything alive at
    the start line out of its reach (``gc.freeze``): a full collection then walks only what
    the run allocates, and the report can say whether a pause could have reached the tail."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.began = 0.0

    def __enter__(self) -> _GcWatch:
        import gc

        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *_: object) -> None:
        import gc

        gc.callbacks.remove(self._on_gc)
        gc.unfreeze()

    def _on_gc(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
            return
        pause = time.perf_counter() - self.began
        counters = self.counters
        counters.gc_pauses += 1
        counters.gc_pause_total += pause
        counters.gc_pause_max = max(counters.gc_pause_max, pause)


def run_share(plan: LoadPlan, worker: int, progress: Any | None = None,
              stop: Any | None = None, ready: Any | None = None) -> Counters:
    """Run this worker's share of the plan to the end, or until ``stop`` is set (in this
    process); ``ready()`` blocks at the start line until every worker has connected."""
    from ctwa.http import run_on_fast_loop

    run = _Run(plan, plan.share(worker), progress, stop, ready)
    counters, loop = run_on_fast_loop(run.run())
    counters.loop = loop
    return counters

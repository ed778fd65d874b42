"""Run a load plan over one or more processes and merge what they saw into one report.

A campaign-sized run spreads over ``workers`` processes (one per core by default), each with its
own event loop, keep-alive connections and slice of the concurrency. The report says when the
client's own event loop, not the endpoint, was the bottleneck.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ctwa.load.plan import CAMPAIGN_CONCURRENCY, LoadPlan
from ctwa.load.run import DRAIN_SECONDS, PROGRESS_SLOTS, Counters, run_share

#: The client was saturated when its event loop is late by this much half the time (it is
#: constantly busy), or by this much one time in ten (it stalls).
LAG_SATURATED_P50_MS = 10.0
LAG_SATURATED_P90_MS = 50.0
#: A latency percentile is distorted when the client's own delay at the same percentile
#: (event loop lag, a garbage-collector pause) could have added more than this share to it.
DISTORTION_SHARE = 0.10
#: A stall of the client's loop longer than this share of the deadline is reported.
STALL_SHARE = 0.10
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
#: The percentiles of the report's latency distribution plot.
CURVE = (0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0)


@dataclass
class Progress:
    sent: int
    answered: int
    not_accepted: int
    in_flight: int
    elapsed: float


@dataclass
class LoadReport:
    url: str
    sent: int = 0
    accepted: int = 0
    too_slow: int = 0
    connection_errors: int = 0
    contract_violations: int = 0
    failure_codes: dict[str, int] = field(default_factory=dict)
    http_statuses: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    service_ms: dict[str, float] = field(default_factory=dict)  # --rate: from the write
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    connect_ms: dict[str, float] = field(default_factory=dict)
    connections: int = 0
    connect_errors: int = 0
    gc_pause_ms: dict[str, float] = field(default_factory=dict)
    saturation: list[str] = field(default_factory=list)  # why the client limited the run
    peak_in_flight: int = 0
    mean_in_flight: float = 0.0
    requests_per_second: float = 0.0
    elapsed: float = 0.0
    workers: int = 1
    loop: str = "asyncio"
    concurrency: int = CAMPAIGN_CONCURRENCY
    deadline: float = 1.0
    client_saturated: bool = False
    abandoned: int = 0
    too_large: int = 0
    client_errors: int = 0
    interrupted: bool = False
    rate: float | None = None
    auth_refused: int = 0
    stopped_on_auth: bool = False
    verdict: list[str] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    round_trip: dict[str, Any] | None = None  # --await-callbacks: DLR completeness
    series: dict[str, list[Any]] = field(default_factory=dict)  # per second, for charts
    latency_curve: list[list[float]] = field(default_factory=list)  # [percentile, ms]
    started_at: float = 0.0  # wall-clock start line
    outcomes: Any = field(default=None, repr=False)  # per message (ctwa.load.outcomes)

    @property
    def failed(self) -> int:
        return (self.connection_errors + self.contract_violations + self.too_large
                + sum(self.failure_codes.values()) + sum(self.http_statuses.values()))

    @property
    def passed(self) -> bool:
        return (self.failed == 0 and self.too_slow == 0 and self.sent > 0
                and not self.interrupted)

    def as_dict(self) -> dict[str, Any]:
        outcomes, self.outcomes = self.outcomes, None  # megabytes of arrays: not in the JSON
        try:
            data = asdict(self)
        finally:
            self.outcomes = outcomes
        del data["outcomes"]
        if data["round_trip"] is None:
            del data["round_trip"]
        return {**data, "failed": self.failed, "passed": self.passed}


def _percentiles(histogram: Any) -> dict[str, float]:
    if histogram.get_total_count() == 0:
        return {}
    out = {f"p{p:g}": round(histogram.get_value_at_percentile(p) / 1000, 2)
           for p in PERCENTILES}
    out["max"] = round(histogram.get_max_value() / 1000, 2)
    out["mean"] = round(histogram.get_mean_value() / 1000, 2)
    return out


def merge(plan: LoadPlan, parts: list[Counters], interrupted: bool = False) -> LoadReport:
    from hdrh.histogram import HdrHistogram

    from ctwa.load.run import HIST_RANGE

    latency, lag = HdrHistogram(*HIST_RANGE), HdrHistogram(*HIST_RANGE)
    service, connect = HdrHistogram(*HIST_RANGE), HdrHistogram(*HIST_RANGE)
    gc_max = gc_total = 0.0
    gc_count = 0
    codes: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    report = LoadReport(plan.url, workers=plan.workers, concurrency=plan.concurrency,
                        deadline=plan.deadline, rate=plan.rate, interrupted=interrupted)
    for part in parts:
        report.sent += part.sent
        report.accepted += part.accepted
        report.too_slow += part.too_slow
        report.connection_errors += part.connection_errors
        report.contract_violations += part.contract_violations
        report.abandoned += part.abandoned
        report.too_large += part.too_large
        report.client_errors += part.client_errors
        report.auth_refused += part.auth_refused
        report.stopped_on_auth = report.stopped_on_auth or part.stopped_on_auth
        codes.update(part.failure_codes)
        statuses.update(part.http_statuses)
        report.peak_in_flight += part.max_in_flight
        report.elapsed = max(report.elapsed, part.elapsed)
        report.error_samples += [e for e in part.error_samples if e not in report.error_samples]
        report.loop = part.loop
        latency.add(HdrHistogram.decode(part.latency))
        lag.add(HdrHistogram.decode(part.lag))
        if part.service:
            service.add(HdrHistogram.decode(part.service))
        if part.connect:
            connect.add(HdrHistogram.decode(part.connect))
        report.connect_errors += part.connect_errors
        gc_count += part.gc_pauses
        gc_total += part.gc_pause_total
        gc_max = max(gc_max, part.gc_pause_max)
    report.failure_codes = dict(sorted(codes.items()))
    report.http_statuses = {str(k): v for k, v in sorted(statuses.items())}
    report.latency_ms = _percentiles(latency)
    if latency.get_total_count():
        report.latency_curve = [[p, round(latency.get_value_at_percentile(p) / 1000, 3)]
                                for p in CURVE]
    report.loop_lag_ms = _percentiles(lag)
    report.service_ms = _percentiles(service)
    report.connect_ms = _percentiles(connect)
    report.connections = connect.get_total_count()
    if gc_count:
        report.gc_pause_ms = {"count": gc_count, "max": round(gc_max * 1000, 2),
                              "total": round(gc_total * 1000, 1)}
    report.error_samples = report.error_samples[:10]
    if report.elapsed > 0:
        report.requests_per_second = round(report.sent / report.elapsed, 1)
        # Little's law: mean requests in flight = throughput x mean latency
        mean_latency = report.latency_ms.get("mean", 0.0) / 1000
        report.mean_in_flight = round(report.requests_per_second * mean_latency, 1)
    from ctwa.load.series import merge_series

    report.series = merge_series([(p.started_wall, p.series) for p in parts if p.series])
    report.started_at = min((p.started_wall for p in parts), default=0.0)
    if plan.record:
        from ctwa.load.outcomes import merge_outcomes

        report.outcomes = merge_outcomes(parts, plan.workers)
    report.saturation = saturation(report)
    report.client_saturated = bool(report.saturation)
    report.verdict = verdict(report)
    return report


def within_reach(report: LoadReport) -> str | None:
    """The criterion the client's own delay (its longest loop stall or GC pause) could have
    decided, or None: the deadline, when the slowest answer is within that delay of it either
    way; the requests held in flight, when the run fell short of them."""
    reach = max(report.loop_lag_ms.get("max", 0.0), report.gc_pause_ms.get("max", 0.0))
    slowest, deadline_ms = report.latency_ms.get("max", 0.0), report.deadline * 1000
    if reach and slowest - reach < deadline_ms <= slowest + reach:
        return (f"the {report.deadline:g} s deadline (slowest answer {slowest:g} ms, the "
                f"client's own delay up to {reach:g} ms)")
    target = min(CAMPAIGN_CONCURRENCY, report.concurrency)
    if report.rate is None and report.concurrency >= CAMPAIGN_CONCURRENCY and \
            report.peak_in_flight < target:
        return f"{CAMPAIGN_CONCURRENCY} concurrent (peak {report.peak_in_flight} in flight)"
    return None


def saturation(report: LoadReport) -> list[str]:
    """Why the client itself, not the endpoint, may have shaped the reported latencies: a
    loop busy all the time, a loop that stalls, or a delay of its own big enough to add more
    than a tenth to a reported percentile (the tail included, where one stall weighs most);
    said only when that could change a verdict (:func:`within_reach`), not on every run."""
    lag, latency = report.loop_lag_ms, report.latency_ms
    if not lag or within_reach(report) is None:
        return []
    reasons = []
    if lag.get("p50", 0.0) >= LAG_SATURATED_P50_MS:
        reasons.append(f"its event loop was {lag['p50']:g} ms late half the time (busy)")
    elif lag.get("p90", 0.0) >= LAG_SATURATED_P90_MS:
        reasons.append(f"its event loop was {lag['p90']:g} ms late one time in ten (stalls)")
    for name in ("p50", "p90", "p99"):
        own, seen = lag.get(name, 0.0), latency.get(name, 0.0)
        if seen and own > DISTORTION_SHARE * seen and own >= 1.0:
            reasons.append(f"its own delay ({own:g} ms at {name}) could have added more than "
                           f"{DISTORTION_SHARE:.0%} to the {name} latency ({seen:g} ms)")
            break
    stall_ms = STALL_SHARE * report.deadline * 1000
    longest = max(lag.get("max", 0.0), report.gc_pause_ms.get("max", 0.0))
    if longest > stall_ms:
        what = ("a garbage-collector pause" if report.gc_pause_ms.get("max", 0.0) >= longest
                else "its event loop")
        reasons.append(f"{what} stalled for {longest:g} ms, more than {STALL_SHARE:.0%} of "
                       f"the {report.deadline:g} s deadline")
    return reasons


def verdict(report: LoadReport) -> list[str]:
    """Lines that judge the run against the partner criteria, and ctwa against itself: each
    criterion passed, failed (naming what failed) or not tested (saying why)."""
    lines = []
    if report.interrupted:
        lines.append(f"INTERRUPTED: the run was stopped after {report.sent:,} message(s)"
                     + (f"; {report.abandoned:,} in flight were abandoned" if report.abandoned
                        else "") + "; the figures cover what was sent")
    if report.stopped_on_auth:
        lines.append(f"FAIL: the endpoint refused the credentials ({report.auth_refused:,} "
                     "answer(s): HTTP 401/403 or failure 2000); the run stopped early")
    held = report.peak_in_flight >= min(CAMPAIGN_CONCURRENCY, report.concurrency)
    if report.rate is not None:
        lines.append(f"not tested: {CAMPAIGN_CONCURRENCY} concurrent (with --rate, requests "
                     "in flight follow the endpoint's latency; run with --count or --duration "
                     "and no --rate to test it)")
    elif report.concurrency < CAMPAIGN_CONCURRENCY:
        lines.append(f"not tested: {CAMPAIGN_CONCURRENCY} concurrent (this run held at most "
                     f"{report.concurrency}; CleverTap sends up to {CAMPAIGN_CONCURRENCY})")
    elif held and not report.connection_errors:
        lines.append(f"PASS: held {report.peak_in_flight} requests in flight (criterion: "
                     f"{CAMPAIGN_CONCURRENCY} concurrent)")
    else:
        why = (f"{report.connection_errors:,} connection error(s)" if report.connection_errors
               else f"only {report.peak_in_flight} were in flight at once")
        lines.append(f"FAIL: {CAMPAIGN_CONCURRENCY} concurrent: {why}")
    slow = report.too_slow
    answered = report.sent - report.connection_errors - report.abandoned - report.too_large
    share = f" ({slow / answered:.0%} of answers)" if slow and answered > 0 else ""
    lines.append(("PASS" if slow == 0 else "FAIL") + f": {slow:,} answer(s){share} over the "
                 f"{report.deadline:g} s deadline (CleverTap counts each as a timeout)")
    from ctwa.load.ceiling import throughput_ceiling

    ceiling = throughput_ceiling(report)
    if ceiling:
        lines.append(ceiling)
    if report.failed:
        lines.append(f"FAIL: {report.failed:,} message(s) not accepted: "
                     + ", ".join(_failure_parts(report)))
    if report.client_errors:
        lines.append(f"WARNING: {report.client_errors:,} request(s) failed in ctwa itself "
                     "(out of file descriptors or memory), not at the endpoint: lower "
                     "--concurrency or raise `ulimit -n`")
    if report.connect_errors:
        lines.append(f"WARNING: {report.connect_errors:,} connection(s) could not be opened "
                     "before the start")
    if report.saturation:
        lines.append("WARNING: the client, not only the endpoint, may have decided "
                     f"{within_reach(report)}: " + "; ".join(report.saturation)
                     + ". Add --workers, lower --concurrency or use a bigger machine before "
                     "blaming the endpoint")
    return lines


def _failure_parts(report: LoadReport) -> list[str]:
    from ctwa.wire.codes import messaging_error_meaning

    parts = []
    if report.connection_errors:
        parts.append(f"{report.connection_errors:,} connection error(s)")
    for code, n in report.failure_codes.items():
        meaning = messaging_error_meaning(int(code)) if code.isdecimal() else "no code"
        parts.append(f"{n:,} failure {code} ({meaning})")
    for status, n in report.http_statuses.items():
        parts.append(f"{n:,} HTTP {status}")
    if report.contract_violations:
        parts.append(f"{report.contract_violations:,} contract violation(s)")
    if report.too_large:
        parts.append(f"{report.too_large:,} answer(s) too large")
    return parts


def _child(plan: LoadPlan, worker: int, progress: Any, results: Any, start: Any,
           stop: Any) -> None:
    from ctwa.infra.children import detach_worker

    detach_worker()  # Ctrl-C is the parent's (``stop``); die with it; no inherited output

    def ready() -> None:  # every worker starts sending at once, imports done, connected
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=START_LINE_SECONDS)

    try:
        _warm_up()
        results.put((worker, run_share(plan, worker, progress, stop, ready)))
    except BaseException as exc:  # report, so the parent never waits forever
        start.abort()  # nor the other workers at the start line
        results.put((worker, f"{type(exc).__name__}: {exc}"))


def _warm_up() -> None:
    """Import what a worker needs before the start line: on a busy 2-core machine a worker
    still importing while the others send would start a second late and skew the run."""
    import hdrh.histogram  # noqa: F401
    import httptools  # noqa: F401

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401


ProgressHook = Callable[[Progress], None]


#: How long a worker that has connected waits for the others before it starts anyway.
START_LINE_SECONDS = 60.0

#: Descriptors a worker needs beside its connections (the event loop, queues, files).
FD_MARGIN = 64


def ensure_descriptors(plan: LoadPlan) -> None:
    """Raise the soft open-files limit to the hard one, and refuse (one clear line) a run the
    limit cannot hold: 1500 connections under `ulimit -n 1024` fail in the client, and
    used to be reported as the endpoint's connection errors."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    per_worker = -(-plan.concurrency // max(plan.workers, 1))
    if soft != resource.RLIM_INFINITY and per_worker + FD_MARGIN > soft:
        from ctwa.infra.errors import InputError

        raise InputError(f"{per_worker} connections per worker process need more open files "
                         f"than this system allows ({soft})",
                         hint="raise `ulimit -n`, add --workers, or lower --concurrency")


def run_load(plan: LoadPlan, on_progress: ProgressHook | None = None,
             interval: float = 0.25) -> LoadReport:
    """Run the plan to the end and return the merged report. Ctrl-C stops sending, lets
    requests in flight answer for a few seconds, and returns the report of what was done
    (``interrupted``); a second Ctrl-C stops waiting."""
    ensure_descriptors(plan)
    if plan.workers <= 1 and on_progress is None:
        return _run_here(plan)
    context: Any = multiprocessing.get_context("spawn" if sys.platform == "win32"
                                               else "forkserver")
    if sys.platform != "win32":
        from ctwa.infra.children import FORKSERVER_PRELOAD

        context.set_forkserver_preload(FORKSERVER_PRELOAD)  # the forkserver dies with ctwa
    progress = context.Array("q", PROGRESS_SLOTS * plan.workers, lock=False)
    results = context.Queue()
    start = context.Barrier(plan.workers)
    stop = context.Event()
    children = [context.Process(target=_child, args=(plan, w, progress, results, start, stop),
                                daemon=True) for w in range(plan.workers)]
    for child in children:
        child.start()
    parts: dict[int, Counters] = {}
    started = time.monotonic()
    give_up_at: float | None = None
    try:
        while len(parts) < len(children):
            try:
                _collect(results, parts, children, interval)
            except KeyboardInterrupt:
                if stop.is_set():
                    break  # the second Ctrl-C: report what came back
                stop.set()
                give_up_at = time.monotonic() + DRAIN_SECONDS + 2.0
            if give_up_at is not None and time.monotonic() > give_up_at:
                break
            if on_progress is not None:
                values = list(progress)
                sent, answered, not_accepted, in_flight = (
                    sum(values[i::PROGRESS_SLOTS]) for i in range(PROGRESS_SLOTS))
                on_progress(Progress(sent, answered, not_accepted, in_flight,
                                     time.monotonic() - started))
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join(timeout=5)
    return merge(plan, [parts[w] for w in sorted(parts)], interrupted=stop.is_set())


def _collect(results: Any, parts: dict[int, Counters], children: list[Any],
             interval: float) -> None:
    try:
        worker, part = results.get(timeout=interval)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # queue.Empty: no worker finished in this interval
        if not any(c.is_alive() for c in children) and results.empty():
            raise RuntimeError("a load worker died without a report") from None
        return
    if isinstance(part, str):
        raise RuntimeError(f"load worker {worker} failed: {part}")
    parts[worker] = part


def _run_here(plan: LoadPlan) -> LoadReport:
    """One worker in this process; Ctrl-C sets the stop flag the worker checks, instead of
    tearing the event loop down mid-request."""
    import signal

    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        part = run_share(plan, 0, stop=stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return merge(plan, [part], interrupted=stop.is_set())

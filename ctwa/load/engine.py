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
from ctwa.report.verdict import FAIL, NOT_TESTED, PASS, WARNING, Criterion, Verdict

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
    accepted: int = 0  # within the deadline
    accepted_late: int = 0
    too_slow: int = 0  # answers of any kind after the deadline
    timeouts: int = 0  # no answer within --timeout
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
    timeout: float | None = None
    client_saturated: bool = False
    abandoned: int = 0
    too_large: int = 0
    client_errors: int = 0
    interrupted: bool = False
    rate: float | None = None
    auth_refused: int = 0
    stopped_on_auth: bool = False
    interruption: str | None = None  # why the run is partial, when not Ctrl-C (a worker lost)
    verdict: Verdict = field(default_factory=Verdict)
    error_samples: list[str] = field(default_factory=list)
    round_trip: dict[str, Any] | None = None  # --await-callbacks: DLR completeness
    series: dict[str, list[Any]] = field(default_factory=dict)  # per second, for charts
    latency_curve: list[list[float]] = field(default_factory=list)  # [percentile, ms]
    started_at: float = 0.0  # wall-clock start line
    outcomes: Any = field(default=None, repr=False)  # per message (ctwa.load.outcomes)

    @property
    def refused(self) -> int:
        """Answers that refused the message: a failure code, or an HTTP status not 200."""
        return sum(self.failure_codes.values()) + sum(self.http_statuses.values())

    @property
    def failed(self) -> int:
        """Messages not accepted at all (late acceptances are accepted, only late)."""
        return (self.connection_errors + self.timeouts + self.contract_violations
                + self.too_large + self.client_errors + self.refused)

    @property
    def answered(self) -> int:
        """Messages an answer came back for."""
        return (self.sent - self.connection_errors - self.timeouts - self.abandoned
                - self.too_large - self.client_errors)

    @property
    def not_in_time(self) -> int:
        """What CleverTap counts as timeouts: every answer after the deadline, and every
        message with no answer within --timeout."""
        return self.too_slow + self.timeouts

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def as_dict(self) -> dict[str, Any]:
        outcomes, self.outcomes = self.outcomes, None  # megabytes of arrays: not in the JSON
        verdict = self.verdict
        try:
            data = asdict(self)
        finally:
            self.outcomes = outcomes
        del data["outcomes"]
        if data["round_trip"] is None:
            del data["round_trip"]
        data["verdict"] = verdict.as_dict()
        return {**data, "refused": self.refused, "failed": self.failed,
                "not_in_time": self.not_in_time, "outcome": verdict.outcome,
                "passed": verdict.passed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        """A report from its ``as_dict`` (a Locust run's document, a kept summary)."""
        fields = set(cls.__dataclass_fields__) - {"outcomes", "verdict"}
        report = cls(**{k: v for k, v in data.items() if k in fields})
        if isinstance(data.get("verdict"), dict):
            report.verdict = Verdict.from_dict(data["verdict"])
        return report


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
    busy = 0.0
    report = LoadReport(plan.url, workers=plan.workers, concurrency=plan.concurrency,
                        deadline=plan.deadline, timeout=plan.timeout, rate=plan.rate,
                        interrupted=interrupted)
    for part in parts:
        report.sent += part.sent
        report.accepted += part.accepted
        report.accepted_late += part.accepted_late
        report.too_slow += part.too_slow
        report.timeouts += part.timeouts
        busy += part.busy
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
        # the time every request spent in flight (answered or not), over the run's length:
        # a timed-out request counts its whole wait, where Little's law on the answered
        # ones' latency would say 0
        report.mean_in_flight = round(busy / report.elapsed, 1)
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


def verdict(report: LoadReport) -> Verdict:
    """The run judged against the partner criteria (1500 concurrent, every message accepted
    within the deadline), and ctwa against itself: each criterion passed, failed (naming
    what failed) or not tested (saying why). With ``--await-callbacks``, the round trip too."""
    from ctwa.report.verdict import run_criterion

    criteria = [run_criterion(sent=report.sent, interrupted=report.interrupted,
                              interruption=report.interruption)]
    if report.abandoned:
        criteria[0] = Criterion(criteria[0].name, criteria[0].status,
                                criteria[0].reason + f"; {report.abandoned:,} in flight were "
                                "abandoned", criteria[0].measured, criteria[0].threshold)
    if report.stopped_on_auth:
        criteria.append(Criterion(
            "credentials", FAIL, f"the endpoint refused the credentials in all of the first "
            f"{report.auth_refused:,} answer(s) (HTTP 401/403 or failure 2000), so the run "
            "stopped early", report.auth_refused, "accepted credentials"))
    criteria += [_concurrency(report), _deadline(report), _failures(report), _client(report)]
    if report.round_trip is not None:
        criteria.append(callbacks_criterion(report.round_trip))
    return Verdict(tuple(criteria), report.interrupted, tuple(load_warnings(report)))


#: Fewer answers than this and a p99 says little.
MIN_FOR_P99 = 100


def load_warnings(report: LoadReport) -> list[str]:
    """What makes the figures say less than they seem to (said before the criteria)."""
    warnings = []
    if report.client_saturated:
        warnings.append("the client was saturated: " + "; ".join(report.saturation))
    if 0 < report.answered < MIN_FOR_P99:
        warnings.append(f"only {report.answered:,} answer(s): too few for a p99 to mean much "
                        f"(at least {MIN_FOR_P99})")
    if report.sent and report.accepted + report.accepted_late == 0 and _kinds(report) == 1:
        warnings.append("every answer was the same error: the run measured that error, not "
                        "the endpoint")
    if report.interrupted:
        warnings.append("the run was " + (report.interruption or "interrupted")
                        + ": the figures cover what was sent")
    return warnings


def _kinds(report: LoadReport) -> int:
    return (len(report.failure_codes) + len(report.http_statuses)
            + bool(report.connection_errors) + bool(report.timeouts)
            + bool(report.contract_violations) + bool(report.too_large)
            + bool(report.client_errors))


def _concurrency(report: LoadReport) -> Criterion:
    name, wanted = "concurrency", CAMPAIGN_CONCURRENCY
    peak = report.peak_in_flight
    if report.rate is not None:
        return Criterion(name, NOT_TESTED, f"with --rate, requests in flight follow the "
                         "endpoint's latency; run with --count or --duration and no --rate to "
                         f"test {wanted} in flight", peak, wanted)
    if report.concurrency < wanted:
        return Criterion(name, NOT_TESTED, f"this run held at most {report.concurrency:,} in "
                         f"flight (--concurrency); CleverTap sends up to {wanted:,}", peak,
                         wanted)
    if report.sent == 0:
        return Criterion(name, NOT_TESTED, "nothing was sent", peak, wanted)
    if peak >= wanted and not report.connection_errors:
        return Criterion(name, PASS, f"held {peak:,} requests in flight", peak, wanted)
    why = (f"{report.connection_errors:,} connection(s) refused or reset"
           if report.connection_errors else f"only {peak:,} were in flight at once")
    return Criterion(name, FAIL, f"{wanted:,} in flight not held: {why}", peak, wanted)


def _deadline(report: LoadReport) -> Criterion:
    """Every message CleverTap would count as a timeout: answered after the deadline
    (whatever the answer), or not answered within --timeout at all."""
    name, limit = "deadline", f"0 over {report.deadline:g} s"
    late, timeouts = report.too_slow, report.timeouts
    if report.answered + timeouts == 0:
        why = "nothing was sent" if not report.sent else (
            "no answer came back: " + ", ".join(_failure_parts(report)))
        return Criterion(name, NOT_TESTED, why, None, limit)
    total = late + timeouts
    judged = report.answered + timeouts
    if total == 0:
        slowest = report.latency_ms.get("max")
        tail = f" (slowest {slowest:g} ms)" if slowest is not None else ""
        return Criterion(name, PASS, f"all {judged:,} answer(s) within the {report.deadline:g} "
                         f"s deadline{tail}", 0, limit)
    parts = []
    if report.accepted_late:
        parts.append(f"{report.accepted_late:,} accepted late")
    if late - report.accepted_late:
        parts.append(f"{late - report.accepted_late:,} refused late")
    if timeouts:
        parts.append(f"{timeouts:,} timed out (no answer within {_timeout_text(report)})")
    from ctwa.load.ceiling import throughput_ceiling

    ceiling = throughput_ceiling(report)  # why they were late, when the answers queued
    return Criterion(name, FAIL, f"{total:,} of {judged:,} message(s) ({total / judged:.0%}) "
                     f"not answered within the {report.deadline:g} s deadline: "
                     + ", ".join(parts) + "; CleverTap counts each as a timeout"
                     + (f". {ceiling}" if ceiling else ""), total, limit)


def _timeout_text(report: LoadReport) -> str:
    return f"{report.timeout:g} s" if report.timeout else "--timeout"


def _failures(report: LoadReport) -> Criterion:
    name = "failures"
    if report.sent == 0:
        return Criterion(name, NOT_TESTED, "nothing was sent", 0, 0)
    failed = report.failed
    if failed == 0:
        late = (f"; {report.accepted_late:,} of them late (see deadline)"
                if report.accepted_late else "")
        return Criterion(name, PASS, f"every one of {report.sent - report.abandoned:,} "
                         f"message(s) accepted{late}", 0, 0)
    same = (": every one the same error" if report.accepted + report.accepted_late == 0
            and _kinds(report) == 1 else "")
    return Criterion(name, FAIL, f"{failed:,} of {report.sent:,} message(s) not accepted"
                     f"{same}: " + ", ".join(_failure_parts(report)), failed, 0)


def _client(report: LoadReport) -> Criterion:
    """ctwa against itself: a run the client shaped says so before the endpoint is blamed."""
    name = "client"
    problems = []
    if report.client_errors:
        problems.append(f"{report.client_errors:,} request(s) failed in ctwa itself (out of "
                        "file descriptors or memory), not at the endpoint: lower "
                        "--concurrency or raise `ulimit -n`")
    if report.connect_errors:
        problems.append(f"{report.connect_errors:,} connection(s) could not be opened before "
                        "the start")
    if report.saturation:
        problems.append("the client, not only the endpoint, may have decided "
                        f"{within_reach(report)}: " + "; ".join(report.saturation)
                        + ". Add --workers, lower --concurrency or use a bigger machine "
                        "before blaming the endpoint")
    lag = report.loop_lag_ms.get("p99")
    if problems:
        return Criterion(name, WARNING, "; ".join(problems), lag, "no client limit")
    if not report.loop_lag_ms:
        return Criterion(name, PASS, "no client limit was reached", lag, "no client limit")
    return Criterion(name, PASS, f"the client kept up (its loop's lag p99 {lag:g} ms)", lag,
                     "no client limit")


def callbacks_criterion(trip: dict[str, Any]) -> Criterion:
    """--await-callbacks: every accepted message reached the awaited status, no anomaly."""
    accepted, complete = trip["accepted"], trip["complete"]
    anomalies = ", ".join(f"{k} {v:,}" for k, v in trip["anomalies"].items() if v)
    threshold = f"all reach {trip['until']}, no anomaly"
    if not accepted:
        return Criterion("callbacks", NOT_TESTED, "no message was accepted, so none could "
                         "cause a callback", 0, threshold)
    ok = not trip["problems"] and complete == accepted
    # "complete" counts a message that ended failed (failed ends a message): said apart, so
    # a failed message is never reported as having reached the awaited status
    failed = trip.get("furthest", {}).get("failed", 0)
    reason = (f"{complete - failed:,} of {accepted:,} accepted message(s) reached "
              f"{trip['until']}")
    if failed:
        codes = ", ".join(f"{code}: {n:,}" for code, n in trip.get("failed_codes", {}).items())
        reason += f", {failed:,} ended failed" + (f" ({codes})" if codes else "")
    reason += f"; anomalies: {anomalies}" if anomalies else "; no anomaly"
    diagnoses = trip.get("diagnoses") or []
    if diagnoses:
        from ctwa.roundtrip.diagnose import line

        reason += f"; diagnosis: {line(diagnoses[0])}"
    # every callback came, in order, but some messages failed rather than arrive: the round
    # trip works, the messages did not all get through (incomplete, not passed)
    status = FAIL if not ok else WARNING if failed else PASS
    return Criterion("callbacks", status, reason, complete, threshold)


def _failure_parts(report: LoadReport) -> list[str]:
    """Every message not accepted, by why, each class named once."""
    from ctwa.wire.codes import messaging_error_meaning

    parts = []
    if report.timeouts:
        parts.append(f"{report.timeouts:,} timed out (no answer within "
                     f"{_timeout_text(report)})")
    if report.connection_errors:
        parts.append(f"{report.connection_errors:,} connection error(s) (refused or reset)")
    for code, n in report.failure_codes.items():
        meaning = messaging_error_meaning(int(code)) if code.isdecimal() else "no code"
        parts.append(f"{n:,} refused with failure {code} ({meaning})")
    for status, n in report.http_statuses.items():
        parts.append(f"{n:,} refused with HTTP {status}")
    if report.contract_violations:
        parts.append(f"{report.contract_violations:,} contract violation(s)")
    if report.too_large:
        parts.append(f"{report.too_large:,} answer(s) too large")
    if report.client_errors:
        parts.append(f"{report.client_errors:,} failed in ctwa itself")
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

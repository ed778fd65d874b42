"""The send flow as one job: what to send, where, how (once, or as a load run), and whether to
wait for the callbacks, in one frozen object; one runner does it and returns the run's
result and verdict. The CLI parses options into a job and renders what comes back; the
runner knows nothing of Typer or rich (it speaks through ``Hooks``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ctwa.report.verdict import Verdict


@dataclass(frozen=True)
class LoadSettings:
    """Load mode: ``count`` messages or ``duration`` seconds, at ``rate`` arrivals per second
    (open model) or as fast as ``concurrency`` senders go (closed), over ``workers``
    processes (None: ctwa's defaults)."""

    count: int | None = None
    duration: float | None = None
    rate: float | None = None
    concurrency: int | None = None
    workers: int | None = None


@dataclass(frozen=True)
class AwaitSettings:
    """--await-callbacks: wait up to ``timeout`` seconds for each message to reach
    ``until``, the callbacks arriving at ``listen``."""

    until: str = "delivered"
    timeout: float = 60.0
    listen: str = "127.0.0.1:8787"


@dataclass(frozen=True)
class SendJob:
    payload: Any
    endpoint: Any  # ctwa.send.endpoint.Endpoint: url, auth, headers
    recipients: tuple[str, ...] = ()
    timeout: float = 10.0
    deadline: float = 1.0
    wrapped: bool = False
    warnings: tuple[str, ...] = ()
    load: LoadSettings | None = None
    awaiting: AwaitSettings | None = None
    #: what a load run's row in the store is named after (``load-...``, ``certify-...``)
    run_name: str = "load"


def _nothing(*_: Any) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """How the runner speaks while it runs (the CLI passes its output's methods)."""

    say: Callable[[str], None] = _nothing  # notices: "waiting up to 60 s ..."
    warn: Callable[[str], None] = _nothing  # the store failed, and similar
    trace: Callable[[str], None] | None = None  # -v: each request and answer
    on_progress: Callable[[Any], None] | None = None  # load: ctwa.load.engine.Progress
    on_wait: Callable[[int, int, float], None] | None = None  # done, expected, waited
    on_start: Callable[[Any], None] = _nothing  # load: the plan, before the start line


@dataclass
class JobOutcome:
    """What a job did: ``result`` is a ctwa.send.messaging.SendResult (one send) or a
    ctwa.load.engine.LoadReport (load mode); ``verdict`` judges it (callbacks included)."""

    job: SendJob
    result: Any
    verdict: Verdict
    started: float
    ended: float
    msg_id: str | None = None
    trip: Any = None  # the round trip (ctwa.roundtrip.waiting), when awaited
    reached: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)  # one send's callbacks
    interrupted: bool = False
    plan: Any = None


def run_job(job: SendJob, hooks: Hooks | None = None) -> JobOutcome:
    """Do the job: send once or run the load, keep what was sent in the store, wait for the
    callbacks when asked (a listener started for the wait when none runs), and judge."""
    hooks = hooks or Hooks()
    if job.awaiting is None:
        return _run(job, hooks)
    from ctwa.roundtrip.waiting import listener_for
    from ctwa.store.db import store_path

    # the endpoint: a ctwa sandbox there calls back to itself
    with listener_for(job.awaiting.listen, store_path(), hooks.say, job.endpoint.url):
        return _run(job, hooks)


def _run(job: SendJob, hooks: Hooks) -> JobOutcome:
    return _single(job, hooks) if job.load is None else _load(job, hooks)


def _single(job: SendJob, hooks: Hooks) -> JobOutcome:
    from ctwa.send.messaging import deliver

    started = time.time()
    result = deliver(job.endpoint, job.payload, timeout=job.timeout, deadline=job.deadline,
                     trace=hooks.trace)
    result.warnings = list(job.warnings)
    msg_id = _record_send(result, started, hooks)
    outcome = JobOutcome(job, result, result.run_verdict(), started, time.time(), msg_id)
    answered_in_body = result.verdict.accepted or result.verdict.outcome == "too-slow"
    if job.awaiting is None or msg_id is None or not answered_in_body:
        return outcome
    from ctwa.roundtrip.record import message_kind
    from ctwa.roundtrip.story import callback_events
    from ctwa.roundtrip.waiting import parse_listen, round_trip, wait_for
    from ctwa.store.db import Store

    awaiting = job.awaiting
    host, port = parse_listen(awaiting.listen)
    with Store() as store:
        try:
            outcome.reached = wait_for(store, awaiting.until, awaiting.timeout,
                                       msg_ids=[msg_id], expected=1, on_progress=hooks.on_wait)
        except KeyboardInterrupt:  # Ctrl-C: judge what did arrive
            outcome.interrupted = True
        outcome.trip = round_trip(store, {msg_id: started}, awaiting.until, started,
                                  time.time(), kinds={msg_id: message_kind(job.payload)},
                                  where=f"http://{host}:{port}")
        outcome.events = callback_events(store, msg_id, started)
    outcome.verdict = replace(result.run_verdict(outcome.trip.as_dict()),
                              interrupted=outcome.interrupted)
    outcome.ended = time.time()
    return outcome


def _record_send(result: Any, at: float, hooks: Hooks) -> str | None:
    """Keep one send in the store; its msgId. A store that fails is a warning: the message
    went, and saying so matters more than keeping it."""
    from ctwa.roundtrip.record import send_record
    from ctwa.store.db import Store, StoreError

    record = send_record(result, at)
    if record is None:
        return None
    try:
        with Store() as store:
            store.add_sends([record])
    except StoreError as exc:
        hooks.warn(f"not kept in the store: {exc}")
    return record.msg_id


def plan_of(job: SendJob) -> Any:
    """The load plan a job makes: CleverTap's concurrency (min(count, 1500)) unless told,
    one worker for small runs, else one per core."""
    import os

    from ctwa.http import load_headers
    from ctwa.load.plan import CAMPAIGN_CONCURRENCY, LoadPlan

    load = job.load
    assert load is not None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    small = load.count is not None and load.count < 500
    workers = load.workers or (1 if small else cores)
    concurrency = load.concurrency or min(load.count or CAMPAIGN_CONCURRENCY,
                                          CAMPAIGN_CONCURRENCY)
    endpoint = job.endpoint
    return LoadPlan(endpoint.url, load_headers(endpoint.auth, endpoint.headers), job.payload,
                    job.recipients, load.count, load.duration, load.rate,
                    max(concurrency, workers), workers, job.deadline, job.timeout,
                    job.wrapped, record=True)


def _load(job: SendJob, hooks: Hooks) -> JobOutcome:
    from ctwa.load.engine import run_load, verdict
    from ctwa.roundtrip.record import finish_load_run, start_load_run
    from ctwa.store.db import Store, StoreError

    plan = plan_of(job)
    run_id = None
    try:
        with Store() as store:
            run_id = start_load_run(store, plan, job.payload, name=job.run_name)
    except StoreError as exc:
        if job.awaiting is not None:  # the wait reads the store: it must work
            raise
        hooks.warn(f"messages not kept in the store: {exc}")
    hooks.on_start(plan)
    started = time.time()
    report = run_load(plan, hooks.on_progress)
    if run_id is not None:
        try:
            with Store() as store:
                finish_load_run(store, run_id, report)
        except StoreError as exc:
            hooks.warn(f"messages not kept in the store: {exc}")
    outcome = JobOutcome(job, report, report.verdict, started, time.time(),
                         interrupted=report.interrupted, plan=plan)
    if job.awaiting is not None and not report.interrupted:
        outcome.trip = _await_load(job.awaiting, plan, report, hooks)
        outcome.interrupted = report.interrupted
    report.verdict = verdict(report)  # the one verdict, the round trip's criterion included
    outcome.verdict, outcome.ended = report.verdict, time.time()
    return outcome


def _await_load(awaiting: AwaitSettings, plan: Any, report: Any, hooks: Hooks) -> Any:
    """Wait for the run's callbacks and put DLR completeness in the report; the round trip
    (ctwa.roundtrip.waiting.RoundTrip), or None when the run kept no outcomes."""
    from ctwa.roundtrip.record import load_round_trip
    from ctwa.roundtrip.waiting import wait_for
    from ctwa.store.db import Store

    outcomes = report.outcomes
    if outcomes is None:
        return None
    expected = outcomes.accepted_count()
    hooks.say(f"waiting up to {awaiting.timeout:g} s for the callbacks of {expected:,} "
              f"accepted message(s) to reach {awaiting.until}")
    with Store() as store:
        try:
            wait_for(store, awaiting.until, awaiting.timeout, prefix=plan.prefix,
                     expected=expected, on_progress=hooks.on_wait)
        except KeyboardInterrupt:  # Ctrl-C: judge what did arrive
            report.interrupted = True
        trip = load_round_trip(store, plan, report, awaiting.until)
    report.round_trip = trip.as_dict()
    return trip

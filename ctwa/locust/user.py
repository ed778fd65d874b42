"""The Locust user that sends ctwa's scenario, judges every answer with ctwa's own judge, and
records latencies in an HDR histogram; workers ship their histogram and counters to the master
with every stats report (``report_to_master``), the master merges them exactly
(``worker_report``) and writes ctwa's run JSON (``--ctwa-json``) and report (``--ctwa-report``)
at the end, so ``ctwa report diff`` works on distributed runs too.

Imported only inside Locust, by a locustfile ``ctwa load export --locust`` wrote.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from locust import FastHttpUser, constant, events, task

from ctwa.infra.errors import ConfigError, CtwaError
from ctwa.load.run import SUCCESS_BODIES, _dumps, _micros
from ctwa.send.judge import judge

_DUMPS = _dumps()

NAME = "CleverTap message"
HIST_RANGE = (1, 600_000_000, 2)  # microseconds, as load mode


def _histogram() -> Any:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(*HIST_RANGE)


class Tally:
    """What one process saw since its last report (deltas), or in all (the master's merge)."""

    def __init__(self) -> None:
        self.histogram = _histogram()
        self.counts: Counter[str] = Counter()

    def add(self, other: dict[str, Any]) -> None:
        from hdrh.histogram import HdrHistogram

        if other.get("hist"):
            self.histogram.add(HdrHistogram.decode(other["hist"]))
        self.counts.update(other.get("counts", {}))

    def take(self) -> dict[str, Any]:
        """This tally as a message, and a fresh start (what was sent is the master's now)."""
        data = {"hist": self.histogram.encode().decode("ascii")
                if self.histogram.get_total_count() else "", "counts": dict(self.counts)}
        self.histogram.reset()
        self.counts.clear()
        return data


LOCAL = Tally()  # this process's sends since its last report
STATE: dict[str, Any] = {"started": None, "ended": None, "peak_users": 0}
WORKERS: dict[str, Tally] = {}  # on the master: each worker's whole run
MERGED = Tally()  # on the master (or a lone process): everything
ERRORS: dict[str, str] = {}  # worker -> what stopped it
_COUNTER = itertools.count()


class CtwaUser(FastHttpUser):
    """Closed loop, as CleverTap's sender: each user sends its next message when the last is
    answered. Subclasses set ``scenario_file``."""

    abstract = True
    scenario_file: ClassVar[Path | str] = ""
    wait_time = constant(0)
    _prepared: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.scenario_file:
            from urllib.parse import urlsplit

            from ctwa.locust.scenario import load_scenario

            try:
                scenario = load_scenario(Path(cls.scenario_file))
            except CtwaError as exc:
                sys.stderr.write(f"error: {exc}\n")
                raise SystemExit(int(exc.exit_code)) from None
            parts = urlsplit(scenario.url)
            cls.host = f"{parts.scheme}://{parts.netloc}"
            cls._scenario = scenario  # type: ignore[attr-defined]
            cls._path = parts.path + (f"?{parts.query}" if parts.query else "")  # type: ignore[attr-defined]

    def on_start(self) -> None:
        cls = type(self)
        if cls._prepared is None:
            scenario = cls._scenario  # type: ignore[attr-defined]
            try:
                headers = scenario.headers_with_auth(os.environ)
            except ConfigError as exc:
                _stop_for(self.environment, exc)
                return
            from ctwa.load.plan import LoadPlan

            cls._prepared = {"plan": LoadPlan(scenario.url, headers, scenario.payload,
                                              tuple(scenario.recipients), count=1,
                                              wrapped=scenario.wrapped),
                             "headers": headers, "deadline": scenario.deadline}
        STATE["peak_users"] = max(STATE["peak_users"], self.environment.runner.user_count
                                  if self.environment.runner else 0)

    @task
    def send(self) -> None:
        prepared = type(self)._prepared
        if prepared is None:
            self.stop()
            return
        body = prepared["plan"].body(next(_COUNTER), _DUMPS)
        began = time.perf_counter()
        with self.client.post(type(self)._path, data=body,  # type: ignore[attr-defined]
                              headers=prepared["headers"], catch_response=True,
                              name=NAME) as response:
            elapsed = time.perf_counter() - began
            counts = LOCAL.counts
            counts["sent"] += 1
            status = response.status_code or 0
            if status == 0:
                if "timeout" in type(response.error).__name__.lower() or "timed out" in str(
                        response.error).lower():
                    counts["timeouts"] += 1
                    response.failure(f"timeout: {response.error}")
                    return
                counts["connection_errors"] += 1
                response.failure(f"connection error: {response.error}")
                return
            LOCAL.histogram.record_value(_micros(elapsed))
            content = response.content or b""
            if status == 200 and content in SUCCESS_BODIES and elapsed <= prepared["deadline"]:
                counts["accepted"] += 1  # the common case, without parsing (as load mode)
                response.success()
                return
            verdict = judge(status, content, elapsed, prepared["deadline"])
            if verdict.accepted:
                counts["accepted"] += 1
                response.success()
                return
            if verdict.outcome == "too-slow":  # late: counted late, then by what it said
                counts["too_slow"] += 1
                if verdict.notes and verdict.notes[0] == "accepted":
                    counts["accepted_late"] += 1
                    response.failure(f"{verdict.outcome}: {verdict.summary}"[:200])
                    return
                verdict = judge(status, content, 0.0, prepared["deadline"])
            if status != 200:
                counts[f"http:{status}"] += 1
            elif verdict.outcome == "rejected":
                counts[f"code:{verdict.error_code}"] += 1
            else:
                counts["contract_violations"] += 1
            response.failure(f"{verdict.outcome}: {verdict.summary}"[:200])


def _stop_for(environment: Any, error: CtwaError) -> None:
    """A worker that cannot send (a secret missing): tell the master, and exit with ctwa's
    code for the failure."""
    sys.stderr.write(f"error: {error}\n")
    runner = environment.runner
    if runner is not None and type(runner).__name__ == "WorkerRunner":
        runner.send_message("ctwa_error", {"worker": runner.client_id, "error": str(error)})
    environment.process_exit_code = int(error.exit_code)
    if runner is not None:
        runner.quit()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--ctwa-json", metavar="FILE", default=None,
                        help="Write ctwa's run JSON (exact merged percentiles) at the end")
    parser.add_argument("--ctwa-report", metavar="FILE", default=None,
                        help="Write ctwa's HTML report at the end")


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if runner is not None and type(runner).__name__ == "MasterRunner":
        runner.register_message("ctwa_error", _worker_failed)


def _worker_failed(environment: Any, msg: Any, **_: Any) -> None:
    ERRORS[msg.data["worker"]] = msg.data["error"]
    sys.stderr.write(f"error: worker {msg.data['worker']}: {msg.data['error']}\n")


@events.test_start.add_listener
def _started(**_: Any) -> None:
    STATE["started"] = STATE["started"] or time.time()


@events.report_to_master.add_listener
def _report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data["ctwa"] = LOCAL.take()


@events.worker_report.add_listener
def _merge(client_id: str, data: dict[str, Any], **_: Any) -> None:
    part = data.get("ctwa")
    if part:
        WORKERS.setdefault(client_id, Tally()).add(part)
        MERGED.add(part)


@events.test_stop.add_listener
def _stopped(environment: Any, **_: Any) -> None:
    STATE["ended"] = time.time()


@events.quitting.add_listener
def _write(environment: Any, **_: Any) -> None:
    runner = environment.runner
    kind = type(runner).__name__ if runner is not None else ""
    if kind == "WorkerRunner":
        return
    if kind != "MasterRunner":  # one process: its own tally is everything
        MERGED.add(LOCAL.take())
    options = environment.parsed_options
    if options is None or not (options.ctwa_json or options.ctwa_report):
        return
    missing = [c.id for c in runner.clients.missing] if kind == "MasterRunner" else []
    run = run_document(environment, missing)
    if options.ctwa_json:
        Path(options.ctwa_json).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    if options.ctwa_report:
        from ctwa.report.html import render

        Path(options.ctwa_report).write_text(render(_summary(run)), encoding="utf-8")


def run_document(environment: Any, missing: list[str]) -> dict[str, Any]:
    """ctwa's run JSON (the shape of a load run's ``--json``), from the merged tallies."""
    from ctwa.load.engine import CURVE, LoadReport, _percentiles, verdict

    counts = MERGED.counts
    started = STATE["started"] or time.time()
    elapsed = max((STATE["ended"] or time.time()) - started, 1e-9)
    users = getattr(environment.parsed_options, "num_users", None) or STATE["peak_users"]
    report = LoadReport(
        "", sent=counts["sent"], accepted=counts["accepted"], too_slow=counts["too_slow"],
        accepted_late=counts["accepted_late"], timeouts=counts["timeouts"],
        connection_errors=counts["connection_errors"],
        contract_violations=counts["contract_violations"],
        failure_codes={k[5:]: v for k, v in sorted(counts.items()) if k.startswith("code:")},
        http_statuses={k[5:]: v for k, v in sorted(counts.items()) if k.startswith("http:")},
        latency_ms=_percentiles(MERGED.histogram), elapsed=round(elapsed, 3),
        workers=max(1, len(WORKERS)), loop="locust", peak_in_flight=int(users or 0),
        interrupted=bool(missing or ERRORS))
    scenario = next((u._scenario for u in environment.user_classes
                     if hasattr(u, "_scenario")), None)
    if scenario is not None:
        report.url, report.deadline = scenario.url, scenario.deadline
        report.concurrency = int(users or scenario.concurrency)
    report.requests_per_second = round(report.sent / elapsed, 1)
    if MERGED.histogram.get_total_count():
        report.latency_curve = [[p, round(MERGED.histogram.get_value_at_percentile(p) / 1000,
                                          3)] for p in CURVE]
    if missing or ERRORS:
        report.interruption = "incomplete (" + "; ".join(
            [f"worker {w} stopped reporting" for w in missing]
            + [f"worker {w}: {e}" for w, e in ERRORS.items()]) + ")"
    report.verdict = verdict(report)
    document = report.as_dict()
    document["started_at"] = started
    document["incomplete"] = {"missing_workers": missing, "worker_errors": ERRORS}
    document["workers_detail"] = {
        worker: {"sent": tally.counts["sent"],
                 "hist": tally.histogram.encode().decode("ascii")
                 if tally.histogram.get_total_count() else ""}
        for worker, tally in WORKERS.items()}
    return document


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    from ctwa.load.engine import LoadReport
    from ctwa.report.summary import load_summary

    report = LoadReport.from_dict(run)
    return load_summary(report, run["started_at"], time.time(), argv=sys.argv[1:])

"""A run's summary: what ran, against what, when, the criteria it was judged by, the metrics
``report diff`` compares, the warnings that make a pass meaningless, and the run's own data.
One shape for every kind of run, so one renderer, one JUnit writer and one diff serve all."""

from __future__ import annotations

import os
import platform
import secrets
import sys
import time
from typing import Any

from ctwa.report.verdict import (
    FAIL,
    NOT_TESTED,
    PASS,
    WARNING,
    Criterion,
    Verdict,
    run_criterion,
)

#: Options whose value is a secret, masked in the command line a report shows.
SECRET_OPTIONS = ("--password", "--token", "--passcode", "--import-token")


def masked_argv(argv: list[str] | None = None) -> str:
    import shlex

    from ctwa.infra.masking import MASK, scrub

    args = list(sys.argv[1:] if argv is None else argv)
    shown = ["ctwa"]
    hide_next = False
    for arg in args:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name in SECRET_OPTIONS:
            if eq:
                shown.append(f"{name}={MASK}")
            else:
                shown.append(arg)
                hide_next = True
            continue
        shown.append(scrub(arg))
    return " ".join(shlex.quote(a) for a in shown)


def criterion(name: str, status: str, reason: str, measured: Any = None,
              threshold: Any = None) -> Criterion:
    return Criterion(name, status, reason, measured, threshold)


def new_summary(kind: str, *, target: str, started: float, ended: float,
                verdict: Verdict, metrics: dict[str, float], data: dict[str, Any],
                warnings: list[str] | None = None,
                argv: list[str] | None = None) -> dict[str, Any]:
    """The summary of a run judged by ``verdict``: its outcome, criteria and warnings are
    the verdict's, copied once here, so every renderer of the summary says the same."""
    from ctwa import __version__

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    if warnings:
        verdict = Verdict(verdict.criteria, verdict.interrupted,
                          tuple(dict.fromkeys([*verdict.warnings, *warnings])))
    document = verdict.as_dict()
    return safe_summary({
        "schema": 2, "id": f"{kind}-{stamp}-{secrets.token_hex(2)}", "kind": kind,
        "ctwa_version": __version__, "command": masked_argv(argv), "target": target,
        "machine": {"host": platform.node(), "system": platform.platform(terse=True),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "started": started, "ended": ended, "outcome": verdict.outcome,
        "passed": verdict.passed, "verdict": document, "criteria": document["criteria"],
        "metrics": metrics, "warnings": document["warnings"], "data": data,
    })


def safe_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The one masking step before any writer (the store, results.json, the HTML report, the
    JUnit file, ``report render``, ``--json``): every string of the summary, its data and its
    verdict included, made safe (masked, control characters escaped, lone surrogates
    replaced), so that no secret is written and every file parses back."""
    from ctwa.infra.safetext import json_ready, safe_value

    safe: dict[str, Any] = safe_value(json_ready(summary))
    return safe


def load_summary(report: Any, started: float, ended: float,
                 argv: list[str] | None = None) -> dict[str, Any]:
    """A load run: its verdict (``report.verdict``, made by the engine from the counts,
    never from text), its metrics, and its data."""
    data = report.as_dict()
    answered = max(1, report.sent - report.connection_errors - report.abandoned)
    latency = report.latency_ms
    metrics = {"p50": latency.get("p50", 0.0), "p90": latency.get("p90", 0.0),
               "p99": latency.get("p99", 0.0), "rps": report.requests_per_second,
               "errors": round(100 * report.failed / answered, 4),
               "too_slow": round(100 * report.not_in_time / answered, 4),
               "sent": float(report.sent)}
    return new_summary("load", target=report.url, started=started, ended=ended,
                       verdict=report.verdict, metrics=metrics, data=data, argv=argv)


def upload_verdict(report: Any) -> Verdict:
    """Every row uploaded, and the counts adding up; a dry run or an interrupted upload
    is incomplete, never a pass."""
    counts = report.counts
    again = ("run the same command again (a dry run sends nothing)" if report.dry_run else
             "run it again with --resume")
    criteria = [run_criterion(sent=counts.rows_read, interrupted=report.interrupted,
                              what="row", interruption=f"interrupted ({again})")]
    if report.error and not report.interrupted:
        criteria[0] = criterion("run complete", FAIL, f"the upload stopped after "
                                f"{counts.rows_read:,} row(s): {report.error}",
                                counts.rows_read, "the whole file")
    elif criteria[0].status == PASS:
        # rows are read and checked to the end; what went out is told apart from what was read
        told = ("none sent (a dry run)" if report.dry_run else
                f"{counts.uploaded:,} uploaded" + (f", {counts.refused:,} refused by CleverTap"
                                                  if counts.refused else ""))
        criteria[0] = criterion("run complete", PASS, f"{counts.rows_read:,} row(s) read and "
                                f"checked, to the end; {told}", counts.rows_read,
                                "the whole file")
    checked = counts.rows_read
    valid = criterion("rows valid", PASS if not counts.rejected else FAIL,
                      f"all {checked:,} row(s) passed the checks" if not counts.rejected else
                      f"{counts.rejected:,} of {checked:,} row(s) rejected before sending"
                      + (f" (reasons in {report.rejects})" if report.rejects and
                         not report.dry_run else ""), checked - counts.rejected, checked)
    sendable = checked - counts.rejected
    if report.dry_run:
        rows = criterion("rows uploaded", NOT_TESTED, "a dry run uploads nothing", 0,
                         sendable)
    elif sendable == 0:
        rows = criterion("rows uploaded", NOT_TESTED, "no valid row to upload", 0, 0)
    else:
        missing = counts.refused + counts.not_uploaded
        parts = [f"{counts.uploaded:,} of {sendable:,} valid row(s) uploaded"]
        if counts.refused:
            parts.append(f"{counts.refused:,} refused by CleverTap")
        if counts.not_uploaded:
            parts.append(f"{counts.not_uploaded:,} not uploaded"
                         + (f" ({report.error})" if report.error else ""))
        rows = criterion("rows uploaded", PASS if missing == 0 else FAIL, ", ".join(parts),
                         counts.uploaded, sendable)
    accounted = (counts.uploaded + counts.rejected + counts.refused + counts.not_uploaded
                 + counts.would_upload)
    reconciled = criterion(
        "reconciliation", PASS if counts.adds_up else FAIL,
        f"{counts.rows_read:,} rows read, every one accounted for" if counts.adds_up else
        f"the counts do not add up: {counts.rows_read:,} rows read, {accounted:,} accounted "
        "for", accounted, counts.rows_read)
    criteria += [valid, rows, reconciled]
    warnings = (f"the upload was interrupted: {again}",) if report.interrupted else ()
    return Verdict(tuple(criteria), report.interrupted, warnings)


def upload_summary(report: Any, started: float, ended: float, target: str,
                   argv: list[str] | None = None) -> dict[str, Any]:
    counts = report.counts
    data = report.as_dict()
    read = max(1, counts.rows_read)
    metrics = {"rows_per_second": round(counts.rows_read / report.elapsed, 1)
               if report.elapsed else 0.0,
               "rejected": round(100 * (counts.rejected + counts.refused) / read, 4),
               "rows": float(counts.rows_read)}
    return new_summary("upload", target=target, started=started, ended=ended,
                       verdict=upload_verdict(report), metrics=metrics, data=data, argv=argv)


def import_verdict(report: Any) -> Verdict:
    complete = report.complete and report.error is None
    fetched = f"{report.fetched:,} template(s) over {report.pages:,} page(s)"
    criteria = [criterion("import", PASS if complete else FAIL,
                          fetched + (f", then stopped: {report.error}" if report.error else
                                     "" if complete else ", then stopped before the end"),
                          report.pages, "every page"),
                # the vendor's invalid templates are skipped, as they should be: the import
                # did its job, but the library is not what the vendor offers
                criterion("templates valid", PASS if not report.rejected else WARNING,
                          "every template passed the checks" if not report.rejected else
                          f"{len(report.rejected):,} of {report.fetched:,} template(s) failed "
                          "the checks and were skipped", len(report.rejected), 0)]
    if report.fetched == 0 and complete:
        criteria[0] = criterion("import", NOT_TESTED, "the vendor offered no template",
                                0, "every page")
    return Verdict(tuple(criteria), False, tuple(report.notices))


def import_summary(report: Any, started: float, ended: float,
                   argv: list[str] | None = None) -> dict[str, Any]:
    data = report.as_dict()
    metrics = {"seconds": round(ended - started, 3), "templates": float(report.fetched),
               "rejected": float(len(report.rejected))}
    return new_summary("import", target=report.url, started=started, ended=ended,
                       verdict=import_verdict(report), metrics=metrics, data=data,
                       argv=argv)


def simple_summary(kind: str, target: str, started: float, ended: float,
                   verdict: Verdict, data: dict[str, Any],
                   metrics: dict[str, float], argv: list[str] | None = None) -> dict[str, Any]:
    """Replay, listen and single sends: their verdict, their counts."""
    return new_summary(kind, target=target, started=started, ended=ended, verdict=verdict,
                       metrics=metrics, data=data, argv=argv)


def replay_verdict(answers: list[Any], events: int, interrupted: bool) -> Verdict:
    """Every callback request answered 2xx; one no request reached is ``reachable``."""
    from collections import Counter

    sent = len(answers)
    criteria = [run_criterion(sent=sent, interrupted=interrupted, what="request")]
    if interrupted and sent < events:
        criteria[0] = criterion("run complete", NOT_TESTED,
                                f"interrupted (Ctrl-C) after {sent:,} of {events:,} "
                                "request(s): run the command again to send the fixtures",
                                sent, events)
    failed = [a for a in answers if not a.ok]
    unanswered = [a for a in failed if a.status is None]
    if sent and len(unanswered) == sent:
        errors = Counter(a.error or "no answer" for a in unanswered)
        criteria.append(criterion("reachable", FAIL, f"none of {sent:,} request(s) got an "
                                  "answer: " + ", ".join(f"{e} ({n:,})" for e, n in
                                                         errors.most_common(3)), 0, sent))
    if not sent:
        criteria.append(criterion("answers", NOT_TESTED, "no request was sent", 0, 0))
    elif not failed:
        criteria.append(criterion("answers", PASS, f"all {sent:,} request(s) answered 2xx",
                                  0, 0))
    else:
        by = Counter(f"HTTP {a.status}" if a.status is not None else "no answer"
                     for a in failed)
        criteria.append(criterion("answers", FAIL, f"{len(failed):,} of {sent:,} request(s) "
                                  "not answered 2xx: " + ", ".join(
                                      f"{n:,} {what}" for what, n in by.most_common()),
                                  len(failed), 0))
    return Verdict(tuple(criteria), interrupted)


def listen_verdict(tallies: dict[str, Any]) -> Verdict:
    """Every callback received valid, and in an order that can happen."""
    received, invalid = tallies["callbacks"], tallies["invalid"]
    anomalies = tallies["anomaly_count"]
    if not received:
        return Verdict((criterion("callbacks valid", NOT_TESTED, "no callback arrived", 0, 0),
                        criterion("order", NOT_TESTED, "no callback arrived", 0, 0)))
    valid = criterion("callbacks valid", PASS if not invalid else FAIL,
                      f"all {received:,} callback(s) in CleverTap's format" if not invalid
                      else f"{invalid:,} of {received:,} callback(s) break the contract "
                      "(each one's problems were printed as it came)", invalid, 0)
    order = criterion("order", PASS if not anomalies else FAIL,
                      "every message's statuses came in an order that can happen"
                      if not anomalies else f"{anomalies:,} status(es) out of order "
                      "(read before sent, anything after failed, ...)", anomalies, 0)
    return Verdict((valid, order))

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

PASS, FAIL, NOT_TESTED = "pass", "fail", "not tested"
#: Options whose value is a secret, masked in the command line a report shows.
SECRET_OPTIONS = ("--password", "--token", "--passcode", "--import-token")
#: Fewer answers than this and a p99 says little.
MIN_FOR_P99 = 100


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


def criterion(name: str, status: str, detail: str) -> dict[str, str]:
    return {"name": name, "status": status, "detail": detail}


def new_summary(kind: str, *, target: str, started: float, ended: float,
                criteria: list[dict[str, str]], metrics: dict[str, float],
                warnings: list[str], data: dict[str, Any],
                argv: list[str] | None = None) -> dict[str, Any]:
    from ctwa import __version__

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    passed = all(c["status"] != FAIL for c in criteria) and any(
        c["status"] == PASS for c in criteria)
    return safe_summary({
        "schema": 1, "id": f"{kind}-{stamp}-{secrets.token_hex(2)}", "kind": kind,
        "ctwa_version": __version__, "command": masked_argv(argv), "target": target,
        "machine": {"host": platform.node(), "system": platform.platform(terse=True),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "started": started, "ended": ended, "passed": passed, "criteria": criteria,
        "metrics": metrics, "warnings": warnings, "data": data,
    })


def safe_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The one masking step before any writer (the store, results.json, the HTML report, the
    JUnit file, ``report render``, ``--json``): every string of the summary, its data
    included, made safe (masked, control characters escaped, lone surrogates replaced), so
    that no secret is written and every file parses back."""
    from ctwa.infra.safetext import json_ready, safe_value

    safe: dict[str, Any] = safe_value(json_ready(summary))
    return safe


def load_summary(report: Any, started: float, ended: float,
                 argv: list[str] | None = None) -> dict[str, Any]:
    """A load run: the criteria (deadline, concurrency, failures, the round trip when
    awaited), its metrics, and what makes its pass meaningless."""
    data = report.as_dict()
    answered = max(1, report.sent - report.connection_errors - report.abandoned)
    criteria = []
    for line in report.verdict:
        head, _, detail = line.partition(": ")
        status = {"PASS": PASS, "FAIL": FAIL, "not tested": NOT_TESTED}.get(head)
        if status is not None:
            criteria.append(criterion(_criterion_name(detail), status, detail))
    trip = report.round_trip
    if trip is not None:
        from ctwa.roundtrip.diagnose import line

        ok = not trip["problems"] and trip["complete"] == trip["accepted"]
        criteria.append(criterion("callbacks", PASS if ok else FAIL,
                                  f"{trip['complete']:,} of {trip['accepted']:,} reached "
                                  f"{trip['until']}; anomalies: " + (", ".join(
                                      f"{k} {v:,}" for k, v in trip["anomalies"].items())
                                      or "none") + "".join(
                                          f"; diagnosis: {line(d)}" for d in
                                          trip.get("diagnoses", [])[:1])))
    latency = report.latency_ms
    metrics = {"p50": latency.get("p50", 0.0), "p90": latency.get("p90", 0.0),
               "p99": latency.get("p99", 0.0), "rps": report.requests_per_second,
               "errors": round(100 * report.failed / answered, 4),
               "too_slow": round(100 * report.too_slow / answered, 4),
               "sent": float(report.sent)}
    warnings = []
    if report.client_saturated:
        warnings.append("the client was saturated: " + "; ".join(report.saturation))
    if 0 < report.sent - report.connection_errors < MIN_FOR_P99:
        warnings.append(f"only {report.sent:,} request(s): too few for a p99 to mean much "
                        f"(at least {MIN_FOR_P99})")
    kinds = (len(report.failure_codes) + len(report.http_statuses)
             + bool(report.connection_errors) + bool(report.contract_violations))
    if report.sent and report.accepted == 0 and kinds == 1:
        warnings.append("every answer was the same error: the run measured that error, not "
                        "the endpoint")
    if report.interrupted:
        warnings.append("the run was interrupted: the figures cover what was sent")
    return new_summary("load", target=report.url, started=started, ended=ended,
                       criteria=criteria, metrics=metrics, warnings=warnings, data=data,
                       argv=argv)


def _criterion_name(detail: str) -> str:
    text = detail.lower()
    if "deadline" in text:
        return "deadline"
    if "concurrent" in text or "in flight" in text:
        return "concurrency"
    if "not accepted" in text:
        return "failures"
    if "credentials" in text:
        return "credentials"
    return detail.split(" ")[0]


def upload_summary(report: Any, started: float, ended: float, target: str,
                   argv: list[str] | None = None) -> dict[str, Any]:
    counts = report.counts
    data = report.as_dict()
    read = max(1, counts.rows_read)
    if report.dry_run:
        rows = criterion("rows uploaded", NOT_TESTED, "a dry run uploads nothing")
    else:
        ok = counts.not_uploaded == 0 and counts.refused == 0 and counts.adds_up
        rows = criterion("rows uploaded", PASS if ok else FAIL,
                         f"{counts.uploaded:,} uploaded, {counts.rejected:,} rejected before "
                         f"sending, {counts.refused:,} refused by CleverTap, "
                         f"{counts.not_uploaded:,} not uploaded")
    criteria = [rows, criterion("reconciliation", PASS if counts.adds_up else FAIL,
                                f"{counts.rows_read:,} rows read, every one accounted for"
                                if counts.adds_up else "the counts do not add up")]
    metrics = {"rows_per_second": round(counts.rows_read / report.elapsed, 1)
               if report.elapsed else 0.0,
               "rejected": round(100 * (counts.rejected + counts.refused) / read, 4),
               "rows": float(counts.rows_read)}
    warnings = ["the upload was interrupted: run it again with --resume"] if \
        report.interrupted else []
    return new_summary("upload", target=target, started=started, ended=ended,
                       criteria=criteria, metrics=metrics, warnings=warnings, data=data,
                       argv=argv)


def import_summary(report: Any, started: float, ended: float,
                   argv: list[str] | None = None) -> dict[str, Any]:
    data = report.as_dict()
    ok = report.complete and report.error is None
    criteria = [criterion("import", PASS if ok else FAIL,
                          f"{report.fetched:,} template(s) over {report.pages:,} page(s)"
                          + (f": {report.error}" if report.error else "")),
                criterion("templates valid", PASS if not report.rejected else FAIL,
                          f"{len(report.rejected):,} rejected")]
    metrics = {"seconds": round(ended - started, 3), "templates": float(report.fetched),
               "rejected": float(len(report.rejected))}
    return new_summary("import", target=report.url, started=started, ended=ended,
                       criteria=criteria, metrics=metrics, warnings=list(report.notices),
                       data=data, argv=argv)


def simple_summary(kind: str, target: str, started: float, ended: float,
                   passed: bool, detail: str, data: dict[str, Any],
                   metrics: dict[str, float], argv: list[str] | None = None) -> dict[str, Any]:
    """Replay and listen: one criterion, their counts."""
    return new_summary(kind, target=target, started=started, ended=ended,
                       criteria=[criterion(kind, PASS if passed else FAIL, detail)],
                       metrics=metrics, warnings=[], data=data, argv=argv)

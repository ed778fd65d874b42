"""``ctwa report diff``: two runs' metrics side by side, and whether NEW regressed past the
thresholds. A metric a threshold names but a run lacks is an error, never a silent pass."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctwa.infra.errors import InputError

DEFAULT_THRESHOLDS = "p99=10%,rps=10%,errors=0.1%"
#: Metrics where a smaller number is the better one (for everything else, larger is better).
LOWER_IS_BETTER = {"p50", "p90", "p99", "errors", "too_slow", "seconds", "rejected"}
#: Metrics that are already percentages: their threshold is in points, not relative.
PERCENT_POINTS = {"errors", "too_slow", "rejected"}


@dataclass
class Threshold:
    metric: str
    limit: float  # a share (0.1 = 10%), or points for PERCENT_POINTS


@dataclass
class Row:
    metric: str
    base: float | None
    new: float | None
    change: str
    regressed: bool
    limit: str


def parse_thresholds(text: str) -> list[Threshold]:
    thresholds = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"([a-z_0-9.]+)\s*=\s*(\d+(?:\.\d+)?)\s*%", part)
        if not match:
            raise InputError(f"--max-regression {part!r}: write METRIC=N%, e.g. p99=10%",
                             hint="metrics: p50, p90, p99, rps, errors, too_slow, ...")
        value = float(match.group(2))
        metric = match.group(1)
        thresholds.append(Threshold(metric, value if metric in PERCENT_POINTS else value / 100))
    return thresholds


def load_summary_file(text: str, where: str) -> dict[str, Any]:
    """A run summary, from a run's summary JSON or from a load run's ``--json`` output."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{where}: not JSON ({str(exc)[:80]})",
                         hint="give a run id (`ctwa runs list`) or a --json file") from exc
    if isinstance(document, dict) and "metrics" in document and "kind" in document:
        return document
    if isinstance(document, dict) and "latency_ms" in document and "requests_per_second" in \
            document:
        sent = max(1, document["sent"] - document.get("connection_errors", 0))
        latency = document["latency_ms"]
        slow = float(document.get("not_in_time", document.get("too_slow")) or 0)
        kept: dict[str, Any] = {"verdict": document["verdict"]} if isinstance(
            document.get("verdict"), dict) else {}
        return {"kind": "load", "id": where, **kept, "metrics": {
            "p50": latency.get("p50", 0.0), "p90": latency.get("p90", 0.0),
            "p99": latency.get("p99", 0.0), "rps": document["requests_per_second"],
            "errors": round(100 * document.get("failed", 0) / sent, 4),
            "too_slow": round(100 * slow / sent, 4)}}
    raise InputError(f"{where}: not a ctwa run summary nor a load run's --json output")


def resolve(reference: str, store: Any) -> dict[str, Any]:
    """A file path, or a run id (or the start of one) from the store."""
    path = Path(reference)
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read ({exc})") from exc
        return load_summary_file(text, str(path))
    run = store.run(reference)
    if run is None:
        raise InputError(f"{reference!r} is neither a file nor a run id in the store",
                         hint="`ctwa runs list` shows the runs")
    return dict(json.loads(run["summary"]))


def compare(base: dict[str, Any], new: dict[str, Any],
            thresholds: list[Threshold]) -> list[Row]:
    names = list(dict.fromkeys([*base["metrics"], *new["metrics"]]))
    limits = {t.metric: t for t in thresholds}
    for wanted in thresholds:
        for label, run in (("BASE", base), ("NEW", new)):
            if wanted.metric not in run["metrics"]:
                raise InputError(f"{label} ({run.get('id', '?')}) has no metric "
                                 f"{wanted.metric!r}",
                                 hint="its metrics: " + ", ".join(run["metrics"]))
    rows = []
    for name in names:
        old, now = base["metrics"].get(name), new["metrics"].get(name)
        threshold = limits.get(name)
        regressed, change = False, "-"
        if old is not None and now is not None:
            if name in PERCENT_POINTS:
                delta = now - old
                change = f"{delta:+.3g} pts"
                worse = delta
            else:
                delta = (now - old) / old if old else (0.0 if now == old else float("inf"))
                change = f"{delta:+.1%}" if old else ("=" if now == old else "new")
                worse = delta if name in LOWER_IS_BETTER else -delta
            if threshold is not None:
                regressed = worse > threshold.limit + 1e-12
        limit = "" if threshold is None else (
            f"{threshold.limit:g} pts" if name in PERCENT_POINTS else f"{threshold.limit:.0%}")
        rows.append(Row(name, old, now, change, regressed, limit))
    return rows


#: Outcomes from best to worst.
_RANK = {"passed": 0, "incomplete": 1, "failed": 2}


def outcomes(base: dict[str, Any], new: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    """Each run's verdict outcome (None for a run that keeps no verdict) and whether NEW's
    is worse than BASE's: a NEW that failed where BASE did not has regressed, whatever its
    figures."""
    from ctwa.report.verdict import of_summary

    def outcome(run: dict[str, Any]) -> str | None:
        if "verdict" not in run and "criteria" not in run:
            return None
        return of_summary(run).outcome

    first, second = outcome(base), outcome(new)
    worse = (first is not None and second is not None and second == "failed"
             and _RANK[second] > _RANK[first])
    return first, second, worse

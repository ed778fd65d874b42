"""A load run second by second: what was sent, answered and failed, requests in flight, the
client's loop lag, and latency percentiles, kept by each worker as it goes (a few counters and
a log-scale bucket per answer) so a report can chart a ten-minute run without replaying it.

The headline percentiles come from the HDR histograms; these per-second ones are for the
charts, to 5% (the buckets' width)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

#: Buckets per factor e: 5% wide.
_SCALE = 1 / math.log(1.05)
PERCENTILES = (50, 90, 99)


class PerSecond:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.answered: list[int] = []
        self.failed: list[int] = []
        self.in_flight: list[int] = []
        self.lag_us: list[int] = []
        self.buckets: list[Counter[int]] = []

    def _second(self, elapsed: float) -> int:
        """The second ``elapsed`` falls in, its slots made when it is a new one."""
        second = int(elapsed)
        while len(self.sent) <= second:
            self.sent.append(0)
            self.answered.append(0)
            self.failed.append(0)
            self.in_flight.append(0)
            self.lag_us.append(0)
            self.buckets.append(Counter())
        return second

    def on_sent(self, elapsed: float) -> None:
        self.sent[self._second(elapsed)] += 1

    def on_answer(self, elapsed: float, micros: int, ok: bool) -> None:
        second = self._second(elapsed)
        self.answered[second] += 1
        self.failed[second] += not ok
        self.buckets[second][int(math.log(micros) * _SCALE)] += 1

    def on_error(self, elapsed: float) -> None:
        self.failed[self._second(elapsed)] += 1

    def on_tick(self, elapsed: float, in_flight: int, lag_us: int) -> None:
        second = self._second(elapsed)
        self.in_flight[second] = max(self.in_flight[second], in_flight)
        self.lag_us[second] = max(self.lag_us[second], lag_us)

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "answered": self.answered, "failed": self.failed,
                "in_flight": self.in_flight, "lag_us": self.lag_us,
                "buckets": [dict(b) for b in self.buckets]}


def _percentile(buckets: Counter[int], p: float) -> float | None:
    total = sum(buckets.values())
    if not total:
        return None
    rank = p / 100 * total
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return round(math.exp((bucket + 0.5) / _SCALE) / 1000, 2)
    return None  # pragma: no cover - the loop always reaches the total


def merge_series(parts: list[tuple[float, dict[str, Any]]]) -> dict[str, list[Any]]:
    """Workers' seconds (each with its start line, wall-clock) summed on one time axis: sums
    for counts, in flight added (each worker's peak in that second), lag the worst."""
    if not parts:
        return {}
    start = min(began for began, _ in parts)
    length = max(int(began - start) + len(series["sent"]) for began, series in parts)
    out: dict[str, list[Any]] = {key: [0] * length for key in
                                 ("sent", "answered", "failed", "in_flight")}
    lag = [0] * length
    buckets: list[Counter[int]] = [Counter() for _ in range(length)]
    for began, series in parts:
        shift = int(began - start)
        for i in range(len(series["sent"])):
            for key in ("sent", "answered", "failed", "in_flight"):
                out[key][i + shift] += series[key][i]
            lag[i + shift] = max(lag[i + shift], series["lag_us"][i])
            buckets[i + shift].update({int(k): v for k, v in series["buckets"][i].items()})
    out["second"] = list(range(length))
    out["lag_ms"] = [round(v / 1000, 2) for v in lag]
    for p in PERCENTILES:
        out[f"p{p}_ms"] = [_percentile(b, p) for b in buckets]
    return out

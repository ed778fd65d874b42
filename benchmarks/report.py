"""Rendering the HTML report of a 10-minute load run at 1500 in flight (600 seconds of series,
the full HDR curve, a round trip), timed apart from the run: the target is under 2 s.

Run: ``python benchmarks/report.py``."""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))


def ten_minute_summary() -> dict:
    from ctwa.load.engine import CURVE, LoadReport, verdict
    from ctwa.report.summary import load_summary

    rng = random.Random(1)
    seconds = 600
    report = LoadReport("https://bsp.example/ct", sent=4_300_000, accepted=4_299_000,
                        failure_codes={"2004": 1000}, requests_per_second=7166.0,
                        elapsed=600.0, peak_in_flight=1500, mean_in_flight=1450.0,
                        latency_ms={"p50": 202.8, "p90": 206.0, "p95": 208.0, "p99": 214.0,
                                    "p99.9": 230.0, "max": 410.0, "mean": 203.5},
                        loop_lag_ms={"p50": 0.1, "p90": 1.0, "p99": 4.0, "max": 12.0})
    report.verdict = verdict(report)
    report.latency_curve = [[p, 200 + p / 10] for p in CURVE]
    report.series = {"second": list(range(seconds)),
                     "sent": [7166 + rng.randint(-50, 50) for _ in range(seconds)],
                     "answered": [7166 + rng.randint(-50, 50) for _ in range(seconds)],
                     "failed": [rng.randint(0, 3) for _ in range(seconds)],
                     "in_flight": [1500] * seconds,
                     "lag_ms": [round(rng.random() * 4, 2) for _ in range(seconds)],
                     "p50_ms": [202.0 + rng.random() for _ in range(seconds)],
                     "p90_ms": [206.0 + rng.random() for _ in range(seconds)],
                     "p99_ms": [214.0 + rng.random() * 5 for _ in range(seconds)]}
    return load_summary(report, time.time() - 600, time.time())


def main() -> None:
    summary = ten_minute_summary()
    began = time.perf_counter()
    from ctwa.report.html import render

    imported = time.perf_counter() - began
    times, size = [], 0
    for _ in range(5):
        start = time.perf_counter()
        size = len(render(summary).encode())
        times.append(time.perf_counter() - start)
    print(f"import of the renderer (pygal included): {imported * 1000:.0f} ms")
    print(f"render of a 10-minute load report: median {statistics.median(times) * 1000:.0f} ms "
          f"of 5, {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()

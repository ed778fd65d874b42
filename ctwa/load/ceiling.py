"""A throughput ceiling seen in a load run: answers that take longer and longer while the
endpoint answers at a steady rate are queued inside it (a fixed pool of workers, one queue
consumer), so its latency is load, not distance. Said with the rate it manages."""

from __future__ import annotations

from typing import Any

#: Latency must grow at least this much between the first and the last full second.
GROWTH = 2.0


def throughput_ceiling(report: Any) -> str | None:
    """The verdict's line for a run whose answers queued, or None."""
    series = report.series or {}
    p50 = [v for v in series.get("p50_ms") or [] if v]
    if not report.too_slow or len(p50) < 2 or report.elapsed <= 0 or report.client_saturated:
        return None  # a saturated client queues too: its own warning says so
    first, last = p50[0], max(p50[1:])
    if last < GROWTH * first or last < report.deadline * 1000 / 2:
        return None
    answered = report.sent - report.connection_errors - report.abandoned
    rate = answered / report.elapsed
    return (f"DIAGNOSIS: answers slowed as the load went on (median {first:,.0f} ms in the "
            f"first second, {last:,.0f} ms later) while the endpoint answered about "
            f"{rate:,.0f} message(s)/s with {report.peak_in_flight:,} in flight: a throughput "
            "ceiling, messages queue inside the BSP -> answer as soon as a message is accepted "
            "(process it after), or add workers until it answers "
            f"{min(report.concurrency, 1500):,} at once within {report.deadline:g} s")

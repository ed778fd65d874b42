"""Check rows in order, on every core, with memory that stays flat however large the file.

The reading process sends chunks of rows to worker processes and keeps at most a few chunks in
flight, so a million-row file never sits in memory; results come back in file order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

from ctwa.upload.rules import Checked, RowRules, check_chunk

CHUNK_ROWS = 2000
#: Below this many bytes, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024


def default_workers(size: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 1 if size < PARALLEL_MIN_BYTES else max(1, cores or 1)


def _chunks(rows: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[list[str]]]]:
    """Runs of consecutive rows (blank lines break a run, since row numbers must stay exact)."""
    start, expected, chunk = 0, -1, []
    for row, values in rows:
        if chunk and (row != expected or len(chunk) >= CHUNK_ROWS):
            yield start, chunk
            chunk = []
        if not chunk:
            start = row
        chunk.append(values)
        expected = row + 1
    if chunk:
        yield start, chunk


def _attach(results: list[Checked], rows: list[list[str]]) -> list[Checked]:
    for checked, values in zip(results, rows, strict=True):
        checked.values = values
    return results


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the reading process, which stops them in order."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_rows(rules: RowRules, rows: Iterable[tuple[int, list[str]]],
               workers: int = 1) -> Iterator[Checked]:
    """Every row's outcome, in file order, each carrying its original values."""
    if workers <= 1:
        for start, chunk in _chunks(rows):
            yield from _attach(check_chunk(rules, start, chunk), chunk)
        return
    context = get_context("spawn")  # fork is unsafe next to threads (keyring, HTTP pools)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_ignore_interrupts) as pool:
        pending: deque[tuple[Future[list[Checked]], list[list[str]]]] = deque()
        limit = workers * 3
        for start, chunk in _chunks(rows):
            pending.append((pool.submit(check_chunk, rules, start, chunk), chunk))
            if len(pending) >= limit:
                future, values = pending.popleft()
                yield from _attach(future.result(), values)
        while pending:
            future, values = pending.popleft()
            yield from _attach(future.result(), values)

"""Check rows in order, on every core, with memory that stays flat however large the file.

Worker processes parse and check whole blocks of the file; this process only cuts blocks and
reads back compact outcomes, keeping a few blocks in flight, so a million-row file never sits
in memory and results come back in file order. Files that cannot be cut safely (stray quotes,
UTF-16) are read here and checked in chunks of rows instead.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from ctwa.infra.errors import InputError
from ctwa.upload.rules import STRAY, Checked, RowRules, check_block, check_chunk
from ctwa.upload.source import CsvSource

CHUNK_ROWS = 2000
#: Below this many bytes, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024

RulesFactory = Callable[[list[str]], RowRules]


def default_workers(size: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 1 if size < PARALLEL_MIN_BYTES else max(1, cores or 1)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the reading process, which stops them in order, die with it,
    and hold none of its output streams."""
    from ctwa.infra.children import detach_worker

    detach_worker()


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers forked from a clean server that preloaded the checking code (Unix), so they
    start fast and share its memory; spawned elsewhere. Never plain fork: this process may
    hold threads (keyring, HTTP pools)."""
    if sys.platform != "win32":
        context = get_context("forkserver")
        from ctwa.infra.children import FORKSERVER_PRELOAD

        context.set_forkserver_preload([*FORKSERVER_PRELOAD, "ctwa.upload.rules",
                                        "phonenumbers"])
    else:
        context = get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_ignore_interrupts)


def _chunks(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[list[str]]]]:
    """Runs of consecutive rows (blank lines break a run, since row numbers must stay exact)."""
    start, expected = 0, -1
    chunk: list[list[str]] = []
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


def checked_rows(source: CsvSource, make_rules: RulesFactory,
                 workers: int = 1) -> Iterator[Checked]:
    """Every row's outcome, in file order, each carrying its original values.

    ``make_rules`` turns the header into the checking rules (and may raise on a bad header)
    before any row is checked.
    """
    if workers > 1 and source.can_split():
        yield from _by_blocks(source, make_rules, workers)
        return
    rows = source.rows()
    first = next(rows, None)
    rules = make_rules(source.header)
    if first is None:
        return

    def all_rows() -> Iterator[tuple[int, list[str]]]:
        yield first
        yield from rows

    if workers <= 1:
        for start, chunk in _chunks(all_rows()):
            yield from _attach(check_chunk(rules, start, chunk), chunk)
        return
    with _pool(workers) as pool:
        pending: deque[tuple[Future[list[Checked]], list[list[str]]]] = deque()
        for start, chunk in _chunks(all_rows()):
            pending.append((pool.submit(check_chunk, rules, start, chunk), chunk))
            if len(pending) >= workers * 3:
                future, values = pending.popleft()
                yield from _attach(future.result(), values)
        while pending:
            future, values = pending.popleft()
            yield from _attach(future.result(), values)


def _by_blocks(source: CsvSource, make_rules: RulesFactory, workers: int) -> Iterator[Checked]:
    blocks = source.blocks()
    first = next(blocks, None)
    rules = make_rules(source.header)
    if first is None:
        return
    encoding = "utf-8" if source.codec == "utf-8-sig" else source.encoding
    delimiter = source.sniffed_delimiter()
    base = 2  # the header is row 1

    def all_blocks() -> Iterator[tuple[int, bytes]]:
        yield first
        yield from blocks

    with _pool(workers) as pool:
        pending: deque[tuple[Future[Any], int, int]] = deque()
        stray_at: int | None = None

        def drain(keep: int) -> Iterator[Checked]:
            """Outcomes of the oldest blocks, until ``keep`` remain or a stray quote shows."""
            nonlocal base, stray_at
            while len(pending) > keep and stray_at is None:
                future, start, size = pending.popleft()
                count, outcome = future.result()
                if outcome == STRAY:
                    stray_at = start
                    return
                yield from _settle(source, base, count, outcome)
                base += count
                source.bytes_done = start + size

        for offset, block in all_blocks():
            pending.append((pool.submit(check_block, rules, encoding, delimiter, block),
                            offset, len(block)))
            yield from drain(workers * 2 - 1)
            if stray_at is not None:
                break
        yield from drain(0)
        for future, _, _ in pending:
            future.cancel()
    if stray_at is not None:
        # From the first block with a stray quote on, one reader decides where records end.
        blocks.close()  # type: ignore[attr-defined]  # a generator
        for start, chunk in _chunks(source.rows(stray_at, base)):
            yield from _attach(check_chunk(rules, start, chunk), chunk)


def _settle(source: CsvSource, base: int, count: int, outcome: Any) -> Iterator[Checked]:
    if isinstance(outcome, str):
        hint = (None if "quoting" in outcome
                else "pass --encoding (e.g. cp1252 or latin-1 for Excel exports)")
        raise InputError(f"{source.path}: row {base + count}: {outcome}", hint=hint)
    for row, identity, record, reason, code, values in outcome:
        yield Checked(base + row, identity, record, reason, code, values)

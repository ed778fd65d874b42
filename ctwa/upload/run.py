"""The upload run: read, check, batch, send with bounded concurrency, journal, reconcile.

Every row read ends in exactly one of four places, and the report proves it:
uploaded + rejected before sending + refused by CleverTap + not uploaded = rows read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctwa.infra.errors import ConfigError, CtwaError, ExitCode, InputError
from ctwa.upload.journal import FINAL, NOT_UPLOADED, BatchEntry, Journal, RejectsFile, fingerprint
from ctwa.upload.rules import NOT_TEXT, Checked, ColumnType, RowRules, body_of, plan_columns
from ctwa.upload.source import CsvSource
from ctwa.upload.validate import checked_rows, default_workers

if TYPE_CHECKING:
    import httpx

    from ctwa.upload.clevertap import BatchAnswer

MAX_BATCH = 1000
MAX_CONCURRENCY = 15
INTERRUPT_GRACE = 3.0  # Ctrl-C: requests in flight get this long; a second Ctrl-C, none
#: How long batches in flight may take to answer when bad input stops the run: they were
#: sent, so their answers are awaited and journaled (a resume must not send them again).
STOP_GRACE = 60.0
#: Past this share of rows that are not text in the encoding given, the encoding is wrong.
NOT_TEXT_SHARE = 0.01


@dataclass(frozen=True)
class UploadOptions:
    path: Path
    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    default_region: str | None = None
    column_types: dict[str, ColumnType] = field(default_factory=dict)
    dropped: frozenset[str] = frozenset()
    batch_size: int = MAX_BATCH
    concurrency: int = 5
    rejects: Path | None = None
    journal: Path | None = None
    resume: bool = False
    dry_run: bool = False
    workers: int | None = None

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.path.with_name(self.path.stem + ".rejects.csv")

    @property
    def journal_path(self) -> Path:
        return self.journal or self.path.with_name(self.path.stem + ".journal.jsonl")

    def fingerprint_options(self) -> dict[str, Any]:
        """The options that decide which rows form which batch."""
        return {"encoding": self.encoding, "delimiter": self.delimiter,
                "default_region": self.default_region, "types": self.column_types,
                "dropped": sorted(self.dropped), "batch_size": self.batch_size}


@dataclass
class Reconciliation:
    rows_read: int = 0
    uploaded: int = 0
    rejected: int = 0
    refused: int = 0
    not_uploaded: int = 0
    would_upload: int = 0  # a dry run's good rows

    @property
    def adds_up(self) -> bool:
        return self.rows_read == (self.uploaded + self.rejected + self.refused
                                  + self.not_uploaded + self.would_upload)


@dataclass
class UploadReport:
    counts: Reconciliation = field(default_factory=Reconciliation)
    batches_sent: int = 0
    batches_skipped: int = 0
    interrupted: bool = False
    dry_run: bool = False
    first_batch: list[dict[str, Any]] | None = None
    rejected_sample: list[tuple[int, str]] = field(default_factory=list)  # dry runs
    elapsed: float = 0.0
    rejects: str = ""
    journal: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    reject_codes: dict[str, int] = field(default_factory=dict)  # rows not uploaded, by why

    def count_reject(self, why: str) -> None:
        self.reject_codes[why] = self.reject_codes.get(why, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"]["adds_up"] = self.counts.adds_up
        return data


Progress = Callable[[UploadReport, int, int], None]  # report, bytes read, file size


@dataclass
class _Batch:
    number: int
    rows: list[Checked]


class Uploader:
    def __init__(self, options: UploadOptions, client: httpx.Client | None = None,
                 url: str | None = None, progress: Progress | None = None) -> None:
        if not 1 <= options.batch_size <= MAX_BATCH:
            raise InputError(f"--batch-size must be 1 to {MAX_BATCH}")
        if not 1 <= options.concurrency <= MAX_CONCURRENCY:
            raise InputError(f"--concurrency must be 1 to {MAX_CONCURRENCY} (CleverTap's "
                             "per-account limit)")
        if not options.dry_run and (client is None or url is None):
            raise ValueError("an upload needs a client and a URL")
        self.options, self.client, self.url, self.progress = options, client, url, progress
        self.report = UploadReport(dry_run=options.dry_run,
                                   rejects=str(options.rejects_path),
                                   journal=str(options.journal_path))
        self.source = CsvSource(options.path, options.encoding, options.delimiter)
        self.journal = Journal(options.journal_path)
        self.rejects: RejectsFile | None = None
        self.done: dict[int, BatchEntry] = {}
        self._unreachable = False
        self._filling: list[Checked] = []  # good rows read, not yet in a batch
        self._waiting: _Batch | None = None  # a batch read, waiting for a free slot
        self._not_text_rows = 0
        self._first_not_text = 0

    # --- reading -----------------------------------------------------------------------------

    def _checked(self) -> Iterator[Checked]:
        opts = self.options

        def make_rules(header: list[str]) -> RowRules:
            from ctwa.upload.rules import undecoded_byte

            found = undecoded_byte(header)
            if found is not None:  # the header is no row to reject: nothing can be read
                raise InputError(f"{opts.path}: row 1 (the header) is not {opts.encoding} "
                                 f"text (byte 0x{found[1]:02X} in field {found[0] + 1})",
                                 hint="pass --encoding (e.g. cp1252 or latin-1 for Excel "
                                 "exports)")
            try:
                rules = plan_columns(header, opts.column_types, set(opts.dropped),
                                     opts.default_region)
            except ValueError as exc:
                raise InputError(f"{opts.path}: header: {exc}") from None
            self._open_rejects(header)
            return rules

        workers = opts.workers or default_workers(opts.path.stat().st_size)
        yield from checked_rows(self.source, make_rules, workers)

    def _batches(self) -> Iterator[_Batch]:
        """Good rows in batches; the batch being filled is kept on ``self`` so that an
        interruption can still account for every row read."""
        counts = self.report.counts
        number = 0
        for checked in self._checked():
            assert self.rejects is not None
            counts.rows_read += 1
            if checked.record is None:
                counts.rejected += 1
                self.rejects.add(checked.row, checked.reason or "rejected", checked.code,
                                 checked.values)
                self.report.count_reject(_why(checked.code, checked.reason))
                if checked.reason and checked.reason.startswith(NOT_TEXT):
                    self._not_text(checked.row)
                continue
            self._filling.append(checked)
            if len(self._filling) == self.options.batch_size:
                number += 1
                batch, self._filling = _Batch(number, self._filling), []
                yield batch
        if self._filling:
            batch, self._filling = _Batch(number + 1, self._filling), []
            yield batch

    def _not_text(self, row: int) -> None:
        """One row with bytes that are not text is rejected alone; more than 1% of the rows
        (and more than one) means the whole file is in another encoding: stop."""
        self._not_text_rows += 1
        self._first_not_text = self._first_not_text or row
        read = self.report.counts.rows_read
        if self._not_text_rows > max(1, read * NOT_TEXT_SHARE):
            raise InputError(
                f"{self.options.path}: {self._not_text_rows} of the {read:,} rows read are not "
                f"{self.options.encoding} text (the first at row {self._first_not_text}); the "
                "file is in another encoding",
                hint="pass --encoding (e.g. cp1252 or latin-1 for Excel exports)")

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> UploadReport:
        """Upload everything; failures end up in the report (``error``, ``exit_code``)."""
        started = time.monotonic()
        opts = self.options
        header = fingerprint(opts.path, opts.fingerprint_options()) if opts.path.exists() else {}
        try:
            if opts.resume:
                self.done = self.journal.load(header)
            if opts.dry_run:
                self._dry_run()
            else:
                self.journal.start(header, opts.resume)
                self._upload()
                if not self.report.interrupted:
                    counts = asdict(self.report.counts)
                    self.journal.finish({k: counts[k] for k in ("rows_read", "uploaded",
                                                                "rejected", "refused",
                                                                "not_uploaded")})
        except KeyboardInterrupt:
            self.report.interrupted = True
        except CtwaError as exc:
            self.report.error, self.report.exit_code = str(exc), exc.exit_code
        finally:
            self.journal.close()
            if isinstance(self.rejects, _CountingRejects):
                self.report.rejected_sample = self.rejects.sample
            if self.rejects is not None:
                self.rejects.close()
            self.report.elapsed = round(time.monotonic() - started, 3)
        self._set_exit_code()
        return self.report

    def _open_rejects(self, header: list[str]) -> None:
        if self.options.dry_run:
            self.rejects = _CountingRejects(header)
        else:
            self.rejects = RejectsFile(self.options.rejects_path, header)
            self.rejects.open(self.options.resume)

    def _dry_run(self) -> None:
        try:
            for batch in self._batches():
                if self.report.first_batch is None:
                    self.report.first_batch = json.loads(body_of(batch.rows))["d"]
                self.report.counts.would_upload += len(batch.rows)
                self._tick()
        except CtwaError:  # a bad row stops the run: the rows read still add up
            self.report.counts.not_uploaded += len(self._filling)
            self._filling = []
            raise

    def _upload(self) -> None:
        from ctwa.upload.clevertap import post_batch

        assert self.client is not None and self.url is not None
        in_flight: dict[Future[BatchAnswer], _Batch] = {}
        limit = self.options.concurrency
        executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="ctwa-upload")
        batches = self._batches()
        try:
            for batch in batches:
                if self._skip_done(batch):
                    continue
                self._waiting = batch
                while len(in_flight) >= limit:
                    self._collect(in_flight, wait(in_flight, return_when=FIRST_COMPLETED).done)
                in_flight[executor.submit(post_batch, self.client, self.url, batch.rows)] = batch
                self._waiting = None
                self.report.batches_sent += 1
            while in_flight:
                self._collect(in_flight, wait(in_flight, return_when=FIRST_COMPLETED).done)
        except KeyboardInterrupt:
            self.report.interrupted = True
            self._drain(in_flight, batches)
        except ConfigError:
            for future in in_flight:
                future.cancel()
            self._drain(in_flight, batches, grace=0.0, reason="stopped after HTTP 401")
            raise
        except CtwaError as exc:  # the file went bad mid-way (an encoding error at row N):
            # what was sent is answered and journaled, what was read is accounted for
            self._drain(in_flight, batches, grace=STOP_GRACE, reason=f"stopped: {exc.message}")
            raise
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _skip_done(self, batch: _Batch) -> bool:
        entry = self.done.get(batch.number)
        if entry is None or entry.outcome not in FINAL or entry.rows != len(batch.rows):
            return False
        self.report.counts.uploaded += entry.uploaded
        self.report.counts.refused += entry.refused
        self.report.batches_skipped += 1
        return True

    def _collect(self, in_flight: dict[Future[BatchAnswer], _Batch],
                 finished: set[Future[BatchAnswer]]) -> None:
        for future in finished:
            batch = in_flight.pop(future)
            try:
                answer = future.result()
            except ConfigError as exc:  # HTTP 401: account for the batch, then stop
                from ctwa.upload.clevertap import BatchAnswer

                self._settle(batch, BatchAnswer(not_uploaded=batch.rows, error=exc.message))
                raise
            self._settle(batch, answer)

    def _settle(self, batch: _Batch, answer: BatchAnswer) -> None:
        counts = self.report.counts
        assert self.rejects is not None
        counts.uploaded += len(answer.uploaded)
        counts.refused += len(answer.refused)
        counts.not_uploaded += len(answer.not_uploaded)
        for refusal in answer.refused:
            self.rejects.add(refusal.row.row, f"refused by CleverTap: {refusal.message}",
                             refusal.code, refusal.row.values)
            self.report.count_reject(f"CleverTap: {_why(refusal.code, None)}")
        for row in answer.not_uploaded:
            self.rejects.add(row.row, f"{NOT_UPLOADED}: {answer.error}", None, row.values)
            self.report.count_reject(NOT_UPLOADED)
        self._unreachable |= answer.unreachable
        self.report.notes += [f"batch {batch.number}: {note}" for note in answer.notes]
        if answer.not_uploaded:
            outcome = "failed"
        elif answer.refused:
            outcome = "partial" if answer.uploaded else "refused"
        else:
            outcome = "uploaded"
        self.journal.record(BatchEntry(batch.number, batch.rows[0].row, batch.rows[-1].row,
                                       len(batch.rows), outcome, len(answer.uploaded),
                                       len(answer.refused), answer.error))
        self.rejects.flush()
        self._tick()

    def _drain(self, in_flight: dict[Future[BatchAnswer], _Batch], batches: Iterator[_Batch],
               grace: float = INTERRUPT_GRACE, reason: str = "interrupted") -> None:
        """Stop sending: wait briefly for requests in flight, account for everything read."""
        from ctwa.upload.clevertap import BatchAnswer

        if in_flight:
            try:
                done, _ = wait(in_flight, timeout=grace)
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting, still account for all
                done = {f for f in in_flight if f.done()}
            if len(done) < len(in_flight) and self.client is not None:
                # the rest never answered: their threads stop waiting now (a server that
                # accepted and never answers held the exit for minutes, through every retry)
                from ctwa.http import abandon

                abandon(self.client)
            for future in done:
                batch = in_flight.pop(future)
                try:
                    answer = future.result()
                except Exception as exc:
                    answer = BatchAnswer(not_uploaded=batch.rows, error=str(exc))
                self._settle(batch, answer)
        for batch in in_flight.values():
            self._settle(batch, BatchAnswer(not_uploaded=batch.rows,
                                            error=f"{reason} while sending; resume sends it "
                                            "again"))
        in_flight.clear()
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        unsent = list(self._filling)
        if self._waiting is not None:
            unsent += self._waiting.rows
        self._filling, self._waiting = [], None
        self._abandon(unsent, f"{reason} before sending; resume sends it")

    def _abandon(self, rows: list[Checked], reason: str) -> None:
        """Rows read but never sent: counted and written as not uploaded (no batch to journal)."""
        if not rows:  # e.g. the header was refused: no row was read, no rejects file opened
            return
        assert self.rejects is not None
        self.report.counts.not_uploaded += len(rows)
        for row in rows:
            self.rejects.add(row.row, f"{NOT_UPLOADED}: {reason}", None, row.values)

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(self.report, self.source.bytes_read, self.source.size)

    def _set_exit_code(self) -> None:
        report, counts = self.report, self.report.counts
        if report.error:
            return
        if report.interrupted:
            report.exit_code = ExitCode.INTERRUPTED
        elif report.dry_run:
            report.exit_code = ExitCode.FAILED if counts.rejected else ExitCode.OK
        elif counts.not_uploaded and self._unreachable:
            report.exit_code = ExitCode.UNREACHABLE
        elif counts.rejected or counts.refused or counts.not_uploaded:
            report.exit_code = ExitCode.FAILED


class _CountingRejects(RejectsFile):
    """A dry run writes no rejects file; it only remembers the first few for the report."""

    def __init__(self, header: list[str]) -> None:
        super().__init__(Path("-"), header)
        self.sample: list[tuple[int, str]] = []

    def add(self, row: int, reason: str, code: int | None, values: list[str] | str) -> None:
        if len(self.sample) < 20:
            self.sample.append((row, reason))

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


def _why(code: int | None, reason: str | None) -> str:
    """A short label for rows not uploaded: the code and its meaning, or the reason's head."""
    from ctwa.wire.codes import UPLOAD_RECORD_ERRORS

    if code is not None:
        meaning = UPLOAD_RECORD_ERRORS.get(code)
        return f"{code} ({meaning})" if meaning else str(code)
    return (reason or "rejected").split(":")[0][:60]

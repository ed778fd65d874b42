"""The journal and the rejects file: what happened to every batch and every refused row,
written as soon as it is known, so an interrupted upload can be finished without sending
anything twice."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from ctwa.infra.errors import InputError
from ctwa.infra.masking import scrub
from ctwa.infra.textfiles import open_private
from ctwa.upload.rules import unpack_values

JOURNAL_VERSION = 1
#: Outcomes after which a batch is never sent again (CleverTap answered for every record).
FINAL = frozenset({"uploaded", "partial", "refused"})
NOT_UPLOADED = "not uploaded"
FINISHED = "finished"


@dataclass
class BatchEntry:
    batch: int
    first_row: int
    last_row: int
    rows: int
    outcome: str  # uploaded, partial, refused, failed
    uploaded: int = 0
    refused: int = 0
    error: str | None = None


def fingerprint(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """What a resume must match: the same file (size, mtime) read with the same options."""
    stat = path.stat()
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
    return {"journal": JOURNAL_VERSION, "input": str(path.resolve()), "size": stat.st_size,
            "mtime": int(stat.st_mtime), "options": digest}


class Journal:
    """Append-only JSON lines: a header, then one line per finished batch, fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None

    def load(self, expected: dict[str, Any]) -> dict[int, BatchEntry]:
        """The batches a previous run finished, or an error if it was another file or setup."""
        if not self.path.exists():
            raise InputError(f"--resume: no journal at {self.path}",
                             hint="start without --resume, or pass --journal PATH")
        entries: dict[int, BatchEntry] = {}
        with self.path.open(encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        for key in ("input", "size", "mtime", "options"):
            given = header.get(key)
            if key == "input" and isinstance(given, str):
                given = str(Path(given).resolve())  # the same file by another spelling
            if given != expected[key]:
                what = {"input": "another file", "size": "a file of another size",
                        "mtime": "a file changed since", "options": "other options"}[key]
                raise InputError(f"--resume: the journal {self.path} was written for {what}",
                                 hint="resume with the same file and options, or pass "
                                 "--restart instead of --resume to upload every row again")
        for number, line in enumerate(lines[1:], start=2):
            try:
                data = json.loads(line)
                if isinstance(data, dict) and FINISHED in data:
                    continue  # an earlier run's end; batches after it come from a resume
                entry = BatchEntry(**data)
            except (json.JSONDecodeError, TypeError):
                if number == len(lines):
                    break  # a line cut short by a kill: that batch is simply not done
                raise InputError(f"{self.path}:{number}: damaged journal line") from None
            entries[entry.batch] = entry
        return entries

    def start(self, header: dict[str, Any], resume: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            self._drop_partial_line()
            self._handle = open_private(self.path, "a")
        else:
            self._handle = open_private(self.path, "w")
            self._write(header)

    def finish(self, counts: dict[str, Any]) -> None:
        """The last line of a run that read the whole file and heard every batch's answer."""
        self._write({FINISHED: True, **counts})

    @staticmethod
    def finished(path: Path) -> dict[str, Any] | None:
        """The counts of the run that wrote the journal, if that run finished (else None)."""
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - 4096))
                last = handle.read().splitlines()[-1:]
            data = json.loads(last[0]) if last else None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get(FINISHED) is True else None

    def _drop_partial_line(self) -> None:
        """A kill mid-write leaves half a line at the end: cut it, so it stays the last
        (ignored) line no longer, and every later resume still reads the journal."""
        with self.path.open("r+b") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def record(self, entry: BatchEntry) -> None:
        data = asdict(entry)
        if isinstance(data.get("error"), str):  # CleverTap may echo what it was sent
            data["error"] = scrub(data["error"])
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        assert self._handle is not None
        with _writing(self.path, "--journal"):
            self._handle.write(json.dumps(data, separators=(",", ":")) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # a failed write was said when it happened
                self._handle.close()
            self._handle = None


@contextlib.contextmanager
def _writing(path: Path, option: str) -> Iterator[None]:
    """A write that fails (a full disk, /dev/full) is one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})",
                         hint=f"free space, or give {option} another file") from None


class RejectsFile:
    """CSV of every row not uploaded: its row number, the reason, a code, its original values.

    On resume, rows marked "not uploaded" are dropped from the file first (they are sent
    again); every other line stays, and a row already in the file is never written twice.
    """

    def __init__(self, path: Path, header: list[str]) -> None:
        from ctwa.upload.rules import rejects_columns

        self.path = path
        self.skip = rejects_columns(header)  # uploading a fixed rejects file: drop its own
        self.header = header[self.skip:]  # row, reason and code, keep the original values
        self.rows_present: set[int] = set()
        self._handle: TextIO | None = None
        self._writer: Any = None
        self.broken = False  # a write failed (said once); nothing more is written

    def open(self, resume: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[list[str]] = []
        if resume and self.path.exists():
            with self.path.open(encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                next(reader, None)
                for line in reader:
                    if len(line) >= 2 and line[0].isdecimal() and not line[1].startswith(
                            NOT_UPLOADED):
                        kept.append(line)
                        self.rows_present.add(int(line[0]))
        with _writing(self.path, "--rejects"):
            self._handle = open_private(self.path, "w", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["row", "reason", "code", *self.header])
            self._writer.writerows(kept)
            self._handle.flush()

    def add(self, row: int, reason: str, code: int | None, values: list[str] | str) -> None:
        if row in self.rows_present or self.broken:
            return
        self.rows_present.add(row)
        assert self._writer is not None
        self.broken = True
        with _writing(self.path, "--rejects"):
            self._write_row(row, reason, code, values)
        self.broken = False

    def _write_row(self, row: int, reason: str, code: int | None,
                   values: list[str] | str) -> None:
        assert self._writer is not None
        from ctwa.upload.rules import printable

        self._writer.writerow([row, scrub(reason), "" if code is None else code,
                               *(printable(v) for v in unpack_values(values)[self.skip:])])

    def flush(self) -> None:
        if self._handle is not None and not self.broken:
            self.broken = True  # until the flush is through: one failure is said once
            with _writing(self.path, "--rejects"):
                self._handle.flush()
            self.broken = False

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # a failed write was said when it happened
                self._handle.close()
            self._handle = None

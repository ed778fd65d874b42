"""Stream a CSV file: encoding (BOM or not), a sniffed or given delimiter, quoted fields with
embedded newlines, CRLF, and how far through the file reading has got (for progress and ETA)."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ctwa.errors import InputError

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"


class _CountingReader(io.RawIOBase):
    """A raw stream that counts the bytes read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


@dataclass
class CsvSource:
    path: Path
    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    size: int = 0
    header: list[str] = field(default_factory=list)
    _counter: _CountingReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (row number, values); the header is row 1, so the first data row is 2."""
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise InputError(f"unknown encoding {self.encoding!r}",
                             hint="e.g. utf-8, utf-16, cp1252, latin-1") from None
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror}") from exc
        self.size = self.path.stat().st_size
        with raw:
            self._counter = _CountingReader(raw)
            buffered = io.BufferedReader(self._counter, buffer_size=1 << 16)
            text = io.TextIOWrapper(buffered, encoding=self.encoding, newline="")
            row = 0
            try:
                delimiter = self.delimiter or self._sniff()
                reader = csv.reader(text, delimiter=delimiter, strict=False)
                for row, values in enumerate(reader, start=1):
                    if row == 1:
                        self.header = values
                        continue
                    if not values or (len(values) == 1 and not values[0].strip()):
                        continue  # a blank line is not a user
                    yield row, values
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{self.path}: row {row + 1}: not {self.encoding} text ({exc.reason})",
                    hint="pass --encoding (e.g. cp1252 or latin-1 for Excel exports)") from exc
            except csv.Error as exc:
                raise InputError(f"{self.path}: row {row + 1}: {exc}",
                                 hint="check the quoting around that row") from exc
            if row == 0:
                raise InputError(f"{self.path}: the file is empty",
                                 hint="the first line must be the header")

    def _sniff(self) -> str:
        path = self.path
        with path.open("rb") as handle:
            sample = handle.read(SNIFF_BYTES)
        try:
            text = sample.decode(self.encoding, errors="ignore")
        except LookupError:
            return ","
        first = text.splitlines()[0] if text else ""
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","

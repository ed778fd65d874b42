"""Stream a CSV file: encoding (BOM or not), a sniffed or given delimiter, quoted fields with
embedded newlines, CRLF, and how far through the file reading has got (for progress and ETA).

Two ways to read the rows after the header:
- ``rows()``: one reader in this process, for any encoding and any quoting;
- ``blocks()``: raw byte blocks cut at record boundaries, for worker processes to parse and
  check in parallel. A cut is safe at a newline with an even number of quotes before it, which
  holds for every RFC 4180 file in an ASCII-compatible encoding; files with stray quotes inside
  unquoted fields, or in UTF-16/32, are read with ``rows()`` instead.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ctwa.infra.errors import InputError

SNIFF_BYTES = 64 * 1024
BLOCK_BYTES = 1 << 19
DELIMITERS = ",;\t|"
_ASCII_COMPATIBLE = frozenset({"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1",
                               "iso8859-15", "cp1252", "cp1250", "cp1251"})


class _CountingReader(io.RawIOBase):
    """A raw stream that counts the bytes read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def is_blank(values: list[str]) -> bool:
    return not values or (len(values) == 1 and not values[0].strip())


@dataclass
class CsvSource:
    path: Path
    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    size: int = 0
    header: list[str] = field(default_factory=list)
    bytes_done: int = 0  # updated by whoever consumes blocks
    block_bytes: int = BLOCK_BYTES
    _counter: _CountingReader | None = None

    def __post_init__(self) -> None:
        try:
            info = codecs.lookup(self.encoding)
        except LookupError:
            raise InputError(f"unknown encoding {self.encoding!r}",
                             hint="e.g. utf-8, utf-16, cp1252, latin-1") from None
        try:  # base64, rot13, zlib are no text encodings; idna is no file encoding
            usable = getattr(info, "_is_text_encoding", True) and isinstance(
                b"identity,Phone\n".decode(self.encoding, errors="ignore"), str)
        except (UnicodeError, TypeError, ValueError):
            usable = False
        if not usable:
            raise InputError(f"{self.encoding!r} is not an encoding a CSV file can be in",
                             hint="e.g. utf-8, utf-16, cp1252, latin-1")
        self.codec = info.name

    @property
    def bytes_read(self) -> int:
        return max(self._counter.count if self._counter else 0, self.bytes_done)

    def _open(self) -> BinaryIO:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror}") from exc
        self.size = self.path.stat().st_size
        return handle

    def sniffed_delimiter(self) -> str:
        if self.delimiter:
            return self.delimiter
        with self._open() as handle:
            sample = handle.read(SNIFF_BYTES)
        first = sample.decode(self.encoding, errors="ignore").splitlines()[:1]
        counts = {d: first[0].count(d) if first else 0 for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        self.delimiter = best if counts[best] else ","
        return self.delimiter

    # --- one reader ----------------------------------------------------------------------

    def rows(self, offset: int = 0, first_row: int = 1) -> Iterator[tuple[int, list[str]]]:
        """Yield (row number, values); the header is row 1, so the first data row is 2.

        With ``offset`` (a record boundary in bytes), reading starts there at ``first_row``.
        """
        delimiter = self.sniffed_delimiter()
        with self._open() as raw:
            raw.seek(offset)
            self._counter = _CountingReader(raw)
            self._counter.count = offset
            buffered = io.BufferedReader(self._counter, buffer_size=1 << 16)
            encoding = "utf-8" if offset and self.codec == "utf-8-sig" else self.encoding
            # a byte that is not text stays as a lone surrogate: its row alone is rejected
            text = io.TextIOWrapper(buffered, encoding=encoding, newline="",
                                    errors="surrogateescape")
            row = first_row - 1
            try:
                for row, values in enumerate(csv.reader(text, delimiter=delimiter),
                                             start=first_row):
                    if row == 1:
                        self.header = values
                    elif not is_blank(values):
                        yield row, values
            except UnicodeDecodeError as exc:
                raise self.decode_error(self._row_of_bad_byte(offset, first_row, delimiter),
                                        exc) from exc
            except UnicodeError as exc:  # UTF-16 without a BOM, and other stream errors
                raise self.decode_error(row + 1, exc) from exc
            except csv.Error as exc:
                raise InputError(f"{self.path}: row {row + 1}: {exc}",
                                 hint="check the quoting around that row") from exc
            if row == 0 and not offset:
                raise InputError(f"{self.path}: the file is empty",
                                 hint="the first line must be the header")

    def _row_of_bad_byte(self, offset: int, first_row: int, delimiter: str) -> int:
        """The row holding the first byte that is not text in the encoding: the text decoder
        fails a whole chunk ahead of the CSV reader, so the reader's row is the wrong one."""
        import codecs as codec_module

        decoder = codec_module.getincrementaldecoder(self.encoding)()
        good: list[str] = []
        with self._open() as raw:
            raw.seek(offset)
            while chunk := raw.read(1 << 16):
                try:
                    good.append(decoder.decode(chunk))
                except UnicodeDecodeError as exc:
                    good.append(chunk[:exc.start].decode(self.encoding, errors="ignore"))
                    break
        text = "".join(good)
        records = sum(1 for _ in csv.reader(io.StringIO(text, newline=""),
                                            delimiter=delimiter))
        complete = records - (0 if text.endswith(("\n", "\r")) or not text else 1)
        return first_row + complete

    def decode_error(self, row: int, exc: UnicodeError) -> InputError:
        reason = getattr(exc, "reason", None) or str(exc)
        return InputError(f"{self.path}: row {row}: not {self.encoding} text ({reason})",
                          hint="pass --encoding (e.g. cp1252 or latin-1 for Excel exports)")

    # --- blocks for worker processes -----------------------------------------------------

    def can_split(self) -> bool:
        """Whether blocks may be cut at quote-balanced newlines: an ASCII-compatible encoding.

        Stray quotes are found per block by :func:`has_stray_quote`, in the workers.
        """
        return self.codec in _ASCII_COMPATIBLE

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """The header (parsed into ``self.header``), then (offset, block of whole records)."""
        with self._open() as handle:
            parts = _cut(handle, self.block_bytes)
            first = next(parts, b"")
            if not first:
                raise InputError(f"{self.path}: the file is empty",
                                 hint="the first line must be the header")
            if first.startswith(codecs.BOM_UTF8) and self.codec in ("utf-8", "utf-8-sig"):
                first = first[len(codecs.BOM_UTF8):]
            header_end = _first_record_end(first)
            try:
                text = first[:header_end].decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise self.decode_error(1, exc) from exc
            self.header = next(csv.reader(io.StringIO(text, newline=""),
                                          delimiter=self.sniffed_delimiter()), [])
            offset = header_end + (len(codecs.BOM_UTF8) if self._has_bom() else 0)
            rest = first[header_end:]
            if rest:
                yield offset, rest
                offset += len(rest)
            for part in parts:
                yield offset, part
                offset += len(part)

    def _has_bom(self) -> bool:
        with self._open() as handle:
            return handle.read(3) == codecs.BOM_UTF8 and self.codec in ("utf-8", "utf-8-sig")


def stray_quote_pattern(delimiter: str) -> re.Pattern[bytes]:
    """A quote between two ordinary characters: inside an unquoted field (not RFC 4180)."""
    ordinary = rb"[^" + re.escape(delimiter.encode()) + rb'\r\n"]'
    return re.compile(ordinary + rb'"(?=' + ordinary + rb")")


def _first_record_end(data: bytes) -> int:
    quotes = 0
    start = 0
    while True:
        newline = data.find(b"\n", start)
        if newline < 0:
            return len(data)
        quotes += data.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline + 1
        start = newline + 1


#: Past this, a record without a safe cut is broken (a field holds at most 128 KiB): the block
#: goes on as it is, so memory stays bounded and the checker reports the row.
MAX_RECORD_BYTES = 1024 * 1024


def _cut(handle: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Blocks ending just after a newline preceded by an even number of quotes.

    Linear in the file: when a block has no safe cut (a long quoted field full of newlines),
    only the newly read part is searched next time, since the quotes before a newline never
    change; searching the whole carry again made a 16 MB field take 26 s."""
    carry = b""
    carry_quotes = 0  # quotes in carry
    while True:
        chunk = handle.read(block_bytes)
        if not chunk:
            if carry:
                yield carry
            return
        data = carry + chunk if carry else chunk
        start = len(carry)  # no newline before here is a safe cut
        total = carry_quotes + chunk.count(b'"')
        end, quotes, cut = len(data), total, 0
        while True:
            newline = data.rfind(b"\n", start, end)
            if newline < 0:
                break
            quotes -= data.count(b'"', newline, end)
            if quotes % 2 == 0:
                cut = newline + 1
                break
            end = newline
        if cut == 0 and len(data) < MAX_RECORD_BYTES:
            carry, carry_quotes = data, total  # no safe cut yet: read on
            continue
        if cut == 0:  # no record is this long: hand it on, the CSV reader names the row
            yield data
            carry, carry_quotes = b"", 0
            continue
        yield data[:cut]
        carry = data[cut:]
        carry_quotes = carry.count(b'"')

"""Checking in worker processes gives exactly what checking in one process gives."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.upload.rules import plan_columns, unpack_values
from ctwa.upload.source import CsvSource, _cut
from ctwa.upload.validate import checked_rows


def make_file(path: Path, rows: int, encoding: str = "utf-8", stray: bool = False) -> None:
    rng = random.Random(7)
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "Phone", "Notes", "MSG-whatsapp"])
        for i in range(rows):
            phone = rng.choice(["+14155552671", "+919876543210", "bad", "", "+1415"])
            notes = rng.choice(["plain", 'say "hi"', "two\nlines", "comma, inside", "é ü"])
            if stray and i == rows // 2:
                handle.write('user-stray,+14155552671,5\'10" tall,TRUE\r\n')  # not RFC 4180
            if i % 17 == 0:
                handle.write("\r\n")  # a blank line
            writer.writerow([f"user-{i}", phone, notes, rng.choice(["TRUE", "no", "maybe"])])


def outcomes(path: Path, workers: int, encoding: str = "utf-8-sig", block: int = 1 << 20):
    source = CsvSource(path, encoding)
    source.block_bytes = block
    rules = lambda header: plan_columns(header, {}, set(), None)  # noqa: E731
    return [(c.row, c.identity, c.record, c.reason, c.code, unpack_values(c.values))
            for c in checked_rows(source, rules, workers)]


@pytest.mark.parametrize(("encoding", "stray"), [("utf-8", False), ("utf-16", False),
                                                 ("utf-8", True)])
def test_workers_match_one_process(tmp_path: Path, encoding: str, stray: bool) -> None:
    path = tmp_path / "u.csv"
    make_file(path, 700, encoding, stray)
    one = outcomes(path, 1, encoding)
    assert outcomes(path, 2, encoding, block=997) == one
    assert len(one) == 700 + stray and one[0][0] == 3  # row 2 is a blank line


def test_utf16_is_not_cut(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    make_file(path, 10, encoding="utf-16")
    assert not CsvSource(path, "utf-16").can_split()
    assert CsvSource(path, "cp1252").can_split()


def test_a_stray_quote_before_a_multi_line_field_falls_back_to_one_reader(tmp_path) -> None:
    path = tmp_path / "u.csv"
    lines = ["identity,Phone,Notes"] + [f"u{i},+14155552671,n{i}" for i in range(200)]
    lines[100] = 'u99,+14155552671,5\'10" tall'  # odd quote parity from here on
    lines[150] = 'u149,+14155552671,"a\nb"'  # a newline that looks like a safe cut
    path.write_text("\n".join(lines) + "\n")
    one = outcomes(path, 1)
    assert outcomes(path, 2, block=600) == one
    assert next(r for r in one if r[1] == "u149")[5][2] == "a\nb"


def test_cuts_fall_between_records(tmp_path: Path) -> None:
    data = b'a,b\n1,"x\ny"\n2,"p""q"\n3,z\n'
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    for size in range(1, len(data) + 2):
        with path.open("rb") as handle:
            blocks = list(_cut(handle, size))
        assert b"".join(blocks) == data
        for block in blocks:
            assert block.count(b'"') % 2 == 0 and block.endswith(b"\n")


csv_cells = st.lists(st.lists(st.text(alphabet='ab"\n, ', max_size=6), min_size=1, max_size=4),
                     min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(csv_cells, st.integers(min_value=1, max_value=64))
def test_cuts_never_split_a_record(rows, size) -> None:
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    data = buffer.getvalue().encode()
    blocks = list(_cut(io.BytesIO(data), size))
    assert b"".join(blocks) == data
    parsed = [r for block in blocks for r in csv.reader(io.StringIO(block.decode()))]
    assert parsed == list(csv.reader(io.StringIO(data.decode())))


def _marked_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdecimal():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_sigkill_leaves_no_workers_holding_the_callers_output(tmp_path) -> None:
    """`$(ctwa upload-users ...)` returns after a kill -9: the workers and the forkserver die
    with ctwa and none of them keeps its stdout open."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("identity,Phone,Name\n")
        for i in range(200_000):
            handle.write(f"user-{i},+1415555{i % 10000:04d},Name {i}\n")
    marker = f"CTWA_TEST_MARKER_{uuid.uuid4().hex}"
    proc = subprocess.Popen([sys.executable, "-m", "ctwa", "upload-users", str(path),
                             "--dry-run", "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, marker: "1"})
    deadline = time.monotonic() + 20
    while len(_marked_processes(marker)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # ctwa, the forkserver and at least one worker
    assert len(_marked_processes(marker)) >= 3
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    started = time.monotonic()
    assert proc.stdout is not None
    proc.stdout.read()  # returns only once every holder of the pipe is gone
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 10
    while _marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked_processes(marker) == []


def _big_file_with_a_bad_byte_at_row_30000(path: Path, bad_rows: int = 1) -> Path:
    """60,000 users; row 30,000 (the header is row 1), and the ``bad_rows - 1`` after it,
    hold a byte that is not UTF-8."""
    with path.open("wb") as handle:
        handle.write(b"identity,Phone,Name\n")
        for i in range(60_000):
            line = f"user-{i},+1415555{i % 10000:04d},Name {i}\n".encode()
            bad = 29_998 <= i < 29_998 + bad_rows
            handle.write(b"user-x,+14155550000,Bad \xff name\n" if bad else line)
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bad_byte_deep_in_a_big_file_rejects_its_row_alone(tmp_path, cli, workers) -> None:
    import json as jsonlib

    path = _big_file_with_a_bad_byte_at_row_30000(tmp_path / "big.csv")
    result = cli("--json", "upload-users", str(path), "--dry-run", "--workers", workers)
    assert result.exit_code == 1, result.stderr
    report = jsonlib.loads(result.stdout)
    assert report["error"] is None
    assert report["counts"]["rejected"] == 1 and report["counts"]["would_upload"] == 59_999
    [(row, reason)] = report["rejected_sample"]
    assert row == 30000 and reason.startswith("not text in the file's encoding: byte 0xFF")
    assert "--encoding" in reason and report["counts"]["adds_up"] is True


def test_a_real_upload_stopped_by_a_bad_byte_journals_what_it_sent(tmp_path, cli) -> None:
    import json as jsonlib

    from ctwa.sandbox.clevertap import MockCleverTap
    from tests.conftest import LiveServer

    path = _big_file_with_a_bad_byte_at_row_30000(tmp_path / "big.csv", bad_rows=1000)
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"})
    with LiveServer(mock.app()) as server:
        result = cli("--json", "upload-users", str(path), "--workers", "2", "--base-url",
                     server.url, "--account-id", "ACC", "--passcode", "pc-CANARY-55e0")
    report = jsonlib.loads(result.stdout)
    assert result.exit_code == 2 and "(the first at row 30000)" in report["error"]
    assert "are not utf-8-sig text" in report["error"]
    assert report["counts"]["adds_up"] is True
    journal = path.with_name("big.journal.jsonl").read_text().splitlines()[1:]
    journaled = sum(jsonlib.loads(line)["uploaded"] for line in journal)
    assert journaled == len(mock.state.profiles) == report["counts"]["uploaded"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_oversized_field_is_the_same_clear_line_in_both_readers(tmp_path, cli,
                                                                   workers) -> None:
    path = tmp_path / "users.csv"
    path.write_text('identity,Phone,Note\nu1,+14155552671,"' + "x" * 200_000 + '"\n'
                    "u2,+14155552672,ok\n")
    result = cli("upload-users", str(path), "--dry-run", "--workers", workers)
    assert result.exit_code == 2
    assert "users.csv: row 2: field larger than field limit (131072)" in result.stderr


def test_a_huge_quoted_field_full_of_newlines_is_linear(tmp_path, cli) -> None:
    """16 MB of one quoted field with newlines took 26 s (the block cutter searched the whole
    carry again for every block); it is refused at its row in seconds, whatever the size."""
    import time

    path = tmp_path / "users.csv"
    path.write_text('identity,Phone,Note\nu1,+14155552671,"' + "a\n" * 8_000_000 + '"\n'
                    "u2,+14155552672,ok\n")
    started = time.monotonic()
    result = cli("upload-users", str(path), "--dry-run", "--workers", "2")
    assert time.monotonic() - started < 10
    assert result.exit_code == 2 and "row 2: field larger than field limit" in result.stderr

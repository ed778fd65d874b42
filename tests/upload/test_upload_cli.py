"""upload-users as a new user meets it: a folder named a folder, the progress line, and
every command it prints as advice running as printed (Ctrl-C after --restart, the rejects)."""

from __future__ import annotations

import shlex
import sys

import pytest

from ctwa.cli.users import progress_line
from ctwa.infra.errors import ExitCode
from ctwa.sandbox.clevertap import MockCleverTap
from tests.conftest import LiveServer


@pytest.fixture
def mock_ct():
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"})
    with LiveServer(mock.app()) as server:
        yield server


def test_a_folder_is_named_a_folder(cli, tmp_path) -> None:
    done = cli("upload-users", str(tmp_path), "--dry-run")
    assert done.exit_code == ExitCode.USAGE
    assert f"{tmp_path}: is a folder, not a CSV file" in done.stderr


def test_the_progress_line_shows_bytes_of_the_total_rows_per_second_and_an_eta() -> None:
    line = progress_line(25_000_000, 100_000_000, 200_000, 200, 10.0)
    assert line == ("25.0 MB of 100.0 MB (25%), 200,000 rows, 200 batches, 20,000 rows/s, "
                    "ETA 0:30")
    assert "ETA" not in progress_line(0, 100, 0, 0, 0.0)  # no pace yet: no made-up figure
    assert progress_line(500, 0, 3, 0, 1.0) == "3 rows, 0 batches, 3 rows/s"


def _run_hint(cli, text: str, prefix: str, monkeypatch) -> object:
    """Run the command a line of output gives after ``prefix``, exactly as printed."""
    line = next(ln for ln in text.splitlines() if prefix in ln)
    args = shlex.split(line.split(prefix, 1)[1])
    assert args[0] == "ctwa"
    assert "****" not in args and "--passcode" not in args  # a mask would be sent as it
    monkeypatch.setattr(sys, "argv", args)
    return cli(*args[1:], env={"CTWA_PASSCODE": "pc-CANARY-55e0"})


def test_after_ctrl_c_of_a_restart_the_resume_command_runs_as_printed(cli, tmp_path, mock_ct,
                                                                      monkeypatch) -> None:
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\n" + "".join(f"u{i},+1415555{i:04d}\n" for i in range(60)))
    base = ["upload-users", str(path), "--base-url", mock_ct.url, "--account-id", "ACC",
            "--passcode", "pc-CANARY-55e0", "--batch-size", "10", "--concurrency", "1"]
    assert cli(*base).exit_code == 0  # leaves a journal behind
    from ctwa.cli import users

    calls = {"n": 0}
    wrap = users._RowsPerSecond.wrap

    def interrupting(self, progress):
        inner = wrap(self, progress)

        def update(report, done, size):
            calls["n"] += 1
            inner(report, done, size)
            if calls["n"] == 2:
                raise KeyboardInterrupt

        return update

    monkeypatch.setattr(users._RowsPerSecond, "wrap", interrupting)
    argv = ["ctwa", *base, "--restart"]
    monkeypatch.setattr(sys, "argv", argv)
    stopped = cli(*argv[1:])
    assert stopped.exit_code == ExitCode.INTERRUPTED, stopped.stderr
    assert "next: fix the rows" not in stopped.stderr  # no row needs fixing
    monkeypatch.setattr(users._RowsPerSecond, "wrap", wrap)
    resumed = _run_hint(cli, stopped.stderr, "to finish the upload, run: ", monkeypatch)
    assert resumed.exit_code == 0, resumed.stderr
    assert "--restart" not in stopped.stderr.split("run: ", 1)[1]


def test_the_rejects_command_runs_as_printed(cli, tmp_path, mock_ct, monkeypatch) -> None:
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\nu1,+14155550001\nu2,abc\n")
    argv = ["ctwa", "upload-users", str(path), "--base-url", mock_ct.url, "--account-id", "ACC",
            "--passcode", "pc-CANARY-55e0", "--rejects", str(tmp_path / "r.csv")]
    monkeypatch.setattr(sys, "argv", argv)
    first = cli(*argv[1:])
    assert first.exit_code == ExitCode.FAILED
    assert "phone 'abc' is not a phone number" in (tmp_path / "r.csv").read_text()
    assert "the passcode is left out: export CTWA_PASSCODE=... first" in first.stderr
    fixed = (tmp_path / "r.csv").read_text().replace(",abc", ",+14155550002")
    (tmp_path / "r.csv").write_text(fixed)
    again = _run_hint(cli, first.stderr, "upload that file as it is: ", monkeypatch)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.split("uploaded", 1)[1].split()[0] == "1"


def test_a_dry_run_stopped_by_ctrl_c_asks_for_no_resume(cli, tmp_path, monkeypatch) -> None:
    from ctwa.cli import users

    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\n" + "".join(f"u{i},+1415555{i:04d}\n" for i in range(30)))

    def interrupting(self, progress):
        def update(report, done, size):
            raise KeyboardInterrupt

        return update

    monkeypatch.setattr(users._RowsPerSecond, "wrap", interrupting)
    done = cli("upload-users", str(path), "--dry-run", "--batch-size", "5")
    assert done.exit_code == ExitCode.INTERRUPTED, done.stderr
    assert "--resume" not in done.stderr and "run the same command again" in done.stderr


@pytest.mark.parametrize(("header", "said"), [
    (b"identity,Phone,Nam\xe9\n", "row 1 (the header) is not utf-8-sig text (byte 0xE9 in "
     "field 3)"),
    (b"identity,Phone,Name,Name\n", "header: column 'name' appears twice"),
])
@pytest.mark.parametrize("dry", [True, False])
def test_a_bad_header_is_one_clear_line_in_a_real_run_too(cli, tmp_path, mock_ct, header, said,
                                                          dry) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(header + b"u1,+14155552671,x,y\n")
    send = [] if dry else ["--base-url", mock_ct.url, "--account-id", "ACC", "--passcode",
                           "pc-CANARY-55e0"]
    done = cli("upload-users", str(path), *(["--dry-run"] if dry else send))
    assert done.exit_code == ExitCode.USAGE, done.stderr
    assert said in done.stderr and "unexpected" not in done.stderr


def test_the_progress_bar_on_a_terminal_shows_the_line(monkeypatch) -> None:
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from ctwa.cli.output import Output
    from ctwa.cli.users import _progress

    monkeypatch.setenv("TERM", "xterm")  # rich paints no live bar on the suite's dumb one
    buffer = io.StringIO()
    out = Output(_stderr=Console(file=buffer, force_terminal=True, width=120))
    with _progress(out) as update:
        update(SimpleNamespace(counts=SimpleNamespace(rows_read=2000), batches_sent=2),
               2_000_000, 4_000_000)
        import time

        deadline = time.monotonic() + 3  # the bar repaints ten times a second
        while "2,000 rows" not in buffer.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "2.0 MB of 4.0 MB (50%), 2,000 rows, 2 batches" in buffer.getvalue()


def test_the_run_verdict_tells_rows_read_from_rows_sent(cli, tmp_path, mock_ct) -> None:
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\nu1,+14155550001\nu2,abc\nu3,+14155550003\n")
    real = cli("upload-users", str(path), "--base-url", mock_ct.url, "--account-id", "ACC",
               "--passcode", "pc-CANARY-55e0", "--rejects", str(tmp_path / "r.csv"))
    said = real.stdout + real.stderr
    assert "run complete: 3 row(s) read and checked, to the end; 2 uploaded" in said, said
    assert "sent, to the end" not in said
    dry = cli("upload-users", str(path), "--dry-run", "--journal", str(tmp_path / "j.jsonl"))
    said = dry.stdout + dry.stderr
    assert "3 row(s) read and checked, to the end; none sent (a dry run)" in said, said


def test_dev_null_is_not_a_regular_file(cli) -> None:
    done = cli("upload-users", "/dev/null", "--dry-run")
    assert done.exit_code == ExitCode.USAGE
    assert "/dev/null: not a regular file" in done.stderr and "no such file" not in done.stderr

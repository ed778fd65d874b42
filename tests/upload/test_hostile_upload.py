"""upload-users against hostile CleverTap-like servers on 127.0.0.1 (issue 25): answers that
confirm nothing, answers that never end, outputs that would destroy an input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctwa.infra.errors import ExitCode
from tests.conftest import LiveServer


def _users(tmp_path: Path, count: int = 50) -> Path:
    path = tmp_path / "users.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "Name", "Phone"])
        for i in range(count):
            writer.writerow([f"user-{i}", f"User {i}", f"+1415555{i:04d}"])
    return path


def _answering(answer: dict, seen: list[int]) -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        seen.append(len(json.loads(await request.body())["d"]))
        return JSONResponse(answer)

    return Starlette(routes=[Route("/1/upload", upload, methods=["POST"])])


def _upload(cli, path: Path, url: str, *extra: str):
    return cli("--json", "upload-users", str(path), "--base-url", url, "--account-id", "ACC",
               "--passcode", "pc-CANARY-55e0", "--batch-size", "10", *extra)


def test_a_200_that_says_fail_uploads_nothing_and_resume_sends_again(tmp_path, cli) -> None:
    """FACTS.md: ``{"status": "fail", "processed": 0}`` is every record refused."""
    seen: list[int] = []
    path = _users(tmp_path)
    with LiveServer(_answering({"status": "fail", "processed": 0}, seen)) as server:
        first = _upload(cli, path, server.url)
        assert first.exit_code == ExitCode.FAILED, first.stderr
        counts = json.loads(first.stdout)["counts"]
        assert counts["uploaded"] == 0 and counts["not_uploaded"] == 50 and counts["adds_up"]
        assert sum(seen) == 50
        again = _upload(cli, path, server.url, "--resume")
    assert sum(seen) == 100, "the batches were journaled as done"
    assert json.loads(again.stdout)["counts"]["uploaded"] == 0
    with path.with_name("users.rejects.csv").open(newline="") as handle:
        reasons = {row["reason"] for row in csv.DictReader(handle)}
    assert any("confirms 0 of 10" in reason for reason in reasons), reasons


def test_processed_short_of_the_rows_confirms_none_of_them(tmp_path, cli) -> None:
    seen: list[int] = []
    path = _users(tmp_path, 10)
    with LiveServer(_answering({"status": "success", "processed": 7, "unprocessed": []},
                               seen)) as server:
        result = _upload(cli, path, server.url)
    counts = json.loads(result.stdout)["counts"]
    assert result.exit_code == ExitCode.FAILED
    assert counts["uploaded"] == 0 and counts["not_uploaded"] == 10 and counts["adds_up"]


def test_a_plain_success_without_a_count_still_uploads(tmp_path, cli) -> None:
    seen: list[int] = []
    path = _users(tmp_path, 10)
    with LiveServer(_answering({"status": "success"}, seen)) as server:
        result = _upload(cli, path, server.url)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert json.loads(result.stdout)["counts"]["uploaded"] == 10


def test_ctrl_c_against_a_server_that_never_answers_exits_with_the_summary(tmp_path) -> None:
    """Pressed once: the requests in flight get their few seconds, then are abandoned (they
    used to hold the exit through every retry, ~120 s)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept_and_say_nothing() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    path = _users(tmp_path, 50)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctwa", "upload-users", str(path), "--base-url",
         f"http://127.0.0.1:{server.getsockname()[1]}", "--account-id", "ACC",
         "--passcode", "pc-CANARY-55e0", "--batch-size", "10", "--timeout", "30s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + 30
        while len(accepted) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=25)  # before: ~120 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.close()
        for conn in accepted:
            conn.close()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err
    assert "to finish the upload, run:" in out + err and "--resume" in out + err


import pytest  # noqa: E402


@pytest.mark.parametrize("option", ["--rejects", "--report", "--junit", "--journal"])
def test_an_output_that_is_the_input_is_refused_before_anything_is_sent(tmp_path, cli,
                                                                        option) -> None:
    seen: list[int] = []
    path = _users(tmp_path, 10)
    before = path.read_bytes()
    with LiveServer(_answering({"status": "success", "processed": 10}, seen)) as server:
        result = _upload(cli, path, server.url, option, str(path))
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "is an input of this run" in result.stderr and "Traceback" not in result.output
    assert path.read_bytes() == before and seen == []


def test_an_output_that_is_the_store_or_a_folder_is_refused(tmp_path, cli) -> None:
    from ctwa.store.db import Store, store_path

    with Store() as store:  # the store exists, with a run in it
        store.add_run("r1", "upload", True, {"id": "r1"})
    kept = store_path().read_bytes()
    path = _users(tmp_path, 10)
    seen: list[int] = []
    with LiveServer(_answering({"status": "success", "processed": 10}, seen)) as server:
        to_store = _upload(cli, path, server.url, "--rejects", str(store_path()))
        to_folder = _upload(cli, path, server.url, "--rejects", str(tmp_path))
        report_to_store = _upload(cli, path, server.url, "--report", str(store_path()))
    assert to_store.exit_code == ExitCode.USAGE and "is ctwa's store" in to_store.stderr
    assert report_to_store.exit_code == ExitCode.USAGE
    assert to_folder.exit_code == ExitCode.USAGE and "is a folder" in to_folder.stderr
    assert store_path().read_bytes() == kept and seen == []


def test_a_rejects_file_that_cannot_be_written_is_one_line(tmp_path, cli) -> None:
    import stat

    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full here")
    mode = full.stat().st_mode
    path = _users(tmp_path, 10)
    with path.open("a") as handle:
        handle.write("bad-row,Bad,not-a-phone\n")  # a reject to write
    seen: list[int] = []
    try:
        with LiveServer(_answering({"status": "success", "processed": 10}, seen)) as server:
            result = _upload(cli, path, server.url, "--rejects", str(full))
        changed = full.stat().st_mode != mode
    finally:
        if full.stat().st_mode != mode:  # ctwa used to chmod it 0600: put it back
            full.chmod(stat.S_IMODE(mode))
    assert not changed, "ctwa changed /dev/full's permissions"
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "/dev/full: cannot write" in result.output, result.output
    assert "Traceback" not in result.output
    assert "bug in ctwa" not in result.output

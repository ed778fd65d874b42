"""Load mode against an endpoint that dies mid-run (issue 28.1): a real ``ctwa sandbox``
process killed with SIGKILL while 750 or 1500 requests are in flight, then started again on
the same port. The dead endpoint is counted as connection errors, the run goes on against the
new one, and the ``--json`` document is always written (before the fix, uvloop's
"unable to perform operation on <TCPTransport closed=True>" crashed a worker: exit 70, no
report)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port


def _sandbox(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ctwa", "sandbox", "--port", str(port), "--no-store",
         "--reply-rate", "0", "--max-concurrency", "5000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def _accepted(port: int) -> int:
    try:
        return int(httpx.get(f"http://127.0.0.1:{port}/bsp/stats", timeout=5).json()["accepted"])
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


def _wait_for(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("concurrency", [750, 1500])
def test_an_endpoint_killed_mid_run_is_counted_and_the_run_goes_on(concurrency: int) -> None:
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1"}
    sandboxes = [_sandbox(port, env)]
    run = None
    went_on = False  # a sandbox started in place of a killed one was sent to
    try:
        assert _wait_for(lambda: _accepted(port) >= 0, 30), "the sandbox did not start"
        run = subprocess.Popen(
            [sys.executable, "-m", "ctwa", "--json", "send-template", "--sample", "text",
             "--to", "919876543210", "--endpoint", f"http://127.0.0.1:{port}/bsp/messages",
             "--username", "ctwa", "--password", "sandbox", "--duration", "10s",
             "--concurrency", str(concurrency), "--workers", "1", "--timeout", "3s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        # kill it while the run is in full flow, twice if the run lasts: the first sandbox,
        # then the one started in its place once it is sent to (the run went on)
        for kill in range(2):
            if not _wait_for(lambda: run.poll() is not None or _accepted(port) >= 300, 40):
                break
            if run.poll() is not None:
                break
            went_on = went_on or kill > 0
            sandboxes[-1].send_signal(signal.SIGKILL)
            sandboxes[-1].wait()
            time.sleep(0.3)
            sandboxes.append(_sandbox(port, env))
        out, err = run.communicate(timeout=60)
        if not went_on:  # killed once: the second sandbox must have had messages
            went_on = _wait_for(lambda: _accepted(port) >= 0, 30) and _accepted(port) > 0
    finally:
        for proc in sandboxes + ([run] if run else []):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Traceback" not in err and "bug in ctwa" not in err, err[-2000:]
    assert run.returncode == ExitCode.FAILED, err[-2000:]
    document = json.loads(out)
    assert len(sandboxes) >= 2, "the run ended before the endpoint was killed"
    assert document["connection_errors"] > 0 and document["accepted"] > 0
    assert went_on, "nothing was sent to the endpoint once it was back"


class _ClosedUnderUs:
    """A transport as uvloop leaves one the peer reset, before ``connection_lost`` has run:
    closed, and writing to it raises RuntimeError."""

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; "
                           "the handler is closed")

    def close(self) -> None:
        return None


def test_a_connection_closed_under_the_pool_is_a_connection_error_not_a_crash() -> None:
    import asyncio

    from ctwa.http.raw import HttpError, Pool, _Connection

    async def scenario() -> str:
        pool = Pool("http://127.0.0.1:9/x", {}, size=1, timeout=1)
        connection = _Connection(asyncio.get_running_loop())
        connection.connection_made(_ClosedUnderUs())  # type: ignore[arg-type]
        try:
            await connection.send(pool.message(b"{}"), 1)
        except HttpError as exc:
            return str(exc)
        return "answered"

    assert asyncio.run(scenario()) == "connection closed"

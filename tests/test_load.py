"""Load mode against real servers on 127.0.0.1: small, bounded, and the counts must add up."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ctwa.infra.errors import ExitCode
from ctwa.load.engine import LoadReport, run_load, saturation
from ctwa.load.plan import LoadPlan
from tests.conftest import LiveServer

SEEN: list[str] = []


async def mixed(request: Request) -> Response:
    body = json.loads(await request.body())
    SEEN.append(body["msgId"])
    ending = body["to"][-1]
    if ending == "1":
        return Response(b'{"status":"success"}', media_type="application/json")
    if ending == "2":
        return JSONResponse({"status": "failure", "error": {"code": 2002, "message": "bad"}})
    if ending == "3":
        return JSONResponse({"status": "failure", "error": {"message": "boom"}},
                            status_code=500)
    if ending == "4":
        return PlainTextResponse("OK")
    await asyncio.sleep(0.3)
    return JSONResponse({"status": "success"})


async def refuses(request: Request) -> Response:
    await request.body()
    REFUSED.append(1)
    return JSONResponse({"status": "failure", "error": {"code": 2000, "message": "bad creds"}})


REFUSED: list[int] = []


async def slow(request: Request) -> Response:
    await request.body()
    await asyncio.sleep(0.5)
    return JSONResponse({"status": "success"})


@pytest.fixture(scope="module")
def server():
    app = Starlette(routes=[Route("/mixed", mixed, methods=["POST"]),
                            Route("/slow", slow, methods=["POST"]),
                            Route("/refuses", refuses, methods=["POST"])])
    with LiveServer(app) as live:
        yield live


def plan(url: str, **kw) -> LoadPlan:
    base = {"payloadVersion": 0.1, "to": "x", "wabaNumber": "9190", "msgId": "x",
            "isTemplate": False, "type": "text", "text": {"body": "hi"}}
    return LoadPlan(url, {"Content-Type": "application/json"}, base,
                    kw.pop("recipients", ("919000000001",)), **kw)


def test_counts_add_up_and_failures_are_sorted(server) -> None:
    SEEN.clear()
    recipients = tuple(f"91900000000{i}" for i in range(1, 6))
    report = run_load(plan(f"{server.url}/mixed", recipients=recipients, count=250,
                           concurrency=25, deadline=0.2))
    assert report.sent == 250 and report.accepted == 50
    assert report.failure_codes == {"2002": 50}
    assert report.http_statuses == {"500": 50}
    assert report.contract_violations == 50 and report.too_slow == 50
    assert report.connection_errors == 0
    assert report.accepted + report.failed + report.too_slow == report.sent
    assert not report.passed
    assert len(set(SEEN)) == 250  # every message had its own msgId
    assert report.latency_ms["max"] >= 300 and report.peak_in_flight <= 25


def test_rate_keeps_arrivals_when_the_server_slows(server) -> None:
    report = run_load(plan(f"{server.url}/slow", count=40, rate=40.0, concurrency=100))
    # closed-loop with few senders would take 40 x 0.5 s / concurrency; arrivals on a clock
    # finish about one second of arrivals plus one answer time later
    assert report.sent == 40 and report.accepted == 40
    assert report.elapsed < 2.5
    assert report.peak_in_flight >= 15


def test_two_worker_processes_with_progress(server) -> None:
    seen = []
    report = run_load(plan(f"{server.url}/mixed", count=60, concurrency=10, workers=2),
                      on_progress=seen.append)
    assert report.sent == 60 and report.accepted == 60 and report.workers == 2
    assert report.passed
    assert seen and seen[-1].sent <= 60


def test_connection_errors_are_counted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = run_load(plan(f"http://127.0.0.1:{port}/", count=20, concurrency=5))
    assert report.connection_errors == 20 and report.accepted == 0
    assert report.error_samples and not report.passed


def test_duration_mode(server) -> None:
    report = run_load(plan(f"{server.url}/mixed", duration=0.5, concurrency=5))
    assert report.sent > 10 and report.accepted == report.sent
    assert 0.4 < report.elapsed < 3


def test_cli_load_mode_json_and_exit_code(cli, server, tmp_path) -> None:
    numbers = tmp_path / "to.txt"
    numbers.write_text("# recipients\n919000000001\n+919000000002\n")
    result = cli("--json", "send-freeform", "--text", "hi", "--waba", "919000009190",
                 "--endpoint", f"{server.url}/mixed", "--to-file", str(numbers),
                 "--count", "40", "--concurrency", "8", "--workers", "1")
    assert result.exit_code == ExitCode.FAILED  # half of them are refused with 2002
    data = json.loads(result.stdout)
    assert data["sent"] == 40 and data["accepted"] == 20 and data["failure_codes"] == {
        "2002": 20}
    ok = cli("validate-endpoint", "--endpoint", f"{server.url}/mixed", "--to", "919000000001",
             "--count", "30", "--workers", "1")
    assert ok.exit_code == 0, ok.stderr
    assert "PASS: 0 answer(s) over the 1 s deadline" in ok.stdout
    assert "sent" in ok.stdout and "requests/s" in ok.stdout


def test_worker_processes_send_at_the_same_time(server) -> None:
    seen = []
    report = run_load(plan(f"{server.url}/slow", count=40, concurrency=20, workers=2),
                      on_progress=seen.append, interval=0.1)
    assert report.accepted == 40
    assert max(p.in_flight for p in seen) >= 15  # both workers' 10 each, not one after another


def test_refused_credentials_stop_the_run_early_with_exit_4(cli, server) -> None:
    REFUSED.clear()
    result = cli("send-freeform", "--text", "hi", "--waba", "919000009190", "--to", "919000000001",
                 "--endpoint", f"{server.url}/refuses", "--count", "2000", "--concurrency",
                 "4", "--workers", "1")
    assert result.exit_code == ExitCode.CONFIG
    assert len(REFUSED) < 50  # stopped after the first answers, not 2000 messages later
    assert "FAIL: the endpoint refused the credentials" in result.stdout
    assert "refused the credentials" in result.stderr


def test_the_verdict_names_what_failed_and_what_was_not_tested(cli, server) -> None:
    result = cli("--json", "send-freeform", "--text", "hi", "--waba", "919000009190", "--to-file",
                 str(_numbers(server)), "--endpoint", f"{server.url}/mixed", "--count", "40",
                 "--rate", "200", "--workers", "1")
    data = json.loads(result.stdout)
    verdict = " | ".join(data["verdict"])
    assert "not tested: 1500 concurrent (with --rate" in verdict
    assert "connection" not in verdict and "failure 2002 (invalid phone number)" in verdict
    assert "HTTP 500" in verdict and "contract violation" in verdict
    assert len(set(data["error_samples"])) == len(data["error_samples"]) >= 3


def _numbers(server) -> Path:
    path = Path(tempfile.mkdtemp()) / "to.txt"
    path.write_text("919000000001\n919000000002\n919000000003\n919000000004\n")
    return path


def test_ctrl_c_prints_the_partial_report_and_exits_130(server) -> None:
    """A real process: SIGINT mid-run ends within seconds with the report of what was sent."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "ctwa", "send-freeform", "--text", "hi", "--waba", "919000009190",
         "--to", "919000000001", "--endpoint", f"{server.url}/slow", "--duration", "60s",
         "--concurrency", "20", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"})
    time.sleep(4)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 15
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "INTERRUPTED: the run was stopped after" in out and "requests/s" in out
    assert "Traceback" not in err


def test_connections_are_opened_before_the_start_and_timed_apart(server) -> None:
    """The set-up of 20 connections is not in the first 20 requests' latency: it is reported on
    its own, and the run's latency is the endpoint's answer time."""
    report = run_load(plan(f"{server.url}/slow", count=40, concurrency=20))
    assert report.connections == 20 and report.connect_errors == 0
    assert report.connect_ms["max"] < 500
    assert 500 <= report.latency_ms["p50"] < 700 and report.latency_ms["max"] < 900
    assert not report.service_ms  # closed loop: due and written are the same moment


def test_a_fixed_rate_reports_latency_from_due_and_from_write(server) -> None:
    report = run_load(plan(f"{server.url}/slow", count=30, rate=60.0, concurrency=5))
    # five connections for arrivals every 17 ms of 500 ms answers: most requests wait for a
    # connection, and only the latency from when each was due shows it
    assert report.service_ms["p50"] < 700
    assert report.latency_ms["p99"] > report.service_ms["p99"] + 500


def test_refused_connections_at_the_start_stop_opening_more() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = run_load(plan(f"http://127.0.0.1:{port}/", count=5, concurrency=500))
    assert 1 <= report.connect_errors <= 100  # one batch, not 500 attempts
    assert report.connection_errors == 5
    assert any("could not be opened" in line for line in report.verdict)


def _report(**figures) -> LoadReport:
    """A run that held 1500 in flight and whose slowest answer came close to the 1 s
    deadline: the client's own delay is within reach of a verdict."""
    figures["latency_ms"] = {"max": 995.0, **figures.get("latency_ms", {})}
    return LoadReport("http://x", sent=1000, accepted=1000, peak_in_flight=1500, **figures)


def test_saturation_sees_a_busy_loop_a_stalled_tail_and_gc_pauses() -> None:
    calm = _report(latency_ms={"p50": 200.0, "p90": 205.0, "p99": 210.0},
                   loop_lag_ms={"p50": 0.1, "p90": 0.5, "p99": 2.0, "max": 8.0})
    assert saturation(calm) == []
    tail = _report(latency_ms={"p50": 200.0, "p90": 205.0, "p99": 300.0},
                   loop_lag_ms={"p50": 0.1, "p90": 0.5, "p99": 45.0, "max": 60.0})
    assert saturation(tail) == ["its own delay (45 ms at p99) could have added more than 10% "
                                "to the p99 latency (300 ms)"]
    busy = _report(latency_ms={"p50": 30.0, "p90": 60.0, "p99": 80.0},
                   loop_lag_ms={"p50": 13.0, "p90": 20.0, "p99": 30.0, "max": 40.0})
    assert "its event loop was 13 ms late half the time (busy)" in saturation(busy)
    paused = _report(latency_ms={"p50": 200.0, "p90": 205.0, "p99": 210.0},
                     loop_lag_ms={"p50": 0.1, "p90": 0.5, "p99": 2.0, "max": 8.0},
                     gc_pause_ms={"count": 3, "max": 150.0, "total": 160.0})
    assert saturation(paused) == ["a garbage-collector pause stalled for 150 ms, more than "
                                  "10% of the 1 s deadline"]


def test_the_client_lag_warning_only_when_it_could_change_a_verdict() -> None:
    """A small local run: 1 ms of lag is more than a tenth of 5 ms answers, but the slowest
    answer is far from the deadline and no 1500-in-flight criterion was at stake: silent."""
    local = {"latency_ms": {"p50": 5.0, "p90": 8.0, "p99": 12.0, "max": 20.0},
             "loop_lag_ms": {"p50": 1.0, "p90": 2.0, "p99": 4.0, "max": 6.0}}
    small = LoadReport("http://x", sent=300, accepted=300, concurrency=50, peak_in_flight=50,
                       **local)
    assert saturation(small) == []
    near = LoadReport("http://x", sent=300, accepted=300, concurrency=50, peak_in_flight=50,
                      latency_ms={**local["latency_ms"], "max": 997.0},
                      loop_lag_ms=local["loop_lag_ms"])
    near.saturation = saturation(near)
    assert near.saturation
    from ctwa.load.engine import verdict

    warnings = [line for line in verdict(near) if "client" in line]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "may have decided the 1 s deadline (slowest answer 997 ms, the client's own delay " \
        "up to 6 ms)" in warnings[0]
    short = LoadReport("http://x", sent=3000, accepted=3000, concurrency=1500,
                       peak_in_flight=900, latency_ms={"p50": 5.0, "max": 20.0},
                       loop_lag_ms={"p50": 12.0, "p90": 20.0, "max": 30.0})
    assert "its event loop was 12 ms late half the time (busy)" in saturation(short)


def test_the_deadline_verdict_gives_the_share_too_slow(server) -> None:
    report = run_load(plan(f"{server.url}/slow", count=10, concurrency=10, deadline=0.2))
    assert report.too_slow == 10
    assert "FAIL: 10 answer(s) (100% of answers) over the 0.2 s deadline" in "\n".join(
        report.verdict)

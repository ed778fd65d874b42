"""The round trip against the sandbox: a send waits for its callbacks and prints them; a load
run reports DLR completeness that matches what the mock BSP says it sent; and each way a BSP
can misbehave (``ctwa sandbox --misbehave``) is caught and named."""

from __future__ import annotations

import json
import socket

import pytest

from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from tests.roundtrip.running import listener_in_another_terminal

AUTH = ("--username", "ctwa", "--password", "sandbox")




def through_sandbox(cli, *args: str, faults: tuple[str, ...] = (), to: str = "919000000001",
                    until: str = "read", timeout: str = "4s", reply_rate: float = 0.0):
    """Send with --await-callbacks through a sandbox whose BSP calls back to the listener the
    command starts; (the command's result, what the mock BSP says it did)."""
    port = free_port()
    listen = f"http://127.0.0.1:{port}"
    bsp = BspSettings(misbehave=faults, status_url=f"{listen}/status",
                      inbound_url=f"{listen}/inbound", dlr_delays=(0.02, 0.05, 0.08),
                      reply_rate=reply_rate)
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("--json", "send-template", "--sample", "text", "--to", to, "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--await-callbacks", "--until", until,
                     "--callback-timeout", timeout, "--listen", f"127.0.0.1:{port}", *args)
        state = box.bsp.state
    return result, state


def test_a_send_waits_until_read_and_shows_the_timeline(cli) -> None:
    result, _ = through_sandbox(cli, reply_rate=1.0)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reached"] and data["verdict"]["outcome"] == "accepted"
    events = data["timeline"]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["sent", "delivered",
                                                                       "read"]
    assert all(e["valid"] for e in events)
    delays = [e["after_ms"] for e in events]
    assert delays == sorted(delays) and delays[0] > 0
    assert [e["status"] for e in events if e["kind"] == "inbound"] == ["text"]  # the reply
    assert data["round_trip"]["anomalies"] == {}
    traced = cli("--json", "trace", data["msgId"])
    story = json.loads(traced.stdout)
    assert story["send"]["verdict"] == "accepted" and story["send"]["request"]["to"] == \
        "919000000001"
    assert [c["status"] for c in story["callbacks"]] == ["sent", "delivered", "read", "text"]
    last = cli("trace", "--last")
    assert data["msgId"] in last.stdout and "delivered" in last.stdout


def test_the_text_timeline(cli) -> None:
    port = free_port()
    bsp = BspSettings(status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("send-freeform", "--text", "hi", "--waba", "919000009190", "--to",
                     "919000000001", "--endpoint", box.urls()["bsp_endpoint"], *AUTH,
                     "--await-callbacks", "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("accepted (HTTP 200")
    assert "sent  /status  valid" in lines[2] and "delivered  /status  valid" in lines[3]
    assert "listening for callbacks on" in result.stderr


def test_no_callback_in_time_is_exit_1_saying_what_to_check(cli) -> None:
    port = free_port()
    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False,
                                        bsp=BspSettings(status_url=None))) as box:
        box.settings.bsp.status_url = None  # this BSP sends no callbacks anywhere
        result = cli("send-template", "--sample", "text", "--to", "919000000001", "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--await-callbacks",
                     "--callback-timeout", "1s", "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == ExitCode.FAILED
    assert "no delivered status" in result.stderr and "callback URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_held_by_something_else_is_one_line(cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("send-template", "--sample", "text", "--to", "919000000001", "--endpoint",
                     "http://127.0.0.1:9/x", "--await-callbacks", "--callback-timeout", "1s",
                     "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == ExitCode.USAGE
    assert "not a ctwa listener" in result.stderr and "--listen" in result.stderr


def test_a_running_listener_is_used_when_it_records_into_the_same_store(cli, listener) -> None:
    """`ctwa callback listen` in another terminal: the send uses it instead of its own."""
    port = free_port()
    bsp = BspSettings(status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    with listener_in_another_terminal(port, bsp) as box:
        result = cli("send-template", "--sample", "text", "--to", "919000000001",
                     "--endpoint", box.urls()["bsp_endpoint"], *AUTH, "--await-callbacks",
                     "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == 0, result.stderr
    assert "listening for callbacks" not in result.stderr and "delivered" in result.stdout


def test_a_load_run_reports_completeness_matching_the_mock_bsp(cli) -> None:
    """5,000 messages, a share to numbers the mock BSP fails (1006), every callback back."""
    port = free_port()
    listen = f"http://127.0.0.1:{port}"
    # the mock BSP refuses ...0003 and fails ...0006 (1006) and ...0009 (1009): one in ten fails
    numbers = [f"9190000{i:05d}" for i in (1, 2, 4, 5, 6, 7, 8, 10, 11, 12)]
    bsp = BspSettings(status_url=f"{listen}/status", inbound_url=f"{listen}/inbound",
                      dlr_delays=(0.02, 0.05, 0.08))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        to_file = Path(folder) / "to.txt"
        to_file.write_text("\n".join(numbers) + "\n")
        with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
            result = cli("--json", "send-template", "--sample", "text", "--to-file",
                         str(to_file), "--endpoint", box.urls()["bsp_endpoint"], *AUTH,
                         "--count", "5000", "--workers", "1", "--await-callbacks", "--until",
                         "read", "--callback-timeout", "60s", "--listen", f"127.0.0.1:{port}",
                         # the subject is DLR completeness; answer times are the load tests'
                         # (1500 in flight on 2 cores can put a few answers past 1 s)
                         "--deadline", "10s")
            sent_by_bsp = dict(box.bsp.state.statuses_sent)
    report = json.loads(result.stdout)
    assert result.exit_code == 0, [c["reason"] for c in report["verdict"]["criteria"]
                                   if c["status"] != "pass"]
    trip = report["round_trip"]
    assert report["accepted"] == trip["accepted"] == 5000
    assert sum(trip["furthest"].values()) == 5000  # the counts add up
    assert trip["furthest"]["failed"] == 500 and trip["failed_codes"] == {"1006": 500}
    assert trip["furthest"]["read"] == 4500 == sent_by_bsp["read"]
    assert trip["reached"]["sent"] == sent_by_bsp["sent"] == 5000
    assert trip["reached"]["delivered"] == sent_by_bsp["delivered"]
    assert trip["anomalies"] == {} and trip["complete"] == 5000
    assert set(trip["time_to_status_ms"]) == {"sent", "delivered", "read", "failed"}


@pytest.mark.parametrize(("fault", "anomaly", "args"), [
    ("duplicate-dlr", "duplicates", ()),
    ("out-of-order", "downgrades", ()),
    ("meta-format", "wrong_format", ()),
    ("wrong-msgid", "orphans", ()),
    ("no-read", "missing_until", ()),
    ("no-context", "no_context", ()),
])
def test_each_fault_of_one_message_is_named(cli, fault, anomaly, args) -> None:
    result, _ = through_sandbox(cli, *args, faults=(fault,), timeout="2s")
    assert result.exit_code == ExitCode.FAILED, result.stdout
    data = json.loads(result.stdout)
    assert anomaly in data["round_trip"]["anomalies"], data["round_trip"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("fault", "anomaly"), [("no-dlr", "none"),
                                                ("bad-codes", "wrong_format")])
def test_faults_on_a_share_of_a_load_run_are_counted(cli, fault, anomaly) -> None:
    result, state = through_sandbox(cli, "--count", "20", "--workers", "1", faults=(fault,),
                                    until="delivered", timeout="3s")
    assert result.exit_code == ExitCode.FAILED
    trip = json.loads(result.stdout)["round_trip"]
    assert trip["anomalies"][anomaly] == 4  # one message in five
    assert state.statuses_sent.get("delivered", 0) == 16
    assert sum(trip["furthest"].values()) == 20


def test_a_slow_bsp_is_judged_at_the_send(cli) -> None:
    result, _ = through_sandbox(cli, faults=("slow",), until="sent")
    data = json.loads(result.stdout)
    assert result.exit_code == ExitCode.FAILED
    assert data["verdict"]["outcome"] == "too-slow" and data["reached"]


def test_late_dlrs_are_named(cli) -> None:
    result, _ = through_sandbox(cli, faults=("late-dlr",), until="sent", timeout="15s")
    data = json.loads(result.stdout)
    assert result.exit_code == ExitCode.FAILED
    assert data["round_trip"]["anomalies"] == {"late": 1}


def test_ctrl_c_while_waiting_shows_what_arrived(tmp_path) -> None:
    """The BSP sends sent and delivered but never read: Ctrl-C during the wait for read
    prints the two that came and exits 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    bsp = BspSettings(misbehave=("no-read",), status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctwa", "send-template", "--sample", "text", "--to",
             "919000000001", "--endpoint", box.urls()["bsp_endpoint"], *AUTH,
             "--await-callbacks", "--until", "read", "--callback-timeout", "60s", "--listen",
             f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "NO_COLOR": "1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and box.bsp.state.statuses_sent.get(
                "delivered", 0) < 1:
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "sent  /status  valid" in out and "delivered  /status  valid" in out
    assert "interrupted while waiting" in err and "Traceback" not in err


def test_a_message_that_ends_failed_is_not_said_to_have_reached_the_awaited_status(cli) -> None:
    """The sandbox fails messages to numbers ending 0009 with 1009: the wait ends (failed ends
    a message), but the verdict says the message failed and is not passed."""
    result, _ = through_sandbox(cli, to="919000000009", until="delivered")
    assert result.exit_code == 0, result.stderr  # incomplete: nothing broke the contract
    data = json.loads(result.stdout)
    callbacks = next(c for c in data["criteria"] if c["name"] == "callbacks")
    assert callbacks["status"] == "warning"
    assert callbacks["reason"].startswith("0 of 1 accepted message(s) reached delivered, "
                                          "1 ended failed (1009: 1)")
    assert data["outcome"] == "incomplete"

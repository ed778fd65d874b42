"""The sender takes its slot from the Pacer after ``mark_in_flight``, just before the request.

``mark_in_flight`` is a write the state groups with others and commits when it can; on a
loaded machine the commit waits. A sender that took its slot *before* that write let the
slots pass while the commit waited, and then every send released by the commit left at once
(1,929 in one second at Meta at ``--mps`` 1000 in the cluster test). Here one commit is held
for 1.5 s at ``--mps`` 20: taken before, the ~26 slots that passed meanwhile all leave when it
is released; taken after, the sends leave at the pace.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.conftest import Harness, wait_until

MPS = 20.0
STALL = 1.5


def busiest(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0, lo=i) - i for i, t in enumerate(times)),
               default=0)


@pytest.fixture
def trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bridge's send trace (set before ``harness`` starts the bridge: asked for first)."""
    path = tmp_path / "sends.trace"
    monkeypatch.setenv("CTWA_BRIDGE_SEND_TRACE", str(path))
    return path


@pytest.mark.parametrize("harness", [{"mps": MPS}], indirect=True)
def test_a_slow_mark_in_flight_commit_does_not_release_sends_in_a_burst(
        trace: Path, harness: Harness) -> None:
    state = harness.running.bridge.state
    original = state.mark_in_flight
    held_until: list[float] = []

    async def slow_commit(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if not held_until:
            held_until.append(loop.time() + STALL)
        if loop.time() < held_until[0]:  # the first commit's group: released together
            await asyncio.sleep(held_until[0] - loop.time())
        return await original(*args, **kwargs)

    state.mark_in_flight = slow_commit  # type: ignore[method-assign]
    total = 30
    for n in range(total):
        assert harness.post({"payloadVersion": 0.1, "to": "919876543210",
                             "wabaNumber": "919999999998", "msgId": f"27|{n}|1|1",
                             "isTemplate": False, "type": "text",
                             "text": {"body": f"hello {n}"}}).json() == {"status": "success"}
    wait_until(lambda: len(harness.meta.requests) == total, timeout=20, what="every send")
    left = [float(line.split(" ", 1)[0]) for line in trace.read_text().splitlines()]
    ids = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    assert sorted(ids) == sorted(f"27|{n}|1|1" for n in range(total))
    assert busiest(left) <= MPS, f"{busiest(left)} sends left in one second at --mps {MPS:g}"
    # at Meta (a server in this process): one of slack for the arrival's own jitter
    assert busiest(harness.meta.times) <= MPS + 1


def test_a_wamid_the_state_did_not_take_in_time_is_recorded_on_a_later_try(
        harness: Harness) -> None:
    """Meta took the message; the state's ``complete_send`` timed out (a loaded machine):
    the sender asks again rather than leave the wamid unrecorded, which would leave Meta's
    statuses for it without a msgId."""
    from ctwa.bridge.state import StateUnavailable

    bridge = harness.running.bridge
    state = bridge.state
    original = state.complete_send
    calls: list[tuple[Any, ...]] = []

    async def times_out_twice(*args: Any) -> Any:
        calls.append(args)
        if len(calls) <= 2:
            raise StateUnavailable("PostgreSQL at x is unreachable: did not answer in time")
        return await original(*args)

    state.complete_send = times_out_twice  # type: ignore[method-assign]
    assert harness.post({"payloadVersion": 0.1, "to": "919876543210",
                         "wabaNumber": "919999999998", "msgId": "27|w|1|1",
                         "isTemplate": False, "type": "text",
                         "text": {"body": "hello"}}).json() == {"status": "success"}
    wait_until(lambda: len(calls) >= 3, timeout=10, what="a third try")

    def recorded() -> Any:
        future = asyncio.run_coroutine_threadsafe(state.lookup_msg_id("wamid.T1"),
                                                  harness.running.loop)
        return future.result(5)

    assert wait_until(recorded, timeout=5, what="the wamid recorded") == "27|w|1|1"
    assert len(harness.meta.requests) == 1  # recorded, never resent


def test_a_send_the_state_failed_before_its_request_left_is_queued_again(
        harness: Harness) -> None:
    """``mark_in_flight`` did not answer in time: nothing went to Meta, so the send goes back
    to the queue (a live replica's heartbeats hold its claims: left claimed, it would wait
    for the replica to stop) and is sent once."""
    from ctwa.bridge.state import StateUnavailable

    state = harness.running.bridge.state
    original = state.mark_in_flight
    calls: list[Any] = []

    async def times_out_once(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise StateUnavailable("PostgreSQL at x is unreachable: did not answer in time")
        return await original(*args)

    state.mark_in_flight = times_out_once  # type: ignore[method-assign]
    assert harness.post({"payloadVersion": 0.1, "to": "919876543210",
                         "wabaNumber": "919999999998", "msgId": "27|b|1|1",
                         "isTemplate": False, "type": "text",
                         "text": {"body": "hello"}}).json() == {"status": "success"}
    wait_until(lambda: harness.meta.requests, timeout=10, what="the send")
    time.sleep(0.5)
    assert [r["biz_opaque_callback_data"] for r in harness.meta.requests] == ["27|b|1|1"]

"""A state that fails one call (a statement past its timeout on a loaded machine) does not
strand a webhook or a callback: each goes back to its queue and comes again. Left claimed,
a live replica's heartbeats held it, and the statuses behind it, until the replica stopped
(1,783 'read' callbacks of a 20,000-message cluster run never reached CleverTap)."""

from __future__ import annotations

from typing import Any

from ctwa.bridge.state import StateUnavailable
from tests.bridge.conftest import Harness, wait_until
from tests.bridge.test_app import status, text


def _fails_once(calls: list[Any], original: Any) -> Any:
    async def call(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise StateUnavailable("PostgreSQL at x is unreachable: did not answer in time")
        return await original(*args)

    return call


def test_a_webhook_and_a_callback_the_state_failed_for_come_again(harness: Harness) -> None:
    state = harness.running.bridge.state
    finished: list[Any] = []
    completed: list[Any] = []
    state.finish_webhook = _fails_once(finished, state.finish_webhook)  # type: ignore[method-assign]
    state.complete_callback = _fails_once(completed, state.complete_callback)  # type: ignore[method-assign]
    assert harness.post(text("27|h|1|1")).json() == {"status": "success"}
    wait_until(lambda: harness.meta.requests, what="the send")
    hook = harness.meta.webhook([status("wamid.T1", "sent"), status("wamid.T1", "delivered"),
                                 status("wamid.T1", "read")])
    assert harness.webhook(hook).status_code == 200
    wait_until(lambda: ("27|h|1|1", "read") in harness.clevertap.statuses(), timeout=15,
               what="every status, after the state's failures")
    assert len(finished) >= 2 and len(completed) >= 2
    got: list[str] = []
    for _, kind in harness.clevertap.statuses():
        if not got or got[-1] != kind:  # the callback whose completion failed: again
            got.append(kind)
    assert got == ["sent", "delivered", "read"]

"""The bridge's refusal log: one line per stretch of trouble, the rest counted in the next."""

from __future__ import annotations

import logging

import pytest

from ctwa.bridge.throttle import ThrottledLog


def test_a_burst_of_refusals_is_one_line_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = ThrottledLog(logging.getLogger("ctwa.test.throttle"), every=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="ctwa.test.throttle"):
        for _ in range(1000):
            log.error("the state is unavailable: %s", "busy")
            now[0] += 0.001
        now[0] = 106.0
        log.error("the state is unavailable: %s", "busy")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["the state is unavailable: busy",
                     "the state is unavailable: busy (and 999 more like it in the last 6 s)"]

"""Hypothesis over the files users hand ctwa (fixtures, payloads, params, sandbox configs,
documents to lint, templates, CSV files): whatever the content, ctwa ends with exit 0, 1 or 2,
in bounded time and memory (Python allocations traced), never exit 70 or a traceback."""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, Runner

scalars = (st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
           | st.floats(allow_nan=True) | st.text(max_size=10))
keys = st.sampled_from([
    "events", "status", "inbound", "raw", "messages", "msgId", "after", "error", "code", "to",
    "vars", "defaults", "from", "text", "statuses", "failure_rate", "failure_code", "seed",
    "name", "port", "latency", "fail", "reply-rate", "header_media", "buttons", "cards",
    "coupon", "location", "props", "components", "language", "type", "d", "profileData",
]) | st.text(max_size=4)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(keys, inner, max_size=5), max_leaves=20)
WHICH = ("fixture", "payload", "params", "sandbox", "lint", "templates")
#: Peak Python memory one small hostile file may make ctwa allocate.
MEMORY_BUDGET = 64 * 1024 * 1024


def bounded(run: Callable[[], Any]) -> Any:
    """Run, asserting it took under 10 s and under MEMORY_BUDGET of traced allocations."""
    started = time.monotonic()
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < MEMORY_BUDGET, f"{peak / 1e6:.0f} MB"
    return result


@settings(max_examples=150, deadline=None, derandomize=True,  # the same cases in every CI run
          suppress_health_check=list(HealthCheck))
@given(doc=documents, which=st.sampled_from(WHICH))
@example(doc={"statuses": True}, which="fixture")  # found by this test: exit 70 once
def test_any_user_file_ends_in_0_1_or_2(tmp_path_factory, doc, which) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.yaml"
    wrapped = {"events": doc} if which == "fixture" and not isinstance(doc, dict) else doc
    path.write_text(yaml.safe_dump(wrapped))
    with socket.socket() as busy:  # a sandbox whose config is valid stops at the busy port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        argv = {
            "fixture": ("callback", "replay", str(path), "--dry-run"),
            "payload": ("send-template", "--payload", str(path), "--to", "919000000001",
                        "--dry-run"),
            "params": ("send-template", "--template-file", str(EXAMPLES / "templates" /
                                                              "lto.json"),
                       "--params", str(path), "--to", "919000000001", "--waba",
                       "919000000002", "--dry-run"),
            "sandbox": ("sandbox", "--config", str(path), "--port", port),
            "lint": ("lint", str(path)),
            "templates": ("templates", "lint", str(path)),
        }[which]
        result = bounded(lambda: Runner()(*argv))
    assert result.exit_code in (0, 1, 2), (which, doc, result.exit_code, result.stderr[-500:])
    assert "Traceback" not in result.stderr


csv_text = st.text(alphabet=st.sampled_from(list('ab1+,;"\n\r\t é\x00\ufeff')), max_size=300)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(head=st.sampled_from(["identity,Phone,Email\n", "objectId;phone\n", "", "Phone,x\n"]),
       body=csv_text, workers=st.sampled_from(["1", "2"]))
def test_any_csv_ends_in_0_1_or_2(tmp_path_factory, head, body, workers) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "users.csv"
    path.write_text(head + body, encoding="utf-8", newline="")
    result = bounded(lambda: Runner()("upload-users", str(path), "--dry-run", "--workers",
                                      workers))
    assert result.exit_code in (0, 1, 2), (head + body, result.exit_code, result.stderr[-500:])
    assert "Traceback" not in result.stderr

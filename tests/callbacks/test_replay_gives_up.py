"""``callback replay`` stops after a bounded number of requests in a row reach nobody (issue
25.15): a listener that dies mid-replay no longer has every remaining event sent at it, one
failure each, for tens of seconds."""

from __future__ import annotations

import json
import threading
import time

from ctwa.callbacks import replay
from ctwa.callbacks.listener import Listener
from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port
from ctwa.infra.threadserver import ThreadServer

GIVE_UP_AFTER = getattr(replay, "GIVE_UP_AFTER", 10)


def test_replay_stops_once_the_listener_is_gone_with_the_summary(cli, tmp_path) -> None:
    fixture = tmp_path / "volume.yaml"
    fixture.write_text("events:\n  - messages: 400\n    statuses: [sent]\n")
    received: list = []
    port = free_port()
    server = ThreadServer(Listener(on_receive=received.append).app(), "127.0.0.1", port)
    server.start()

    def stop_after_some() -> None:  # the listener dies a little way into the replay
        deadline = time.monotonic() + 60
        while len(received) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()

    killer = threading.Thread(target=stop_after_some, daemon=True)
    killer.start()
    try:
        result = cli("--json", "callback", "replay", str(fixture), "--no-delay",
                     "--status-url", f"http://127.0.0.1:{port}/status", "--timeout", "2s")
    finally:
        killer.join(10)
        server.stop()
    document = json.loads(result.stdout)
    assert result.exit_code in (ExitCode.FAILED, ExitCode.UNREACHABLE), result.stderr
    assert f"stopped after {GIVE_UP_AFTER} requests in a row reached nobody" in result.stderr
    assert document["sent"] < 400 and document["failed"] >= GIVE_UP_AFTER
    unreachable = [a for a in document["answers"] if a["status"] is None]
    assert len(unreachable) <= GIVE_UP_AFTER + 1

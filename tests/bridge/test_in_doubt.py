"""The crash rule end to end, in front of the sandbox's Meta: a send in flight when the bridge
stopped is never resent; Meta's status naming its msgId (``biz_opaque_callback_data``) makes
it sent, with its statuses forwarded; no status within ``in_doubt_window`` fails it with 1009;
a status after that failure is recorded and counted, not forwarded.

Meta's answer to every send hangs (the sandbox's ``hang`` fault: it took the message, the
answer comes later), so the first bridge is stopped while the send is in flight, as a kill
would leave it: the state still holds it in flight under a replica that no longer
heartbeats. Meta's webhooks go to the port of a later bridge, so they arrive only after the
restart (the sandbox retries them meanwhile, as Meta does)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctwa.bridge import service
from ctwa.bridge.config import BridgeSecrets, BridgeSettings
from ctwa.bridge.run import BridgeThread
from ctwa.infra.ports import free_port
from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, Sandbox, SandboxSettings
from tests.bridge.conftest import PASSWORD, VERIFY, FakeCleverTap, wait_until
from tests.conftest import LiveServer

MSG_ID = "1|999|20260101|7"
TO = "919000077771"


@dataclass
class World:
    box: Sandbox
    clevertap: FakeCleverTap
    state: Path
    ports: list[int]

    def bridge(self, n: int, **overrides: Any) -> BridgeThread:
        """The ``n``-th bridge run on the same state (its own port and replica name)."""
        creds = self.box.credentials()
        settings = BridgeSettings(
            phone_number_id=creds["meta_phone_number_id"], waba_id=creds["meta_waba_id"],
            status_url=f"{self.clevertap.url}/status",
            inbound_url=f"{self.clevertap.url}/inbound", username="clevertap",
            listen=f"127.0.0.1:{self.ports[n]}", graph_url=self.box.urls()["meta_graph"],
            state=str(self.state), mps=50.0, callback_max_backoff=0.5, unmapped_wait=1.0,
            meta_timeout=30.0, replica=f"run-{n}")
        for key, value in overrides.items():
            setattr(settings, key, value)
        secrets = BridgeSecrets(PASSWORD, creds["meta_token"], creds["meta_app_secret"],
                                VERIFY)
        return BridgeThread(settings, secrets)

    def crash_while_sending(self) -> None:
        """Bridge 0 takes the message, sends it to Meta, and stops before Meta answers."""
        with self.bridge(0) as first, httpx.Client(timeout=10) as client:
            answer = client.post(f"{first.url}/messages", auth=("clevertap", PASSWORD), json={
                "payloadVersion": 0.1, "to": TO, "wabaNumber": "919999999998",
                "msgId": MSG_ID, "isTemplate": False, "type": "text",
                "text": {"body": "in flight at the crash"}})
            assert answer.json() == {"status": "success"}
            wait_until(lambda: self.box.meta.state.sends_by_key.get(MSG_ID), what="Meta's send")

    def statuses(self) -> list[str]:
        return [s for m, s in self.clevertap.statuses() if m == MSG_ID]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          request: pytest.FixtureRequest) -> Iterator[World]:
    # short leases: the dead run's claim runs out in about a second, not 15
    monkeypatch.setattr(service, "LEASE", 1.0)
    monkeypatch.setattr(service, "HEARTBEAT", 0.25)
    ports = [free_port() for _ in range(3)]
    webhook_port = ports[getattr(request, "param", 1)]
    meta = MetaSettings(webhook_url=f"http://127.0.0.1:{webhook_port}/webhook", mps=0,
                        faults={"hang": 1.0}, hang_seconds=3.0,
                        status_delays=(0.05, 0.1, 0.15), read=True,
                        webhook_retry_base=0.2, webhook_retry_max=0.5)
    clevertap = FakeCleverTap()
    with LiveServer(clevertap.app()) as ct, \
            RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
        clevertap.url = ct.url
        yield World(box, clevertap, tmp_path / "bridge.sqlite3", ports)
        assert box.meta.state.duplicates() == {}, "a message was sent to Meta twice"


def metric(bridge: BridgeThread, name: str) -> float:
    samples = [s.value for m in bridge.bridge.metrics.registry.collect() for s in m.samples
               if s.name == name]
    return sum(samples)


def accepted(bridge: BridgeThread) -> Any:
    import asyncio

    future = asyncio.run_coroutine_threadsafe(bridge.bridge.state.accepted(MSG_ID),
                                              bridge.loop)
    return future.result(10)


def test_a_send_in_flight_at_a_crash_is_settled_by_metas_later_status(world: World) -> None:
    world.crash_while_sending()
    with world.bridge(1, in_doubt_window=60.0) as second:
        wait_until(lambda: world.statuses() == ["sent", "delivered", "read"], timeout=20,
                   what="the statuses of the send in doubt")
        send = accepted(second)
        assert send.state == "sent" and send.wamid in world.box.meta.state.sent
        assert metric(second, "ctwa_bridge_in_doubt_settled_total") == 1
        assert metric(second, "ctwa_bridge_sends_total") == 0  # nothing resent
    assert "failed" not in world.statuses()
    assert world.box.meta.state.requests_by_key[MSG_ID] == 1


@pytest.mark.parametrize("world", [2], indirect=True)  # Meta's webhooks reach no bridge yet
def test_no_status_within_the_window_fails_it_with_1009_naming_the_crash(
        world: World) -> None:
    world.crash_while_sending()
    with world.bridge(1, in_doubt_window=1.0) as second:
        wait_until(lambda: world.statuses() == ["failed"], timeout=20, what="the failed DLR")
        send = accepted(second)
        assert send.state == "failed" and send.code == 1009 and send.wamid is None
    entry = next(s for route, body in world.clevertap.received if route == "status"
                 for s in body["statuses"])
    assert entry["error"]["code"] == 1009
    title = entry["error"]["title"]
    assert "run-0 stopped while sending" in title and "within 1 s" in title
    assert "never sent twice" in title
    # Meta's statuses come later, to the next bridge: recorded and counted, not forwarded
    with world.bridge(2, in_doubt_window=1.0) as third:
        wait_until(lambda: metric(third, "ctwa_bridge_late_statuses_total") >= 3, timeout=20,
                   what="Meta's late statuses")
        send = accepted(third)
        assert send.state == "failed" and send.wamid in world.box.meta.state.sent
        assert metric(third, "ctwa_bridge_sends_total") == 0
    assert world.statuses() == ["failed"]
    assert world.box.meta.state.requests_by_key[MSG_ID] == 1


def test_with_no_status_ever_the_window_fails_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "LEASE", 1.0)
    monkeypatch.setattr(service, "HEARTBEAT", 0.25)
    meta = MetaSettings(webhook_url=None, mps=0, faults={"hang": 1.0}, hang_seconds=3.0)
    clevertap = FakeCleverTap()
    with LiveServer(clevertap.app()) as ct, \
            RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
        clevertap.url = ct.url
        world = World(box, clevertap, tmp_path / "bridge.sqlite3",
                      [free_port() for _ in range(2)])
        world.crash_while_sending()
        with world.bridge(1, in_doubt_window=0.5):
            wait_until(lambda: world.statuses() == ["failed"], timeout=20,
                       what="the failed DLR")
        assert box.meta.state.requests_by_key[MSG_ID] == 1


def test_in_doubt_window_is_a_duration_setting_with_units(tmp_path: Path) -> None:
    from ctwa.bridge.config import load_config
    from ctwa.infra.errors import InputError

    assert BridgeSettings().in_doubt_window == 120.0  # the README's 2m
    config = tmp_path / "bridge.yaml"
    config.write_text("in_doubt_window: 5m\n")
    assert load_config(config, {}).in_doubt_window == 300.0
    config.write_text("in_doubt_window: 300\n")
    with pytest.raises(InputError, match=r"in_doubt_window.*no unit"):
        load_config(config, {})


def test_bridge_status_shows_sends_in_doubt(cli: Any, tmp_path: Path) -> None:
    import asyncio
    import json

    from ctwa.bridge.state import open_state

    state_path = tmp_path / "b.sqlite3"

    async def crash() -> None:
        state = await open_state(str(state_path))
        await state.migrate()
        await state.enqueue_send("m1", "freeform", {})
        (item,) = await state.claim_sends("gone", 5, 0.2)
        await state.mark_in_flight(item.id)
        await asyncio.sleep(0.4)
        assert await state.claim_sends("alive", 5, 30) == []  # the crash rule: in doubt
        await state.close()

    asyncio.run(crash())
    shown = cli("--json", "bridge", "status", "--state", str(state_path))
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["depths"]["sends_in_doubt"] == 1
    human = cli("bridge", "status", "--state", str(state_path))
    assert "1 in doubt (in flight at a crash, waiting for Meta's status)" in human.stdout

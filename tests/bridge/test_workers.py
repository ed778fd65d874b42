"""``ctwa bridge --workers-process``: the accept path in the listening process, the sender,
webhook processor, callback deliverer and template sync in a second one (bridge/workers.py).
Both start and stop together, either can be killed with SIGKILL and nothing accepted is lost,
and /health, /metrics and the summary speak for both."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctwa.bridge.run import BridgeThread, summary_of
from ctwa.bridge.webhooks import sign
from ctwa.infra.ports import free_port
from tests.bridge.conftest import (
    APP_SECRET,
    PASSWORD,
    SECRETS,
    FakeCleverTap,
    FakeMeta,
    example_templates,
    settings_for,
    wait_until,
)
from tests.conftest import LiveServer


def text_payload(n: int) -> dict[str, Any]:
    return {"payloadVersion": 0.1, "to": f"9190000{n:05d}", "wabaNumber": "919999999998",
            "msgId": f"1|777|20260101|{n}", "isTemplate": False, "type": "text",
            "text": {"body": f"message {n}"}}


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_the_metrics_and_the_summary_add_the_workers_counts() -> None:
    from ctwa.bridge.metrics import Metrics
    from ctwa.bridge.workers import MergedMetrics, metric_samples

    theirs = Metrics()
    theirs.sends.inc(7)
    theirs.send_outcomes.labels("sent").inc(6)
    theirs.send_outcomes.labels("failed").inc(1)
    theirs.callbacks.labels("status").inc(12)
    theirs.callback_lag.observe(0.07)
    theirs.accepted.labels("text").inc(1)  # counted on both sides: added
    theirs.outbox.labels("sends").set(99)  # a gauge: the serving side's own value stays
    front = MergedMetrics()
    front.accepted.labels("text").inc(7)
    front.outbox.labels("sends").set(3)
    front.theirs = json.loads(json.dumps(metric_samples(theirs)))  # as it crosses the pipe
    text = front.render().decode()
    assert "ctwa_bridge_sends_total 7.0" in text
    assert 'ctwa_bridge_send_outcomes_total{outcome="sent"} 6.0' in text
    assert 'ctwa_bridge_messages_accepted_total{kind="text"} 8.0' in text
    assert 'ctwa_bridge_outbox_depth{queue="sends"} 3.0' in text
    assert 'ctwa_bridge_callback_lag_seconds_bucket{le="0.1"} 1.0' in text
    assert "ctwa_bridge_callback_lag_seconds_count 1.0" in text

    # a workers process that died: its counts stay; the next one counts from zero
    front.retire()
    again = Metrics()
    again.sends.inc(3)
    front.theirs = metric_samples(again)
    assert "ctwa_bridge_sends_total 10.0" in front.render().decode()

    class Running:
        metrics = front

    summary = summary_of(Running(), time.monotonic())
    assert (summary.accepted, summary.sent, summary.failed, summary.callbacks) == (8, 6, 1, 12)


def test_both_processes_work_and_a_killed_workers_process_comes_back(tmp_path: Path) -> None:
    meta = FakeMeta(templates=example_templates())
    clevertap = FakeCleverTap()
    with LiveServer(meta.app()) as meta_server, LiveServer(clevertap.app()) as ct_server:
        meta.url, clevertap.url = meta_server.url, ct_server.url
        # a free port asked for (:0): both processes use the one it listens on
        settings = settings_for(meta, clevertap, tmp_path / "bridge.sqlite3")
        with BridgeThread(settings, SECRETS, workers_process=True) as running, \
                httpx.Client(timeout=10) as client:
            url = running.url
            assert settings.listen == f"127.0.0.1:{running.address[1]}" != "127.0.0.1:0"
            health = client.get(f"{url}/health").json()
            workers = health["workers"]
            assert workers["ok"] and workers["process"] == "separate"
            first = workers["pid"]
            assert first != os.getpid() and alive(first)
            # the template sync ran there, and the accept side knows
            wait_until(lambda: running.bridge.last_sync, what="the template sync")
            assert client.get(f"{url}/health").json()["ready"]

            answer = client.post(f"{url}/messages", json=text_payload(1),
                                 auth=("clevertap", PASSWORD))
            assert answer.json() == {"status": "success"}
            wait_until(lambda: meta.requests, what="the send to Meta")  # woken at once
            assert meta.requests[0]["text"]["body"] == "message 1"
            body = meta.webhook(statuses=[{"id": "wamid.T1", "status": "delivered",
                                           "timestamp": "1700000000",
                                           "recipient_id": "919000000001"}])
            hook = client.post(f"{url}/webhook", content=body, headers={
                "X-Hub-Signature-256": sign(APP_SECRET, body),
                "Content-Type": "application/json"})
            assert hook.status_code == 200
            wait_until(lambda: {s for _, doc in clevertap.received
                                for s in (e["status"] for e in doc.get("statuses", []))}
                       >= {"delivered"}, what="the DLR to CleverTap")

            def metric(text: str, name: str) -> float:
                return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith(name))

            def counted() -> bool:
                text = client.get(f"{url}/metrics").text
                return (metric(text, "ctwa_bridge_sends_total") == 1
                        and metric(text, "ctwa_bridge_callbacks_delivered_total") >= 1
                        and metric(text, "ctwa_bridge_messages_accepted_total") == 1)

            wait_until(counted, what="the workers' counts in /metrics")

            # an inbound image: the workers make its media link on the port really listened on
            inbound = meta.webhook(messages=[{
                "from": "919000000001", "id": "wamid.in1", "timestamp": "1700000000",
                "type": "image", "image": {"id": "MEDIA1", "mime_type": "image/jpeg"}}])
            assert client.post(f"{url}/webhook", content=inbound, headers={
                "X-Hub-Signature-256": sign(APP_SECRET, inbound),
                "Content-Type": "application/json"}).status_code == 200
            link = wait_until(lambda: next((json.dumps(doc) for route, doc in clevertap.received
                                            if route == "inbound"), None),
                              what="the inbound callback")
            assert f"{url}/media/MEDIA1" in link, link

            # SIGKILL the workers: the accept side starts them again, and goes on
            os.kill(first, signal.SIGKILL)

            def restarted() -> dict[str, Any] | None:
                found = client.get(f"{url}/health").json()["workers"]
                return found if found["restarts"] == 1 and found["ok"] else None

            again = wait_until(restarted, timeout=20, what="the workers to come back")
            assert again["pid"] != first and alive(again["pid"])
            answer = client.post(f"{url}/messages", json=text_payload(2),
                                 auth=("clevertap", PASSWORD))
            assert answer.json() == {"status": "success"}
            wait_until(lambda: len(meta.requests) == 2, what="the send after the restart")
            # the killed process's counts are kept, the new one's added
            wait_until(lambda: metric(client.get(f"{url}/metrics").text,
                                      "ctwa_bridge_sends_total") == 2,
                       what="both processes' sends in /metrics")
            second = again["pid"]
        assert not alive(second), "the workers process outlived the bridge"


def start(port: int, box: Any, status_url: str, inbound_url: str, state: Path,
          log: Path) -> subprocess.Popen[bytes]:
    import dataclasses

    from ctwa.bridge.config import BridgeSettings

    extra: list[str] = []
    if "in_doubt_window" in {f.name for f in dataclasses.fields(BridgeSettings)}:
        # a send in flight at the kill waits this long for Meta's status before it is failed
        config = state.parent / "bridge.yaml"
        config.write_text("in_doubt_window: 20s\n")
        extra = ["--config", str(config)]
    creds = box.credentials()
    env = {**os.environ, "CTWA_BRIDGE_PASSWORD": PASSWORD,
           "CTWA_META_TOKEN": creds["meta_token"],
           "CTWA_META_APP_SECRET": creds["meta_app_secret"], "CTWA_META_VERIFY_TOKEN": "v"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ctwa", "bridge", "--workers-process",
         "--listen", f"127.0.0.1:{port}", "--graph-url", box.urls()["meta_graph"],
         "--phone-number-id", creds["meta_phone_number_id"], "--waba-id",
         creds["meta_waba_id"], "--status-url", status_url, "--inbound-url", inbound_url,
         "--username", "clevertap", "--state", str(state), "--mps", "1000", *extra],
        env=env, stdout=subprocess.PIPE, stderr=log.open("ab"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the bridge did not become ready: {log.read_text()[-2000:]}")


@pytest.mark.parametrize("victim", ["workers", "accept"])
def test_sigkill_of_either_process_mid_run_loses_nothing(tmp_path: Path, victim: str) -> None:
    """1,000 messages through a real ``ctwa bridge --workers-process`` in front of the
    sandbox's Meta; half way, SIGKILL of the workers process (the accept side starts them
    again) or of the listening one (its workers stop by themselves; the bridge is started
    again): every accepted message ends sent once or failed, and CleverTap got its DLRs."""
    from ctwa.callbacks.listener import Listener
    from ctwa.sandbox.meta import MetaSettings
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings

    received: list[Any] = []
    listener = Listener(on_receive=received.append)
    port = free_port()
    meta = MetaSettings(webhook_url=f"http://127.0.0.1:{port}/webhook", mps=0,
                        status_delays=(0.01, 0.02, 0.03), read=False)
    state, log = tmp_path / "b.sqlite3", tmp_path / "bridge.log"
    total = 1000
    with LiveServer(listener.app()) as ct, \
            RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
        urls = (f"{ct.url}/status", f"{ct.url}/inbound")
        bridge = start(port, box, *urls, state, log)
        workers = children(bridge.pid)
        assert len(workers) == 1 and alive(workers[0])
        accepted: list[str] = []
        unanswered: list[str] = []

        async def run() -> None:
            from ctwa.http import Auth, load_headers
            from ctwa.http.raw import HttpError, Pool

            headers = load_headers(Auth("basic", "clevertap", PASSWORD), None)
            pool = Pool(f"http://127.0.0.1:{port}/messages", headers, size=100, timeout=5)
            gate = asyncio.Semaphore(100)
            killed = False

            async def one(payload: dict[str, Any]) -> None:
                nonlocal killed
                async with gate:
                    try:
                        status, body = await pool.post(json.dumps(payload).encode())
                    except HttpError:
                        unanswered.append(payload["msgId"])
                        return
                    if status == 200 and json.loads(body) == {"status": "success"}:
                        accepted.append(payload["msgId"])
                    if len(accepted) >= total // 2 and not killed:
                        killed = True
                        os.kill(workers[0] if victim == "workers" else bridge.pid,
                                signal.SIGKILL)

            try:
                await asyncio.gather(*(one(text_payload(n)) for n in range(total)))
            finally:
                pool.close()

        asyncio.run(run())
        if victim == "accept":
            bridge.wait(10)
            wait_until(lambda: not alive(workers[0]), timeout=10,
                       what="the orphaned workers process to stop")
            bridge = start(port, box, *urls, state, log)
        try:
            def seen() -> dict[str, set[str]]:
                out: dict[str, set[str]] = {}
                for item in list(received):
                    if item.ok and item.kind == "status":
                        for entry in item.result.value.statuses:
                            out.setdefault(entry.msgId, set()).add(entry.status)
                return out

            def ended() -> bool:
                outcomes = seen()
                return all({"delivered", "failed"} & outcomes.get(m, set()) for m in accepted)

            try:
                wait_until(ended, timeout=60, what="every accepted message to end")
            except AssertionError:
                outcomes = seen()
                missing = [(m, outcomes.get(m)) for m in accepted
                           if not {"delivered", "failed"} & outcomes.get(m, set())]
                raise AssertionError((len(missing), missing[:5],
                                      log.read_text()[-3000:])) from None
            if victim == "workers":
                assert "the workers process exited (killed by SIGKILL)" in log.read_text()
            now = children(bridge.pid)
            bridge.send_signal(signal.SIGTERM)
            out, _ = bridge.communicate(timeout=30)
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait(5)
        sends = dict(box.meta.state.sends_by_key)
        duplicates = box.meta.state.duplicates()
    assert bridge.returncode == 0, log.read_text()[-2000:]
    assert now and not any(alive(pid) for pid in now), "SIGTERM left the workers running"
    text = log.read_text()
    assert text.count("stopped after") == 1 and "Traceback" not in text, text[-2000:]
    outcomes = seen()
    assert duplicates == {}, "a message was sent to Meta twice"
    failed = [m for m in accepted if "failed" in outcomes[m]]
    sent = [m for m in accepted if m in sends]
    assert set(sent) | set(failed) == set(accepted)
    assert set(sends) <= set(accepted) | set(unanswered)
    assert out == b""  # results on stdout only with --json; the summary is on stderr


def test_ctrl_c_to_the_terminal_group_stops_both_with_one_summary(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches both processes: the workers ignore it and stop when the
    listening one tells them; one summary, exit 0, no traceback."""
    from tests.bridge.test_cli import OPTIONS
    from tests.bridge.test_cli import SECRETS as ENV

    log = tmp_path / "bridge.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ctwa", "bridge", *OPTIONS, "--workers-process",
         "--graph-url", "http://127.0.0.1:9", "--listen", f"127.0.0.1:{free_port()}",
         "--state", str(tmp_path / "b.sqlite3")], env={**os.environ, **ENV},
        stdout=subprocess.PIPE, stderr=log.open("wb"), start_new_session=True)
    try:
        wait_until(lambda: "Meta webhook" in log.read_text() or process.poll() is not None,
                   timeout=30, what="the banner")
        workers = children(process.pid)
        assert process.poll() is None and len(workers) == 1, log.read_text()
        os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    text = log.read_text()
    assert process.returncode == 0, text
    assert text.count("stopped after") == 1 and "Traceback" not in text, text
    assert not alive(workers[0])


def test_the_option_is_in_the_help_and_the_readme(cli) -> None:
    shown = " ".join(cli("bridge", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--workers-process" in shown and "--one-process" in shown
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
    assert "`ctwa bridge --workers-process`" in readme and "`--one-process`" in readme


def test_workers_that_cannot_start_are_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    from ctwa.bridge import workers
    from ctwa.bridge.state import StateError

    monkeypatch.setattr(workers, "workers_command",
                        lambda fd: [sys.executable, "-c", "import sys; sys.exit(3)"])
    meta, clevertap = FakeMeta(), FakeCleverTap()
    settings = settings_for(meta, clevertap, tmp_path / "bridge.sqlite3",
                            listen=f"127.0.0.1:{free_port()}")
    running = BridgeThread(settings, SECRETS, workers_process=True)
    with pytest.raises(StateError) as failed:
        running.__enter__()
    running.__exit__()
    assert "workers process failed: it exited (exit code 3) before it was ready" in \
        str(failed.value)
    assert "--workers-process" in str(failed.value)  # how to go on without it

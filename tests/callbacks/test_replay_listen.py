"""Replay into the real listener; listener checks, stats, recording, forwarding."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from ctwa.callbacks.fixtures import load_fixture
from ctwa.callbacks.listener import Listener, Recorder
from ctwa.callbacks.replay import Replayer
from ctwa.http import make_client
from ctwa.infra.errors import ExitCode
from tests.conftest import EXAMPLES, SPEC_SAMPLES, LiveServer


def stats(listen) -> dict:
    return httpx.get(f"{listen.url}/stats").json()


def test_replay_lifecycle_into_the_listener(cli, listener) -> None:
    result = cli("callback", "replay", str(EXAMPLES / "callbacks" / "lifecycle.yaml"),
                 "--status-url", f"{listener.url}/status", "--inbound-url",
                 f"{listener.url}/inbound", "--no-delay")
    assert result.exit_code == 0, result.stderr
    assert "-> status sent" in result.stderr and "<- 200" in result.stderr
    tallies = stats(listener)
    assert (tallies["sent"], tallies["delivered"], tallies["read"], tallies["clicked"],
            tallies["replies"]) == (1, 1, 1, 1, 1)
    assert tallies["invalid"] == 0 and tallies["anomaly_count"] == 0


def test_volume_under_concurrency_keeps_each_messages_order(cli, listener) -> None:
    result = cli("--json", "callback", "replay", str(EXAMPLES / "callbacks" / "volume.yaml"),
                 "--status-url", f"{listener.url}/status", "--inbound-url",
                 f"{listener.url}/inbound", "--concurrency", "8", "--group", "5")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["failed"] == 0 and data["sent"] < 3000  # grouped
    tallies = stats(listener)
    assert tallies["messages"] == 1000 and tallies["anomaly_count"] == 0
    assert tallies["sent"] == 1000 and sum(tallies["failed"].values()) == tallies["sent"] - \
        tallies["delivered"]


def test_every_spec_callback_sample_and_variant(listener) -> None:
    for path in sorted(SPEC_SAMPLES.glob("status-*.json")) + sorted(
            SPEC_SAMPLES.glob("inbound-*.json")):
        target = path.name.split("-")[0]
        answer = httpx.post(f"{listener.url}/{target}", content=path.read_bytes())
        assert answer.status_code == 200, path
        assert answer.json()["status"] == "accepted"
    tallies = stats(listener)
    # 3 published variants, and the failure sample (1004 titled "Invalid phone number.", ERRATA 19)
    assert tallies["invalid"] == 0 and tallies["with_variants"] == 4
    errata = {p["errata"] for r in listener.received for p in
              [q.as_dict() for q in r.result.problems] if "errata" in p}
    assert errata == {2, 11, 12, 19}


def test_detection_on_root_path_and_strict_mode(tmp_path) -> None:
    strict = Listener(strict=True)
    with LiveServer(strict.app()) as server:
        good = json.loads((SPEC_SAMPLES / "inbound-document.json").read_text())
        assert httpx.post(server.url + "/", json=good).status_code == 200
        bad = {"payloadVersion": "0.1", "statuses": [{"msgId": "x", "status": "seen"}]}
        answer = httpx.post(server.url + "/status", json=bad)
        assert answer.status_code == 400
        assert any(p["path"].startswith("$.statuses[0]") for p in answer.json()["problems"])
        assert httpx.post(server.url + "/", json={"hello": 1}).status_code == 400
        assert httpx.post(server.url + "/status", content=b"{nope").status_code == 400
        huge = b'{"x": "' + b"a" * (1 << 20) + b'"}'
        assert httpx.post(server.url + "/status", content=huge).status_code == 413
    assert strict.stats.invalid == 4


def test_lenient_mode_answers_200_but_reports(listener) -> None:
    answer = httpx.post(f"{listener.url}/status", json={"statuses": []})
    assert answer.status_code == 200 and answer.json()["problems"]
    assert stats(listener)["invalid"] == 1


def test_impossible_orders_are_flagged(listener) -> None:
    def post(status: str, msg: str = "1|2|3|4", **extra) -> None:
        entry = {"msgId": msg, "status": status, "timestamp": "1647441774", **extra}
        httpx.post(f"{listener.url}/status", json={"payloadVersion": "0.1",
                                                   "statuses": [entry]})

    post("read")
    post("sent", "9|9|9|9")
    post("failed", "9|9|9|9", error={"code": 1002, "title": "Invalid phone number"})
    post("delivered", "9|9|9|9")
    tallies = stats(listener)
    assert tallies["anomalies"] == ["1|2|3|4: read before sent",
                                    "9|9|9|9: delivered after the message failed"]
    assert tallies["failed"] == {"1002": 1}


def test_record_then_replay_gives_the_same_stream(tmp_path) -> None:
    recording = tmp_path / "recorded.yaml"
    first = Listener(recorder=Recorder(recording))
    with LiveServer(first.app()) as server:
        events = load_fixture(EXAMPLES / "callbacks" / "inbound.yaml").events
        with make_client() as client:
            Replayer(client, f"{server.url}/status", f"{server.url}/inbound",
                     delays=False).run(events)
    first.recorder.close()
    second_bodies: list = []
    second = Listener(on_receive=lambda r: second_bodies.append(r))
    with LiveServer(second.app()) as server, make_client() as client:
        replayed = load_fixture(recording).events
        answers = Replayer(client, f"{server.url}/status", f"{server.url}/inbound",
                           delays=False).run(replayed)
    assert [a.planned.body for a in answers] == [e.body for e in events]
    assert second.stats.tallies()["inbound"] == first.stats.tallies()["inbound"]


def test_forwarding_relays_valid_callbacks(tmp_path) -> None:
    upstream = Listener()
    with LiveServer(upstream.app()) as up:
        relay = Listener()

        async def forward(target: str, body: bytes) -> str:
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{up.url}/{target}", content=body)
            return f"forwarded: HTTP {answer.status_code}"

        relay.forward = forward
        with LiveServer(relay.app()) as server:
            body = (SPEC_SAMPLES / "status-delivered-sample.json").read_bytes()
            httpx.post(f"{server.url}/status", content=body)
            httpx.post(f"{server.url}/status", json={"statuses": "broken"})
    assert upstream.stats.valid == 1 and upstream.stats.callbacks == 1


def test_replay_exit_codes(cli, tmp_path) -> None:
    fixture = tmp_path / "f.yaml"
    fixture.write_text("events:\n  - {status: sent, msgId: '1|2|3|4'}\n")
    strict = Listener(strict=True)
    with LiveServer(strict.app()) as server:
        ok = cli("callback", "replay", str(fixture), "--status-url", server.url + "/status")
        assert ok.exit_code == 0
        wrong = cli("callback", "replay", str(fixture), "--status-url", server.url + "/nope")
        assert wrong.exit_code == ExitCode.FAILED and "404" in wrong.stderr
    gone = cli("callback", "replay", str(fixture), "--status-url", "http://127.0.0.1:9/status")
    assert gone.exit_code == ExitCode.UNREACHABLE
    missing = cli("callback", "replay", str(fixture))
    assert missing.exit_code == ExitCode.USAGE and "--status-url" in missing.stderr


def test_invalid_fixture_sends_nothing(cli, tmp_path) -> None:
    fixture = tmp_path / "f.yaml"
    fixture.write_text("events:\n  - raw: {statuses: [{msgId: x, status: Sent}]}\n")
    result = cli("callback", "replay", str(fixture), "--status-url", "http://127.0.0.1:9/x")
    assert result.exit_code == ExitCode.USAGE and "f.yaml:2" in result.stderr


def test_listen_command_runs_forwards_and_prints_stats(tmp_path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    record = tmp_path / "rec.yaml"
    upstream = Listener()
    with LiveServer(upstream.app()) as up:
        proc = subprocess.Popen([sys.executable, "-m", "ctwa", "--json", "callback", "listen",
                                 "--port", str(port), "--record", str(record),
                                 "--forward-to", f"{up.url}/status"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            once_up(lambda: httpx.post(f"http://127.0.0.1:{port}/status",
                                       content=(SPEC_SAMPLES / "status-sent.json").read_bytes()))
        finally:
            proc.send_signal(2)
            out, err = proc.communicate(timeout=20)
    assert json.loads(out)["sent"] == 1
    assert json.loads(out)["store"]["written"] == 1  # kept in the store by default
    from ctwa.store.db import Store

    with Store() as store:
        kept = store.callbacks_for("25596363|1639561857|20220227|25596363")
    assert [(r["status"], r["valid"], r["route"]) for r in kept] == [("sent", 1, "/status")]
    assert "ok       sent 25596363|1639561857|20220227|25596363" in err
    assert "forwarded: HTTP 200" in err
    assert upstream.stats.valid == 1
    assert load_fixture(record).events[0].target == "status"


def test_ctrl_c_during_replay_prints_the_counts(listener, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    fixture = tmp_path / "slow.yaml"
    fixture.write_text("events:\n" + "".join(
        f"  - status: sent\n    msgId: 'i|1|2|{n}|0'\n    after: 1s\n" for n in range(30)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctwa", "callback", "replay", str(fixture), "--status-url",
         f"{listener.url}/status", "--inbound-url", f"{listener.url}/inbound"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"})
    time.sleep(3.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "answered 2xx, 0 not, interrupted (the fixtures hold 30 event(s))" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("body", [b"[" * 200_000 + b"]" * 200_000,
                                  b'{"statuses": [{"code": ' + b"9" * 5000 + b'}]}',
                                  b'{"a":'])
def test_hostile_bodies_are_400_and_counted(listener, body) -> None:
    answer = httpx.post(f"{listener.url}/status", content=body, timeout=10)
    assert answer.status_code == 400 and "not JSON" in answer.json()["error"]
    tallies = stats(listener)
    assert tallies["invalid"] == 1 and tallies["callbacks"] == 1


TRICKY = "Reply {{ env.CTWA_PASSCODE }} {{ now }} \uffff \x85 \x01\x1f tab\t end 🎉 \u202e"


def test_recordings_replay_literally_byte_for_byte(tmp_path, monkeypatch) -> None:
    """A user's text that looks like template syntax is never expanded (the secret is never
    sent), and every character survives the round trip; the file is private (0600)."""
    monkeypatch.setenv("CTWA_PASSCODE", "pc-CANARY-55e0")
    recording = tmp_path / "seen.yaml"
    recorder = Recorder(recording)
    body = {"payloadVersion": "0.1", "from": "919000000001", "wabaNumber": "919000000000",
            "timestamp": "1700000000", "type": "text", "context": {"id": "i|1|2|3|0"},
            "text": {"body": TRICKY}}
    recorder.add("inbound", body)
    recorder.close()
    assert recording.stat().st_mode & 0o777 == 0o600
    (event,) = load_fixture(recording).events
    assert event.body == body and "pc-CANARY-55e0" not in json.dumps(event.body)


def test_private_files_are_0600(tmp_path) -> None:
    from ctwa.upload.journal import Journal, RejectsFile

    journal = Journal(tmp_path / "j.jsonl")
    journal.start({"file": "x"}, resume=False)
    journal.close()
    rejects = RejectsFile(tmp_path / "r.csv", ["identity", "Phone"])
    rejects.open(resume=False)
    rejects.close()
    for path in (tmp_path / "j.jsonl", tmp_path / "r.csv"):
        assert path.stat().st_mode & 0o777 == 0o600


def test_yaml_alias_bombs_are_refused_at_once(cli, tmp_path) -> None:
    import time

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefghi", "bcdefghij", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    fixture = tmp_path / "f.yaml"
    fixture.write_text("vars:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())
                       + "events:\n  - status: sent\n    msgId: x\n")
    plain = tmp_path / "p.yaml"
    plain.write_text(bomb)
    params = tmp_path / "params.yaml"
    params.write_text(bomb)
    started = time.monotonic()
    for argv in (("callback", "replay", str(fixture), "--dry-run"), ("lint", str(plain)),
                 ("send-template", "--template-file", str(EXAMPLES / "templates" /
                                                          "text.json"),
                  "--to", "919000000001", "--params", str(params), "--dry-run"),
                 ("sandbox", "--config", str(plain))):
        result = cli(*argv)
        assert result.exit_code in (1, 2), argv
        assert "expands past 1,000,000 values" in result.stdout + result.stderr, argv
    assert time.monotonic() - started < 10


def test_listen_on_port_0_prints_the_port_it_got() -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "ctwa", "callback", "listen", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/stats", timeout=10).json()["callbacks"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def once_up(request, seconds: float = 20.0):
    """``request()``'s result as soon as the listener started in a subprocess answers."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            return request()
        except httpx.ConnectError:
            assert time.monotonic() < deadline, "the listener did not come up"
            time.sleep(0.1)


def test_the_listener_keeps_valid_invalid_and_unreadable_callbacks(tmp_path) -> None:
    from ctwa.store.db import Store
    from ctwa.store.writer import BatchWriter

    writer = BatchWriter(tmp_path / "s.db")
    listen = Listener(store=writer)
    with LiveServer(listen.app()) as server:
        httpx.post(f"{server.url}/status",
                   content=(SPEC_SAMPLES / "status-sent.json").read_bytes())
        httpx.post(f"{server.url}/status", json={"payloadVersion": "0.1", "statuses": [
            {"msgId": "m-2", "status": "failed", "timestamp": "1700000000",
             "error": {"code": 131026, "title": "x"}}]})
        httpx.post(f"{server.url}/status", content=b"{not json")
        stats = httpx.get(f"{server.url}/stats").json()
    writer.close()
    assert stats["listener"] == "ctwa" and stats["store"] == str(tmp_path / "s.db")
    with Store(tmp_path / "s.db") as store:
        rows = store.callbacks_between(0, 2e10)
    assert [(r["msg_id"], r["status"], r["valid"]) for r in rows] == [
        ("25596363|1639561857|20220227|25596363", "sent", 1), ("m-2", "failed", 0),
        (None, None, 0)]
    assert "131026 is not in CleverTap's table (1000-1010)" in rows[1]["problems"]
    assert rows[2]["body"] == "{not json"


def test_listen_no_store_keeps_nothing(tmp_path) -> None:
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ctwa", "--json", "callback", "listen",
                             "--port", str(port), "--no-store"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stats = once_up(lambda: httpx.get(f"http://127.0.0.1:{port}/stats").json())
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=20)
    assert stats["store"] is None and "store" not in json.loads(out)
    from ctwa.store.db import store_path

    assert not store_path().exists()

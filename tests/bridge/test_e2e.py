"""The bridge end to end, as a real ``ctwa bridge`` process in front of the sandbox's strict
Meta mock: ``ctwa certify`` against it passes every automated check unattended, and a
SIGKILL in the middle of a 5,000-message run loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctwa.infra.ports import free_port
from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from tests.bridge.conftest import wait_until
from tests.conftest import EXAMPLES, LiveServer

PASSWORD = "pw-CANARY-7f3a"
TO = "919000000001"


@dataclass
class BridgeProcess:
    url: str
    process: subprocess.Popen[bytes]
    args: list[str]
    env: dict[str, str]
    log: Path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_bridge(port: int, box: RunningSandbox, status_url: str, inbound_url: str,
                 state: Path, tmp: Path, mps: float, config: Path | None = None,
                 log_name: str = "bridge.log", verbose: bool = False) -> BridgeProcess:
    creds = box.credentials()
    env = {**os.environ, "CTWA_BRIDGE_PASSWORD": PASSWORD,
           "CTWA_META_TOKEN": creds["meta_token"],
           "CTWA_META_APP_SECRET": creds["meta_app_secret"],
           "CTWA_META_VERIFY_TOKEN": "verify-me"}
    args = [sys.executable, "-m", "ctwa", *(["-v"] if verbose else []), "bridge",
            "--listen", f"127.0.0.1:{port}",
            "--graph-url", box.urls()["meta_graph"],
            "--phone-number-id", creds["meta_phone_number_id"],
            "--waba-id", creds["meta_waba_id"], "--status-url", status_url,
            "--inbound-url", inbound_url, "--username", "clevertap", "--state", str(state),
            "--mps", str(mps), "--public-url", f"http://127.0.0.1:{port}"]
    if config is not None:
        args += ["--config", str(config)]
    log = tmp / log_name
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                               stderr=log.open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the bridge exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return BridgeProcess(url, process, args, env, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the bridge did not become ready: {log.read_text()[-2000:]}")


def tracked_templates(folder: Path, public_url: str) -> list[str]:
    """The example templates with every URL button on the bridge's click path
    (``{public_url}/c/{{1}}``), as the README tells users to register them; their names."""
    folder.mkdir()
    names = []
    for path in sorted((EXAMPLES / "templates").glob("*.json")):
        doc = json.loads(path.read_text())
        for template in doc if isinstance(doc, list) else [doc]:
            names.append(template["name"])
            for comp in _all_components(template):
                for button in comp.get("buttons") or []:
                    if button.get("type") == "URL":
                        button["url"] = f"{public_url}/c/{{{{1}}}}"
                        button["example"] = [f"{public_url}/c/offer"]
        (folder / path.name).write_text(json.dumps(doc))
    return names


def _all_components(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for comp in template.get("components") or []:
        yield comp
        for card in comp.get("cards") or []:
            yield from card.get("components") or []


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A port for the bridge, the templates folder the sandbox (Meta and vendor) serves, and
    the certify library imported from it."""
    from ctwa.http import Auth, make_client
    from ctwa.templates.importer import Importer
    from ctwa.templates.library import TemplateLibrary

    port = free_port()
    templates = tmp_path / "templates"
    tracked_templates(templates, f"http://127.0.0.1:{port}")
    folder = tmp_path / "library"
    with RunningSandbox(SandboxSettings(port=0, templates=templates,
                                        store_callbacks=False)) as box, \
            make_client(auth=Auth("bearer", secret=box.credentials()["vendor_token"]),
                        origin=box.urls()["vendor_templates"]) as client:
        report = Importer(client, TemplateLibrary(folder)).run(
            box.urls()["vendor_templates"], 50, 10)
    assert report.complete and report.added
    yield templates, folder, port


def test_certify_against_the_bridge_passes_every_automated_check(cli, library,
                                                                  tmp_path) -> None:
    templates, folder, port = library
    listen = free_port()
    names = tracked_templates(tmp_path / "names", "x")
    config = tmp_path / "bridge.yaml"
    config.write_text("clicks:\n" + "".join(
        f"  {json.dumps(n)}: https://www.clevertap.com/{{value}}\n" for n in set(names)))
    meta = MetaSettings(webhook_url=f"http://127.0.0.1:{port}/webhook", mps=0,
                        verify_token="verify-me",  # Meta verifies the bridge's URL first
                        simulated_user=True, tap_prefixes=(f"http://127.0.0.1:{port}/c/",),
                        status_delays=(0.02, 0.05, 0.08), reply_delay=0.01)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n919000000002\n919000000004\n")
    evidence = tmp_path / "evidence"
    with RunningSandbox(SandboxSettings(port=0, templates=templates, meta=meta,
                                        store_callbacks=False)) as box:
        bridge = start_bridge(port, box, f"http://127.0.0.1:{listen}/status",
                              f"http://127.0.0.1:{listen}/inbound", tmp_path / "b.sqlite3",
                              tmp_path, mps=1000, config=config, verbose=True)
        try:
            result = cli("--json", "certify", "--to", TO, "--waba", "919999999998",
                         "--endpoint", f"{bridge.url}/messages", "--username", "clevertap",
                         "--library", str(folder), "--listen", f"127.0.0.1:{listen}",
                         "--callback-timeout", "20s", "--interactive-timeout", "20s",
                         "--report-dir", str(evidence), "--scale", "2000", "--to-file",
                         str(numbers), "--yes", env={"CTWA_PASSWORD": PASSWORD})
        finally:
            bridge.stop()
        duplicates = box.meta.state.duplicates()
    data = json.loads(result.stdout) if result.stdout.strip() else {}
    checks = {c["name"]: c for c in data.get("checks", [])}
    automated = ("validation", "templates", "freeform", "errors", "callbacks", "inbound",
                 "clicks", "scale")
    got = {name: checks.get(name, {}).get("status") for name in automated}
    details = {name: checks.get(name, {}).get("detail") for name in automated
               if got[name] != "pass"}
    assert got == dict.fromkeys(automated, "pass"), (details, result.stderr[-2000:],
                                                      bridge.log.read_text()[-3000:])
    assert duplicates == {}
    log = bridge.log.read_text()  # -v: every send and answer, and no secret
    assert "> POST /" in log and "< HTTP 200" in log
    assert PASSWORD not in log and box.credentials()["meta_token"] not in log
    assert box.credentials()["meta_app_secret"] not in log


def test_sigkill_during_a_5000_message_run_loses_nothing(tmp_path: Path) -> None:
    from ctwa.callbacks.listener import Listener

    received: list[Any] = []
    listener = Listener(on_receive=received.append)
    port = free_port()
    meta = MetaSettings(webhook_url=f"http://127.0.0.1:{port}/webhook", mps=0,
                        status_delays=(0.01, 0.02, 0.03), read=False)
    state = tmp_path / "b.sqlite3"
    total = 5000
    # the crash rule: a send in flight at the kill waits this long for Meta's status naming
    # it before its failed DLR (2m by default; shorter here so the test does not wait that)
    config = tmp_path / "bridge.yaml"
    config.write_text("in_doubt_window: 20s\n")
    with LiveServer(listener.app()) as ct, \
            RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
        status_url, inbound_url = f"{ct.url}/status", f"{ct.url}/inbound"
        bridge = start_bridge(port, box, status_url, inbound_url, state, tmp_path, mps=1000)
        accepted: list[str] = []
        payloads = [{"payloadVersion": 0.1, "to": f"9190000{n:05d}", "wabaNumber":
                     "919999999998", "msgId": f"1|777|20260101|{n}", "isTemplate": False,
                     "type": "text", "text": {"body": f"message {n}"}} for n in range(total)]

        unanswered: list[str] = []

        async def run() -> None:
            from ctwa.http import Auth, load_headers
            from ctwa.http.raw import HttpError, Pool

            headers = load_headers(Auth("basic", "clevertap", PASSWORD), None)
            pool = Pool(f"{bridge.url}/messages", headers, size=200, timeout=5)
            gate = asyncio.Semaphore(200)
            killed = False

            async def one(payload: dict[str, Any]) -> None:
                nonlocal killed
                async with gate:
                    try:
                        status, body = await pool.post(json.dumps(payload).encode())
                    except HttpError:
                        unanswered.append(payload["msgId"])  # stored or not: unknown
                        return
                    if status == 200 and json.loads(body) == {"status": "success"}:
                        accepted.append(payload["msgId"])
                    if len(accepted) >= total // 2 and not killed:
                        killed = True
                        bridge.kill()  # SIGKILL, mid-run, sends in flight

            try:
                await asyncio.gather(*(one(p) for p in payloads))
            finally:
                pool.close()

        asyncio.run(run())
        assert bridge.process.returncode == -signal.SIGKILL
        assert total // 2 <= len(accepted) < total
        restarted = start_bridge(port, box, status_url, inbound_url, state, tmp_path,
                                 mps=1000, config=config, log_name="restarted.log")
        try:
            def outcomes() -> dict[str, set[str]]:
                seen: dict[str, set[str]] = {}
                for item in list(received):
                    if item.ok and item.kind == "status":
                        for entry in item.result.value.statuses:
                            seen.setdefault(entry.msgId, set()).add(entry.status)
                return seen

            def settled() -> bool:
                seen = outcomes()
                return all("delivered" in seen.get(m, ()) or "failed" in seen.get(m, ())
                           for m in accepted)

            wait_until(settled, timeout=60, what="every accepted message to end")
        finally:
            restarted.stop()
        sends = dict(box.meta.state.sends_by_key)
        duplicates = box.meta.state.duplicates()
    seen = outcomes()
    invalid = [(r.path, r.error or [p.message for p in r.result.errors]) for r in received
               if not r.ok]
    assert invalid == [], "CleverTap's side got callbacks not in its format"
    failed = [m for m in accepted if "failed" in seen[m]]
    sent = [m for m in accepted if m in sends]
    assert duplicates == {}, "a message was sent to Meta twice"
    # every accepted message: sent with a wamid (then delivered), or a failed DLR; not both
    assert set(sent) | set(failed) == set(accepted)
    assert not any("delivered" in seen[m] and m not in sends for m in accepted)
    # CleverTap got every status of what was delivered: sent, then delivered
    assert all({"sent", "delivered"} <= seen[m] for m in sent if m not in failed)
    # nothing Meta got that CleverTap did not send; a message whose answer the kill cut off
    # may have been stored (and then sent), as CleverTap's timeout would leave it
    assert set(sends) <= set(accepted) | set(unanswered)
    # the crash rule: a send in flight at the kill that Meta took is settled by Meta's status
    # (sent, its statuses forwarded); only one Meta never got is failed with 1009
    crashed = {entry.msgId for item in received if item.ok and item.kind == "status"
               for entry in item.result.value.statuses
               if entry.status == "failed" and entry.error and entry.error.code == 1009}
    assert not crashed & set(sends), "a message Meta took was failed by the crash rule"

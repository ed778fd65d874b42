"""One verdict, rendered every way, says the same everywhere: for each command that judges a
run, the console's criterion lines and outcome, the ``--json`` document, the HTML report's
headline and criteria rows, the JUnit file (a failure per failed criterion, a skip per one not
tested, not attested or warned), the store's run row (``runs list``) and the exit code.

Each command runs twice against the same sandbox (once for the console, once for --json);
what it judges is deterministic (refused numbers, rejected rows), not timing."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ctwa.report.verdict import LABELS, Verdict
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from ctwa.store.db import Store
from tests.conftest import EXAMPLES

AUTH = ("--username", "ctwa", "--password", "sandbox")
EXIT = {"passed": 0, "incomplete": 0, "failed": 1}


@pytest.fixture(scope="module")
def box():
    with RunningSandbox(SandboxSettings(port=0, bsp=BspSettings(
            dlr_delays=(0.01, 0.02, 0.03), latency=(0.001, 0.005)))) as sandbox:
        yield sandbox


def verdict_of(document: dict) -> Verdict:
    """The verdict a command's --json document carries (load, upload, import, replay,
    listen: ``verdict``; certify: its summary; single sends: ``outcome`` and ``criteria``)."""
    if isinstance(document.get("verdict"), dict) and "criteria" in document["verdict"]:
        return Verdict.from_dict(document["verdict"])
    return Verdict.from_dict({"criteria": document["criteria"],
                              "interrupted": document.get("interrupted")})


def console_agrees(stdout: str, verdict: Verdict, every_criterion: bool = True) -> None:
    assert f"verdict: {verdict.headline}" in stdout, stdout
    for criterion in verdict.criteria:
        if every_criterion or criterion.status != "pass":
            assert f"{LABELS[criterion.status]}: {criterion.name}: " in stdout, \
                (criterion, stdout)


def html_agrees(page: Path, verdict: Verdict) -> None:
    dom = page.read_text(encoding="utf-8")
    assert f'data-outcome="{verdict.outcome}"' in dom
    rows = dict(re.findall(r'data-criterion="([^"]+)" data-status="([^"]+)"', dom))
    assert rows == {c.name: c.status for c in verdict.criteria}


def junit_agrees(path: Path, verdict: Verdict) -> None:
    suite = ET.parse(path).getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {c.name for c in verdict.criteria}
    for criterion in verdict.criteria:
        case = cases[criterion.name]
        failed, skipped = case.find("failure") is not None, case.find("skipped") is not None
        assert failed == (criterion.status == "fail"), criterion
        assert skipped == (criterion.status in ("not tested", "not attested", "warning"))
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["outcome"] == verdict.outcome


def newest_kept() -> Verdict:
    with Store() as store:
        newest = store.runs(1)[0]
        kept = Verdict.from_dict(json.loads(store.run(newest["id"])["summary"])["verdict"])
    assert newest["outcome"] == kept.outcome
    return kept


def store_agrees(cli, verdict: Verdict) -> None:
    kept = newest_kept()
    assert kept == verdict
    listed = cli("runs", "list", "--limit", "1").stdout
    assert listed.rstrip().endswith(verdict.outcome), listed


#: Criteria that measure timing on a shared machine (the client's own lag): two runs of one
#: command may differ there, never in the rest.
TIMING = {"client"}


def same_judgement(first: Verdict, second: Verdict) -> None:
    """Two runs of one command judged alike on everything but timing."""
    assert [(c.name, c.status) for c in first.criteria if c.name not in TIMING] == \
        [(c.name, c.status) for c in second.criteria if c.name not in TIMING]


def every_way(cli, tmp_path: Path, *argv: str, reports: bool = True) -> Verdict:
    """Run the command for people (with --report and --junit) and for scripts (--json).
    The run for people: its console, HTML, JUnit, store row and exit code all say the
    verdict the store keeps. The run for scripts: its document, store row and exit code say
    the same. Both runs judge alike. Returns the --json run's verdict."""
    extra = ("--report", str(tmp_path / "run.html"), "--junit", str(tmp_path / "run.xml")) \
        if reports else ()
    shown = cli(*argv, *extra)
    if reports:
        seen = newest_kept()
        store_agrees(cli, seen)
        console_agrees(shown.stdout, seen)
        html_agrees(tmp_path / "run.html", seen)
        junit_agrees(tmp_path / "run.xml", seen)
        assert shown.exit_code == seen.exit_code(), shown.stderr
    data = cli("--json", *argv)
    document = json.loads(data.stdout)
    verdict = verdict_of(document)
    assert document.get("outcome", verdict.outcome) == verdict.outcome
    assert data.exit_code == verdict.exit_code(), data.stderr
    if reports:
        store_agrees(cli, verdict)
        same_judgement(seen, verdict)
    else:  # single sends keep no run: the console and the document, each run
        console_agrees(shown.stdout, verdict, every_criterion=False)
        assert shown.exit_code == data.exit_code
    return verdict


def test_load(cli, box, tmp_path) -> None:
    numbers = tmp_path / "to.txt"
    numbers.write_text("919000000001\n919000000003\n")  # ...0003: refused with 2003
    verdict = every_way(cli, tmp_path, "send-template", "--sample", "text", "--to-file",
                        str(numbers), "--endpoint", box.urls()["bsp_endpoint"], *AUTH,
                        "--count", "40", "--concurrency", "10", "--workers", "1")
    assert verdict.outcome == "failed" and verdict.get("failures").status == "fail"
    assert "20 refused with failure 2003" in verdict.get("failures").reason
    assert verdict.get("concurrency").status == "not tested"


def test_load_with_only_untested_criteria_left_is_incomplete(cli, box, tmp_path) -> None:
    verdict = every_way(cli, tmp_path, "send-template", "--sample", "text", "--to",
                        "919000000001", "--endpoint", box.urls()["bsp_endpoint"], *AUTH,
                        "--count", "20", "--concurrency", "5", "--workers", "1")
    assert verdict.outcome == "incomplete"
    assert verdict.get("concurrency").status == "not tested"


def test_upload_with_rejects_fails_everywhere(cli, box, tmp_path) -> None:
    creds = box.credentials()
    users = tmp_path / "users.csv"
    rows = (EXAMPLES / "users.csv").read_bytes()
    argv = ("upload-users", str(users), "--base-url", box.urls()["clevertap_api"],
            "--account-id", creds["account_id"], "--passcode", creds["passcode"],
            "--restart")
    users.write_bytes(rows)
    verdict = every_way(cli, tmp_path, *argv)
    assert verdict.outcome == "failed" and verdict.get("rows valid").status == "fail"


def test_import(cli, box, tmp_path) -> None:
    verdict = every_way(cli, tmp_path, "import-templates", "--url",
                        box.urls()["vendor_templates"], "--auth", "bearer", "--token",
                        box.credentials()["vendor_token"], "--library", str(tmp_path / "lib"),
                        "--limit", "4")
    assert verdict.get("import").status == "pass"


def test_replay(cli, box, tmp_path) -> None:
    fixture = tmp_path / "f.yaml"
    fixture.write_text("events:\n  - status: sent\n    msgId: '{{ msg_id }}'\n"
                       "  - status: delivered\n    msgId: '{{ msg_id }}'\n")
    urls = box.urls()
    verdict = every_way(cli, tmp_path, "callback", "replay", str(fixture), "--status-url",
                        urls["status_callback"], "--inbound-url", urls["inbound_callback"],
                        "--no-delay")
    assert verdict.outcome == "passed"
    broken = every_way(cli, tmp_path, "callback", "replay", str(fixture), "--status-url",
                       urls["status_callback"] + "-nowhere", "--inbound-url",
                       urls["inbound_callback"], "--no-delay")
    assert broken.outcome == "failed" and broken.get("answers").status == "fail"


def test_single_sends(cli, box, tmp_path) -> None:
    argv = ("send-template", "--sample", "text", "--endpoint", box.urls()["bsp_endpoint"],
            *AUTH)
    ok = every_way(cli, tmp_path, *argv, "--to", "919000000001", reports=False)
    assert ok.outcome == "passed"
    refused = every_way(cli, tmp_path, *argv, "--to", "919000000003", reports=False)
    assert refused.outcome == "failed" and refused.get("accepted").status == "fail"
    assert "2003" in refused.get("accepted").reason


def test_listen(cli, tmp_path) -> None:
    """A real listener process each way: one valid callback and one that breaks the contract,
    then Ctrl-C."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    def listen(*extra: str, json_mode: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.Popen([sys.executable, "-m", "ctwa", *(["--json"] if json_mode else
                                                                 []), "callback", "listen",
                                 "--port", "0", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "NO_COLOR": "1"})
        try:
            assert proc.stderr is not None
            port = int(re.search(r"127\.0\.0\.1:(\d+)",  # type: ignore[union-attr]
                                 proc.stderr.readline()).group(1))
            base = f"http://127.0.0.1:{port}"
            httpx.post(f"{base}/status", json={"statuses": [
                {"msgId": "i|1|2|3|0", "status": "sent", "timestamp": 1700000000}]},
                timeout=10)
            httpx.post(f"{base}/status", json={"nothing": "like a callback"}, timeout=10)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    shown = listen("--report", str(tmp_path / "run.html"), "--junit", str(tmp_path / "run.xml"))
    seen = newest_kept()
    console_agrees(shown.stdout, seen)
    html_agrees(tmp_path / "run.html", seen)
    junit_agrees(tmp_path / "run.xml", seen)
    data = listen(json_mode=True)
    verdict = verdict_of(json.loads(data.stdout))
    store_agrees(cli, verdict)
    assert verdict == seen and verdict.get("callbacks valid").status == "fail"
    assert shown.returncode == data.returncode == verdict.exit_code() == 1, shown.stderr


def test_certify(cli, tmp_path) -> None:
    """Unattended, without --scale: the interactive checks and scale are not tested and the
    manual criteria not attested, so the run is incomplete everywhere (exit 0)."""
    from ctwa.infra.ports import free_port
    from tests.certify.test_certify import TO

    port = free_port()
    bsp = BspSettings(status_url=f"http://127.0.0.1:{port}/status",
                      inbound_url=f"http://127.0.0.1:{port}/inbound",
                      dlr_delays=(0.01, 0.02, 0.03))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as sandbox:
        library = tmp_path / "lib"
        urls, creds = sandbox.urls(), sandbox.credentials()
        assert cli("import-templates", "--url", urls["vendor_templates"], "--auth", "bearer",
                   "--token", creds["vendor_token"], "--library", str(library)).exit_code == 0

        def certify(folder: str, *json_flag: str):
            return cli(*json_flag, "certify", "--to", TO, "--waba", "919999999998",
                       "--endpoint", urls["bsp_endpoint"], *AUTH, "--library", str(library),
                       "--templates", "sample_template", "--listen", f"127.0.0.1:{port}",
                       "--callback-timeout", "5s", "--no-interactive", "--report-dir",
                       str(tmp_path / folder))

        shown = certify("ev-shown")
        seen = newest_kept()
        console_agrees(shown.stdout, seen)
        html_agrees(tmp_path / "ev-shown" / "report.html", seen)
        junit_agrees(tmp_path / "ev-shown" / "junit.xml", seen)
        assert shown.exit_code == seen.exit_code() == 0, shown.stderr
        data = certify("ev-json", "--json")
    assert data.stdout, data.stderr
    verdict = verdict_of(json.loads(data.stdout))
    store_agrees(cli, verdict)
    same_judgement(seen, verdict)
    assert verdict.outcome == "incomplete" and data.exit_code == 0
    assert verdict.get("manual: test-accounts").status == "not attested"
    assert verdict.get("scale").status == "not tested"

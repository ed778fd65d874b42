"""``ctwa certify`` against the sandbox: a well-behaved BSP with a simulated user passes every
check unattended (scale included, under a minute); each way a BSP misbehaves fails exactly
the check that should catch it, naming the evidence; the evidence folder verifies; bad input
is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings

AUTH = ("--username", "ctwa", "--password", "sandbox")
TO = "919000000001"




@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """The sandbox vendor's templates, imported once."""
    from ctwa.http import Auth, make_client
    from ctwa.templates.importer import Importer
    from ctwa.templates.library import TemplateLibrary

    folder = tmp_path_factory.mktemp("library")
    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False)) as box, \
            make_client(auth=Auth("bearer", secret=box.credentials()["vendor_token"]),
                        origin=box.urls()["vendor_templates"]) as client:
        report = Importer(client, TemplateLibrary(folder)).run(
            box.urls()["vendor_templates"], 50, 10)
    assert report.complete and report.added
    return folder


def certify(cli, library: Path, tmp_path: Path, *args: str, faults: tuple[str, ...] = (),
            timeout: str = "10s"):
    port = free_port()
    bsp = BspSettings(misbehave=faults, status_url=f"http://127.0.0.1:{port}/status",
                      inbound_url=f"http://127.0.0.1:{port}/inbound", simulated_user=True,
                      dlr_delays=(0.02, 0.05, 0.08))
    folder = tmp_path / "evidence"
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("--json", "certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--library", str(library),
                     "--listen", f"127.0.0.1:{port}", "--callback-timeout", timeout,
                     "--interactive-timeout", timeout, "--report-dir", str(folder), *args)
    data = json.loads(result.stdout) if result.stdout.strip() else {}
    checks = {c["name"]: c for c in data.get("checks", [])}
    return result, checks, folder


def test_a_good_bsp_passes_everything_unattended(cli, library, tmp_path) -> None:
    import time

    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n919000000002\n919000000004\n")
    attest = tmp_path / "attest.yaml"
    attest.write_text("- criterion: support-contacts\n  who: Asha (QA lead)\n"
                      "  what: support@bsp.example, +91 80 0000 0000\n"
                      "  where: https://bsp.example/contact\n")
    began = time.monotonic()
    result, checks, folder = certify(cli, library, tmp_path, "--scale", "5000", "--to-file",
                                     str(numbers), "--yes", "--attest", str(attest))
    took = time.monotonic() - began
    assert result.exit_code == 0, result.stderr[-3000:]
    automated = ("validation", "templates", "freeform", "errors", "callbacks", "inbound",
                 "clicks", "scale")
    assert {name: checks[name]["status"] for name in automated} == dict.fromkeys(automated,
                                                                                  "pass")
    assert checks["manual: support-contacts"]["status"] == "attested"
    assert checks["manual: test-accounts"]["status"] == "not attested"
    assert "carousel" in checks["templates"]["evidence"]["components_exercised"]
    from ctwa.store.db import Store

    with Store() as store:  # the scale step's messages can be traced one by one
        kept = store.db.execute("SELECT messages FROM load_runs WHERE id LIKE 'certify-%'")
        assert [row[0] for row in kept] == [5000]
    assert took < 60, f"certify took {took:.0f} s"
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["exchanges.ndjson", "junit.xml", "manifest.json", "report.html",
                     "results.json"]
    exchanges = (folder / "exchanges.ndjson").read_text()
    assert "sandbox" not in exchanges.replace("sandbox-", "")  # the password is masked
    assert "Basic ****" in exchanges
    junit = (folder / "junit.xml").read_text()
    assert junit.count("<testcase") == 14 and "<failure" not in junit
    verified = cli("certify", "verify", str(folder))
    assert verified.exit_code == 0 and "5 file(s)" not in verified.stdout  # the manifest
    assert "4 file(s) match" in verified.stdout  # excludes itself


@pytest.mark.parametrize(("fault", "check", "evidence"), [
    ("slow", "validation", "over the 1 s deadline"),
    ("validation-error", "validation", "500"),
    ("no-dlr", "callbacks", "none"),
    ("no-read", "callbacks", "reached read"),
    ("out-of-order", "callbacks", "downgrades"),
    ("duplicate-dlr", "callbacks", "duplicates"),
    ("meta-format", "callbacks", "wrong_format"),
    ("wrong-msgid", "callbacks", "orphans"),
    ("no-context", "inbound", "without context"),
    ("bad-codes", "errors", "outside 1000-1010"),
])
def test_each_fault_fails_the_check_that_catches_it(cli, library, tmp_path, fault, check,
                                                    evidence) -> None:
    result, checks, folder = certify(cli, library, tmp_path, faults=(fault,), timeout="3s")
    assert result.exit_code == ExitCode.FAILED, result.stderr[-2000:]
    assert checks[check]["status"] == "fail", checks[check]
    assert evidence in checks[check]["detail"].lower() or evidence in checks[check]["detail"]
    if fault not in ("slow", "validation-error"):
        assert checks["validation"]["status"] == "pass"
    assert (folder / "manifest.json").exists() and "Traceback" not in result.stderr


def test_non_interactive_marks_the_phone_steps_not_tested(cli, library, tmp_path) -> None:
    result, checks, _ = certify(cli, library, tmp_path, "--no-interactive")
    assert result.exit_code == 0, result.stderr[-2000:]
    for name in ("freeform", "inbound", "clicks", "scale"):
        assert checks[name]["status"] == "not tested"
    assert checks["callbacks"]["status"] == "pass"
    assert "not tested" in result.stderr
    strict, _, _ = certify(cli, library, tmp_path / "strict", "--no-interactive", "--strict")
    assert strict.exit_code == ExitCode.FAILED


def test_no_callback_at_all_says_what_to_check(cli, library, tmp_path) -> None:
    port = free_port()
    folder = tmp_path / "ev"
    bsp = BspSettings(status_url="http://127.0.0.1:9/status")  # a URL that reaches nothing
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--library", str(library),
                     "--listen", f"127.0.0.1:{port}", "--no-interactive",
                     "--callback-timeout", "2s", "--report-dir", str(folder))
    assert result.exit_code == ExitCode.FAILED
    assert "no callback arrived" in result.stdout and "reachable from the BSP" in result.stdout


def test_bad_input_is_one_line(cli, library, tmp_path) -> None:
    no_to = cli("certify", "--endpoint", "http://127.0.0.1:9/x")
    assert no_to.exit_code == ExitCode.USAGE and "--to" in no_to.stderr
    empty = tmp_path / "empty-library"
    empty.mkdir()
    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False)) as box:
        none = cli("certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                   box.urls()["bsp_endpoint"], *AUTH, "--library", str(empty),
                   "--listen", f"127.0.0.1:{free_port()}", "--report-dir",
                   str(tmp_path / "ev"))
    assert none.exit_code == ExitCode.USAGE and "import-templates" in none.stderr
    assert "validation:" not in none.stderr and "evidence in" not in none.stderr  # at once
    bad = tmp_path / "attest.yaml"
    bad.write_text("- criterion: coffee\n  who: me\n  what: yes\n")
    attest = cli("certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                 "http://127.0.0.1:9/x", "--attest", str(bad), "--report-dir",
                 str(tmp_path / "ev2"))
    assert attest.exit_code == ExitCode.USAGE and "unknown criterion 'coffee'" in attest.stderr
    scale = cli("certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                "http://127.0.0.1:9/x", "--scale", "10")
    assert scale.exit_code == ExitCode.USAGE and "--to-file" in scale.stderr
    port = free_port()  # nothing listens there
    unreachable = cli("certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                      f"http://127.0.0.1:{port}/bsp", "--library", str(library), "--listen",
                      f"127.0.0.1:{free_port()}", "--report-dir", str(tmp_path / "ev3"))
    assert unreachable.exit_code == ExitCode.UNREACHABLE and "--endpoint" in unreachable.stderr
    assert not (tmp_path / "ev3").exists()  # no evidence folder of nothing
    assert not (tmp_path / "ev").exists()
    for result in (no_to, none, attest, scale, unreachable):
        assert "Traceback" not in result.stderr


def test_ctrl_c_writes_the_report_of_what_ran(library, tmp_path) -> None:
    """No simulated user: the run waits at the freeform step until Ctrl-C, then writes the
    evidence of what ran and exits 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    folder = tmp_path / "ev"
    bsp = BspSettings(status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctwa", "certify", "--to", TO, "--waba", "919999999998",
             "--endpoint", box.urls()["bsp_endpoint"], *AUTH, "--library", str(library),
             "--listen", f"127.0.0.1:{port}", "--interactive-timeout", "60s",
             "--report-dir", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "NO_COLOR": "1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            log = folder / "exchanges.ndjson"
            if log.exists() and '"step": "errors"' in log.read_text():
                break
            time.sleep(0.2)
        time.sleep(1.0)  # now waiting for the tester to write first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err[-2000:]
    results = json.loads((folder / "results.json").read_text())
    checks = {c["name"]: c for c in results["data"]["checks"]}
    assert checks["validation"]["status"] == "pass"
    assert checks["freeform"]["status"] == "not tested"
    assert "interrupted" in checks["callbacks"]["detail"]
    assert (folder / "manifest.json").exists() and "Traceback" not in err
    assert "PASS" in out and "validation" in out  # the checklist of what ran

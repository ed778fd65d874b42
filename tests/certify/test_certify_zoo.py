"""certify against the sandbox's zoo of faults: each callback fault is named in the callbacks
check with its cause and fix, and no check says "nothing arrived" when something did."""

from __future__ import annotations

import json

import pytest

from ctwa.infra.errors import ExitCode
from tests.certify.test_certify import certify, library  # noqa: F401  (the module fixture)


@pytest.mark.parametrize(("fault", "check", "texts"), [
    ("wrapped-callbacks", "callbacks", ("wrapped in `{url, payload}`", "post the inner object")),
    ("date-timestamps", "callbacks", ("is a date string",)),
    ("no-msgid-dlr", "callbacks", ("arrived without a msgId",)),
    ("wrong-msgid", "callbacks", ("msgIds never sent", "echo the msgId")),
    ("bad-callback-query", "callbacks", ("bad_callback_url",)),
    ("accept-then-drop", "callbacks", ("got no callback at all", "while text did",
                                       "pipeline drops them")),
    ("no-dlr", "callbacks", ("got no callback at all, while the others did",)),
    ("empty-200", "validation", ("body is empty",)),
    ("no-auth", "errors", ("ACCEPTED with wrong credentials", "refuse them")),
])
def test_each_fault_is_named_by_the_check_that_catches_it(cli, library, tmp_path,  # noqa: F811
                                                        fault, check, texts) -> None:
    result, checks, _ = certify(cli, library, tmp_path, faults=(fault,), timeout="2s")
    assert result.exit_code == ExitCode.FAILED, result.stderr[-2000:]
    detail = checks[check]["detail"]
    assert checks[check]["status"] == "fail", checks[check]
    for text in texts:
        assert text in detail, detail
    if fault not in ("empty-200",):
        assert "no callback arrived" not in checks["callbacks"]["detail"]
        assert "nothing arrived" not in checks["callbacks"]["detail"]
    assert "Traceback" not in result.stderr


def test_a_title_that_contradicts_its_code_is_in_the_evidence(cli, library,  # noqa: F811
                                                              tmp_path) -> None:
    from ctwa.infra.ports import free_port
    from ctwa.sandbox.bsp import BspSettings
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings
    from tests.certify.test_certify import AUTH, TO

    port = free_port()
    bsp = BspSettings(misbehave=("wrong-codes",), shares={"wrong-codes": 1.0},
                      status_url=f"http://127.0.0.1:{port}/status",
                      inbound_url=f"http://127.0.0.1:{port}/inbound", simulated_user=True,
                      dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--library", str(library),
                     "--listen", f"127.0.0.1:{port}", "--no-interactive",
                     "--callback-timeout", "2s", "--report-dir", str(tmp_path / "ev"))
    assert result.exit_code == ExitCode.FAILED
    assert "diagnosis:" in result.stderr + result.stdout
    text = result.stderr + result.stdout
    assert "is the meaning of 1002" in text and "failure code 404 is not in" in text


def test_a_throughput_ceiling_is_named_by_the_scale_check(cli, library,  # noqa: F811
                                                          tmp_path) -> None:
    from ctwa.infra.ports import free_port
    from ctwa.sandbox.bsp import BspSettings
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings
    from tests.certify.test_certify import AUTH, TO

    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n919000000002\n")
    port = free_port()
    bsp = BspSettings(misbehave=("slow-ceiling",), shares={"slow-ceiling": 40.0},
                      status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("--json", "certify", "--to", TO, "--waba", "919999999998", "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--library", str(library), "--listen",
                     f"127.0.0.1:{port}", "--no-interactive", "--callback-timeout", "3s",
                     "--scale", "80", "--to-file", str(numbers), "--yes",
                     "--report-dir", str(tmp_path / "ev"))
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["scale"]["status"] == "fail"
    assert "throughput ceiling" in checks["scale"]["detail"], checks["scale"]["detail"]

"""``ctwa sandbox``'s options for the mock Cloud API, from flags, the config file and the
environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from ctwa.infra.errors import ExitCode
from tests.sandbox.templates import GOOD_REQUESTS


def _start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "ctwa", "--json", "sandbox", "--port", "0",
                             "--no-store", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    lines = []
    deadline = time.monotonic() + 20
    while proc.stdout is not None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.rstrip() == "}" or not line:
            break
    return proc, json.loads("".join(lines))


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(2)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err
    return err


def test_flags_config_and_environment_reach_the_mock(tmp_path, receiver) -> None:
    config = tmp_path / "sandbox.yaml"
    config.write_text(f"meta-webhook-url: {receiver.url}/webhook\nmeta-mps: 0\n"
                      "meta-batch: 5\nmeta-fail: {131026: 0.0}\n")
    proc, data = _start(["--config", str(config), "--meta-mps", "0.01"],
                        env={"CTWA_META_TOKEN": "tok-CANARY-91bd"})
    try:
        creds = data["credentials"]
        assert creds["meta_token"] == "(from CTWA_META_TOKEN)"  # never printed
        url = f"{data['urls']['meta_graph']}/{creds['meta_phone_number_id']}/messages"
        assert httpx.post(url, json=GOOD_REQUESTS["text"], headers={
            "Authorization": "Bearer sandbox-meta-token"}).status_code == 401
        codes = [httpx.post(url, json=GOOD_REQUESTS["text"], headers={
            "Authorization": "Bearer tok-CANARY-91bd"}).status_code for _ in range(5)]
        assert codes == [200, 400, 400, 400, 400]  # the flag's 0.01/s beats the file's 0
        assert receiver.wait(lambda r: len(r.statuses()) >= 3, timeout=10)
        stats = httpx.get(data["urls"]["meta_stats"]).json()
        assert stats["refused"] == {"130429": 4, "190": 1} and stats["webhooks"]["given_up"] == 0
    finally:
        err = _stop(proc)
    assert "tok-CANARY-91bd" not in err


@pytest.mark.parametrize(("args", "words"), [
    (("--meta-fail", "131026=2"), "--meta-fail '131026=2': write CODE=RATE"),
    (("--meta-fail", "777=0.1"), "with a Meta error code"),
    (("--meta-window", "closed"), "--meta-window 'closed': open or strict"),
    (("--meta-latency", "9ms-1ms"), "the range runs low-high"),
])
def test_bad_meta_options_are_one_clear_line(cli, args, words) -> None:
    result = cli("sandbox", "--port", "0", *args)
    assert result.exit_code == ExitCode.USAGE and words in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "words"), [
    ("meta-mps: -1\n", "meta-mps must be 0 (no limit) or more"),
    ("meta-batch: 0\n", "meta-batch must be between 1 and 1000"),
    ("meta-webhok-url: x\n", "did you mean 'meta-webhook-url'?"),
    ("meta-fail: 3\n", "meta-fail must be a mapping"),
])
def test_meta_settings_in_the_config_file_are_checked(cli, tmp_path, text, words) -> None:
    config = tmp_path / "sandbox.yaml"
    config.write_text(text)
    result = cli("sandbox", "--config", str(config))
    assert result.exit_code == ExitCode.USAGE and words in result.stderr


def test_meta_faults_are_named_and_checked(cli) -> None:
    result = cli("sandbox", "--port", "0", "--meta-fault", "teleport=0.1")
    assert result.exit_code == ExitCode.USAGE
    assert "--meta-fault 'teleport=0.1': write NAME=RATE" in result.stderr
    assert "html (answers HTTP 502" in result.stderr

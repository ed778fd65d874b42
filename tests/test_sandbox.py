"""Each mock service against ctwa's own commands, and its contract checks."""

from __future__ import annotations

import json

import httpx
import pytest

from ctwa.infra.errors import ExitCode
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from tests.conftest import SPEC_SAMPLES


@pytest.fixture(scope="module")
def box():
    settings = SandboxSettings(bsp=BspSettings(max_concurrency=3, latency=(0.0, 0.0)))
    with RunningSandbox(settings) as sandbox:
        yield sandbox


AUTH = ("--username", "ctwa", "--password", "sandbox")


def test_bsp_accepts_every_spec_template_and_refuses_broken_ones(box, cli) -> None:
    url = box.urls()["bsp_endpoint"]
    for name in ("template-lto", "template-carousel", "freeform-image", "validation-wrapped"):
        result = cli("send-template", "--payload", str(SPEC_SAMPLES / f"{name}.json"),
                     "--to", "919000000001", "--endpoint", url, *AUTH)
        assert result.exit_code == 0, (name, result.stderr)
    seen = httpx.get(box.urls()["bsp_stats"]).json()
    assert seen["accepted"] >= 4 and seen["last_payload"]["to"] == "919000000001"
    broken = cli("--json", "send-template", "--payload",
                 str(SPEC_SAMPLES / "template-media.json"), "--no-lint", "--endpoint", url,
                 *AUTH)
    verdict = json.loads(broken.stdout)["verdict"]
    assert verdict["error_code"] == 2001 and "used twice" in verdict["summary"]


@pytest.mark.parametrize(("args", "code"), [
    (("--to", "919000000003"), 2003),
    (("--to", "919000000001", "--password", "wrong"), 2000),
    (("--to", "1234567"), 2002),
])
def test_bsp_failure_codes(box, cli, args, code) -> None:
    extra = () if "--password" in args else ("--password", "sandbox")
    result = cli("--json", "send-template", "--sample", "text", "--endpoint",
                 box.urls()["bsp_endpoint"], "--username", "ctwa", *extra, *args)
    assert result.exit_code == ExitCode.FAILED
    assert json.loads(result.stdout)["verdict"]["error_code"] == code


def test_bsp_answers_429_past_its_concurrency_limit(cli) -> None:
    settings = SandboxSettings(bsp=BspSettings(max_concurrency=2, latency=(0.2, 0.2)))
    with RunningSandbox(settings) as sandbox:
        result = cli("--json", "send-template", "--sample", "text", "--to", "919000000001",
                     "--endpoint", sandbox.urls()["bsp_endpoint"], *AUTH, "--count", "20",
                     "--concurrency", "10", "--workers", "1")
    report = json.loads(result.stdout)
    assert report["http_statuses"].get("429", 0) > 0 and result.exit_code == ExitCode.FAILED


def test_vendor_pages_and_auth(box, cli, tmp_path) -> None:
    url = box.urls()["vendor_templates"]
    result = cli("--json", "import-templates", "--url", url, "--token",
                 box.settings.vendor_token, "--limit", "4", "--library", str(tmp_path))
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["pages"] == 3 and data["fetched"] == 9
    # text.json and media.json are both the spec's "Sample_Template (en(UK))": counted once
    assert [d.split(",")[0] for d in data["duplicates"]] == ["Sample_Template (en(UK))"]
    denied = cli("import-templates", "--url", url, "--token", "nope", "--library", str(tmp_path))
    assert denied.exit_code == ExitCode.CONFIG


def test_clevertap_upload_and_callbacks(box, cli, tmp_path) -> None:
    users = tmp_path / "u.csv"
    users.write_text("identity,Phone,Email\nu1,+14155552671,a@b.co\nu2,+14155552672,x\n")
    result = cli("--json", "upload-users", str(users), "--base-url", box.urls()["clevertap_api"],
                 "--account-id", box.settings.account_id, "--passcode", box.settings.passcode)
    counts = json.loads(result.stdout)["counts"]
    assert counts["uploaded"] == 1 and counts["rejected"] == 1
    assert httpx.get(box.urls()["upload_stats"]).json()["profiles"] >= 1
    bad = cli("upload-users", str(users), "--base-url", box.urls()["clevertap_api"],
              "--account-id", box.settings.account_id, "--passcode", "wrong", "--restart")
    assert bad.exit_code == ExitCode.CONFIG
    answer = httpx.post(box.urls()["status_callback"],
                        content=(SPEC_SAMPLES / "status-click-generic.json").read_bytes())
    assert answer.json()["status"] == "accepted"
    assert {p["errata"] for p in answer.json()["problems"]} == {11, 12}


def test_sandbox_command_prints_urls(tmp_path) -> None:
    """A real process; the flag (--port 0) beats the config file's port, the file's other
    settings apply."""
    import subprocess
    import sys
    import time

    config = tmp_path / "sandbox.yaml"
    config.write_text("port: 1\nreply-rate: 0.5\nfail: {2004: 0.0}\n")
    proc = subprocess.Popen([sys.executable, "-m", "ctwa", "sandbox", "--port", "0",
                             "--config", str(config), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 20
        while proc.stdout is not None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.rstrip() == "}" or not line:  # the end of the one JSON document
                break
        text = "".join(lines)
        data = json.loads(text)
        assert httpx.get(data["urls"]["callback_stats"]).json()["callbacks"] == 0
        assert ":1/" not in data["urls"]["bsp_endpoint"]
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err


@pytest.mark.parametrize(("text", "words"), [
    ("latncy: 5ms\n", "unknown setting 'latncy' (did you mean 'latency'?)"),
    ("port: abc\n", "port must be a whole number, got 'abc'"),
    ("reply-rate: 2\n", "reply-rate must be between 0 and 1"),
    ("- port\n", "expected a mapping of settings"),
    ("fail: 3\n", "fail must be a mapping"),
    ("meta-mps: -1\n", "meta-mps must be 0 (no limit) or more"),
    ("meta-batch: 0\n", "meta-batch must be between 1 and 1000"),
    ("meta-webhok-url: x\n", "did you mean 'meta-webhook-url'?"),
    ("meta-fail: 3\n", "meta-fail must be a mapping"),
])
def test_sandbox_config_is_checked_like_every_user_file(cli, tmp_path, text, words) -> None:
    config = tmp_path / "sandbox.yaml"
    config.write_text(text)
    result = cli("sandbox", "--config", str(config))
    assert result.exit_code == ExitCode.USAGE and words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_client_that_leaves_mid_request_is_counted_not_a_traceback(caplog) -> None:
    import socket
    import time

    with RunningSandbox(SandboxSettings(port=0)) as running:
        host, port = running.base_url.removeprefix("http://").split(":")
        for path in ("/bsp/messages", "/clevertap/status", "/vendor/templates"):
            with socket.create_connection((host, int(port))) as raw:
                raw.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                            "Authorization: Basic Y3R3YTpzYW5kYm94\r\n\r\n{\"a\":".encode())
                time.sleep(0.2)
        time.sleep(0.5)
        stats = httpx.get(f"{running.base_url}/bsp/stats").json()
    assert stats["disconnected"] == 2  # the vendor's GET route does not read a body
    assert not [r for r in caplog.records if "Exception in ASGI" in r.getMessage()]


def test_sandbox_settings_errors(cli) -> None:
    assert cli("sandbox", "--fail", "3000=0.5").exit_code == ExitCode.USAGE
    assert cli("sandbox", "--latency", "80ms-20ms").exit_code == ExitCode.USAGE


def test_a_busy_port_is_one_clear_line(cli) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for argv in (("sandbox", "--port", port), ("callback", "listen", "--port", port)):
            result = cli(*argv)
            assert result.exit_code == ExitCode.USAGE
            assert f"127.0.0.1:{port} is already in use" in result.stderr


def test_misbehave_names_are_checked_in_flags_and_the_config_file(cli, tmp_path) -> None:
    bad = cli("sandbox", "--port", "0", "--misbehave", "slow,teleport")
    assert bad.exit_code == ExitCode.USAGE
    assert "--misbehave 'teleport'" in bad.stderr and "late-dlr" in bad.stderr
    config = tmp_path / "sandbox.yaml"
    config.write_text("misbehave: [no-dlr, 42]\nsimulate-user: yes\n")
    from ctwa.sandbox.bsp import check_faults

    assert check_faults(["no-dlr,duplicate-dlr", "no-dlr"]) == ("no-dlr", "duplicate-dlr")
    wrong = cli("sandbox", "--port", "0", "--config", str(config))
    assert wrong.exit_code == ExitCode.USAGE and "'42'" in wrong.stderr
    typed = tmp_path / "typed.yaml"
    typed.write_text("simulate-user: 3\n")
    result = cli("sandbox", "--port", "0", "--config", str(typed))
    assert result.exit_code == ExitCode.USAGE and "simulate-user must be true or false" in \
        result.stderr

"""The whole send path against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from ctwa.infra.errors import ExitCode
from ctwa.wire.lint import lint_document
from tests.conftest import LiveServer

RECEIVED: list[dict] = []
CREDENTIALS = "Basic " + base64.b64encode(b"bsp:pw-CANARY-7f3a").decode()


async def messaging(request: Request):
    body = json.loads(await request.body())
    RECEIVED.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
    if request.headers.get("authorization") != CREDENTIALS:
        return JSONResponse({"status": "failure",
                             "error": {"code": 2000, "message": "Invalid Credentials"}})
    mode = request.path_params["mode"]
    if mode == "slow":
        await asyncio.sleep(0.3)
    if mode == "garbage":
        return PlainTextResponse("OK")
    return JSONResponse({"status": "success"})


@pytest.fixture(scope="module")
def server():
    app = Starlette(routes=[Route("/{mode}", messaging, methods=["POST"])])
    with LiveServer(app) as live:
        yield live


@pytest.fixture(autouse=True)
def clear():
    RECEIVED.clear()


AUTH = ("--username", "bsp", "--password", "pw-CANARY-7f3a")


def test_template_reaches_the_server_in_canonical_form(cli, server) -> None:
    result = cli("--json", "send-template", "--sample", "carousel", "--to", "919000000001",
                 "--waba", "919000000000", "--endpoint", f"{server.url}/ok", *AUTH)
    assert result.exit_code == 0, result.stderr
    (request,) = RECEIVED
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["user-agent"].startswith("ctwa/")
    check = lint_document(request["body"])
    assert check.kind == "template" and check.ok and not check.problems
    assert json.loads(result.stdout)["verdict"]["latency_ms"] < 1000


def test_wrong_credentials_get_2000(cli, server) -> None:
    result = cli("validate-endpoint", "--endpoint", f"{server.url}/ok", "--username", "bsp",
                 "--password", "wrong-pw")
    assert result.exit_code == ExitCode.FAILED
    assert "failure 2000: invalid credentials" in result.stderr


def test_slow_endpoint_is_flagged(cli, server) -> None:
    result = cli("--json", "send-freeform", "--text", "hi", "--to", "919000000001", "--waba",
                 "919000009190", "--endpoint", f"{server.url}/slow", "--deadline", "0.1", *AUTH)
    assert result.exit_code == ExitCode.FAILED
    verdict = json.loads(result.stdout)["verdict"]
    assert verdict["outcome"] == "too-slow" and verdict["latency_ms"] >= 300


def test_garbage_answer_is_a_contract_violation(cli, server) -> None:
    result = cli("validate-endpoint", "--endpoint", f"{server.url}/garbage", *AUTH)
    assert result.exit_code == ExitCode.FAILED
    assert "contract violation: HTTP 200 but the body is not JSON" in result.stderr


def test_a_real_process_end_to_end(server, tmp_path) -> None:
    env = {**os.environ, "CTWA_PASSWORD": "pw-CANARY-7f3a", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ctwa", "validate-endpoint", "--endpoint", f"{server.url}/ok",
         "--username", "bsp"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "accepted" in proc.stdout and "pw-CANARY-7f3a" not in proc.stderr + proc.stdout
    assert RECEIVED[0]["body"]["msgId"] == "0|0|0|0"

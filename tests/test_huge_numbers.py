"""A 5000-digit error code (issue 25.6), from a BSP on 127.0.0.1 or in a callback: never exit
70, never a worker crash, the listener answers 400 (never 500), and no Python wording."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctwa.infra.errors import ExitCode
from ctwa.send.judge import judge
from tests.conftest import LiveServer

DIGITS = "9" * 5000
ANSWERS = {
    "number": '{"status":"failure","error":{"code":CODE,"message":"x"}}'.replace("CODE", DIGITS),
    "string": '{"status":"failure","error":{"code":"CODE","message":"x"}}'.replace("CODE",
                                                                                 DIGITS),
    "huge-float": '{"status":"failure","error":{"code":1e999,"message":"x"}}',
}
CALLBACKS = {
    kind: ('{"payloadVersion":"0.1","statuses":[{"msgId":"1|2|3|4|0","status":"failed",'
           '"timestamp":"1700000000","error":{"code":CODE,"title":"x"}}]}').replace("CODE", code)
    for kind, code in (("number", DIGITS), ("string", f'"{DIGITS}"'), ("4000", "9" * 4000))
}
PYTHON_WORDS = ("sys.set_int_max_str_digits", "Exceeds the limit", "Traceback", "bug in ctwa")


async def answer(request: Request) -> Response:
    await request.body()
    return Response(ANSWERS[request.path_params["kind"]], media_type="application/json")


@pytest.fixture(scope="module")
def bsp():
    with LiveServer(Starlette(routes=[Route("/{kind}", answer, methods=["POST"])])) as server:
        yield server


def _clean(result) -> None:
    assert result.exit_code not in (ExitCode.INTERNAL, ExitCode.OK), result.output
    for words in PYTHON_WORDS:
        assert words not in result.output


@pytest.mark.parametrize("kind", sorted(ANSWERS))
@pytest.mark.parametrize("command", [
    ("send-template", "--sample", "text", "--to", "919876543210"),
    ("validate-endpoint",),
    ("send-template", "--sample", "text", "--to", "919876543210", "--count", "6",
     "--concurrency", "2", "--workers", "1"),
], ids=["send", "validate", "load"])
def test_a_bsp_answer_with_a_huge_code_is_a_failure_not_a_crash(cli, bsp, kind,
                                                                 command) -> None:
    result = cli("--json", *command, "--endpoint", f"{bsp.url}/{kind}")
    _clean(result)
    assert result.exit_code == ExitCode.FAILED
    json.loads(result.stdout)  # the document is written


@pytest.mark.parametrize("kind", sorted(CALLBACKS))
def test_a_callback_with_a_huge_code_is_refused_or_flagged_never_500(cli, listener, tmp_path,
                                                                     kind) -> None:
    answer = httpx.post(f"{listener.url}/status", content=CALLBACKS[kind])
    assert answer.status_code in (200, 400)
    assert answer.status_code == 400 or answer.json()["problems"]
    for words in PYTHON_WORDS:
        assert words not in answer.text
    path = tmp_path / "callback.json"
    path.write_text(CALLBACKS[kind])
    _clean(cli("lint", str(path)))
    _clean(cli("callback", "replay", str(path), "--status-url", f"{listener.url}/status"))


@settings(max_examples=200, deadline=None)
@given(code=st.one_of(st.integers(), st.floats(allow_nan=False),
                      st.text(alphabet="0123456789", min_size=1, max_size=6000)))
def test_any_json_number_as_a_code_is_judged(code) -> None:
    text = json.dumps({"status": "failure", "error": {"code": code}})
    verdict = judge(200, text.encode(), 0.01)
    assert verdict.outcome in ("rejected", "contract-violation")
    assert len(verdict.summary) < 400

"""The mock Cloud API's send endpoint: Meta's answers, codes and validation."""

from __future__ import annotations

import copy

import httpx
import pytest

from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from ctwa.wire.cloudapi import ErrorBody, SendRequest, SendResponse, read_answer
from tests.sandbox.templates import GOOD_REQUESTS, order_update, template, write_templates


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    folder = write_templates(tmp_path_factory.mktemp("templates"))
    settings = SandboxSettings(templates=folder, store_callbacks=False,
                               meta=MetaSettings(mps=0))
    with RunningSandbox(settings) as sandbox:
        yield sandbox


def post(box, body, token: str | None = None, node: str | None = None,
         version: str = "v21.0") -> httpx.Response:
    meta = box.settings.meta
    url = f"{box.base_url}/meta/{version}/{node or meta.phone_number_id}/messages"
    return httpx.post(url, json=body, headers={
        "Authorization": f"Bearer {token or meta.token}"}, timeout=10)


@pytest.mark.parametrize("name", sorted(GOOD_REQUESTS))
def test_every_kind_the_bridge_sends_is_accepted_with_a_wamid(box, name) -> None:
    SendRequest.model_validate(GOOD_REQUESTS[name])  # the one model takes it, too
    answer = post(box, GOOD_REQUESTS[name])
    assert answer.status_code == 200, answer.text
    sent = SendResponse.model_validate(answer.json())
    assert sent.wamid.startswith("wamid.") and sent.messaging_product == "whatsapp"
    assert sent.contacts[0].wa_id == "919000000001" and sent.contacts[0].input == "919000000001"
    assert box.meta.state.sent[sent.wamid].type == GOOD_REQUESTS[name]["type"]


def _error(answer: httpx.Response) -> tuple[int, int, str]:
    error = ErrorBody.model_validate(answer.json()).error
    assert error.message.startswith(f"(#{error.code}) ") and error.fbtrace_id
    assert error.type == "OAuthException"
    return answer.status_code, error.code, error.details


def test_a_wrong_or_missing_token_is_190_with_401(box) -> None:
    status, code, _ = _error(post(box, GOOD_REQUESTS["text"], token="nope"))
    assert (status, code) == (401, 190)
    meta = box.settings.meta
    bare = httpx.post(f"{box.base_url}/meta/v21.0/{meta.phone_number_id}/messages",
                      json=GOOD_REQUESTS["text"])
    assert _error(bare)[:2] == (401, 190)


def test_an_unknown_phone_number_id_or_version_is_100(box) -> None:
    status, code, details = _error(post(box, GOOD_REQUESTS["text"], node="999"))
    assert (status, code) == (400, 100) and "'999' does not exist" in details
    assert _error(post(box, GOOD_REQUESTS["text"], version="latest"))[1] == 100
    assert _error(post(box, GOOD_REQUESTS["text"], node="999", token="x"))[1] == 190  # token first


def _broken(change) -> dict:
    body = copy.deepcopy(GOOD_REQUESTS["template-positional"])
    change(body)
    return body


@pytest.mark.parametrize(("change", "code", "words"), [
    (lambda b: b.update(extra=1), 100, 'Unexpected key "extra"'),
    (lambda b: b.pop("messaging_product"), 100, "messaging_product is required"),
    (lambda b: b.update(messaging_product="sms"), 100, "messaging_product"),
    (lambda b: b.update(type="sticker"), 100, "type"),
    (lambda b: b["template"]["components"][1].update(type="BODY"), 100,
     "template[components][1][type] must be one of {header, body, button"),
    (lambda b: b["template"]["components"][2].update(index=12), 131009, "index"),
    (lambda b: b["template"]["components"][2].update(sub_type="copy_code"), 131009,
     "coupon_code"),
    (lambda b: b["template"]["components"][1]["parameters"][0].pop("text"), 131008,
     "[text] is required"),
    (lambda b: b["template"].pop("language"), 131008, "template[language] is required"),
    (lambda b: b.update(type="text"), 131008, "text is required"),
    (lambda b: b.update(to="not-a-number"), 100, "not a phone number"),
])
def test_bodies_are_validated_as_meta_does(box, change, code, words) -> None:
    status, got, details = _error(post(box, _broken(change)))
    assert (status, got) == (400, code), details
    assert words in details


def test_media_needs_exactly_one_of_id_and_link_and_known_ids(box) -> None:
    body = copy.deepcopy(GOOD_REQUESTS["image"])
    body["image"]["id"] = "123"
    assert "exactly one of id or link" in _error(post(box, body))[2]
    del body["image"]["link"]
    assert _error(post(box, body))[1:] == (131009, "media id 123 does not exist")
    body["image"]["id"] = box.meta.add_media(b"\xff\xd8\xff", "image/jpeg")
    assert post(box, body).status_code == 200


def test_malformed_json_is_100(box) -> None:
    meta = box.settings.meta
    answer = httpx.post(f"{box.base_url}/meta/v21.0/{meta.phone_number_id}/messages",
                        content=b"{nope", headers={"Authorization": f"Bearer {meta.token}",
                                                   "Content-Type": "application/json"})
    assert _error(answer)[1:] == (100, "The request body is not valid JSON")


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    (template("nope"), 404, 132001, "template name (nope) does not exist in en"),
    (template("order_update", "en"), 404, 132001, "does not exist in en"),
    (template("waiting"), 404, 132001, "pending"),
    (template("tired"), 400, 132015, "paused"),
    (template("welcome_named", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "Ann", "parameter_name": "first_name"}]}]), 400, 132000,
     "localizable_params (1) does not match the expected number of params (2)"),
    (template("welcome_named", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "Ann", "parameter_name": "first_name"},
        {"type": "text", "text": "X", "parameter_name": "coupon"}]}]), 400, 132012,
     "parameter_name code is missing"),
    (template("welcome_named", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "Ann"}, {"type": "text", "text": "X"}]}]), 400, 132012,
     "needs parameter_name"),
    (template("where"), 400, 132000, "header is LOCATION"),
    (template("where", components=[{"type": "header", "parameters": [
        {"type": "image", "image": {"link": "https://x.example/a.png"}}]}]), 400, 132012,
     "expected LOCATION, received IMAGE"),
    (template("offer", components=[
        {"type": "header", "parameters": [{"type": "image",
                                           "image": {"link": "https://x.example/a.png"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ann"}]},
        {"type": "button", "sub_type": "copy_code", "index": 0,
         "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]},
        {"type": "button", "sub_type": "url", "index": 1,
         "parameters": [{"type": "text", "text": "x"}]}]), 400, 132000, "has an expiration"),
    (template("cards", components=[{"type": "body", "parameters": [
        {"type": "text", "text": "Ann"}]}]), 400, 132000, "number of cards (0)"),
])
def test_templates_are_checked_against_the_mocks_own(box, body, status, code, words) -> None:
    got = _error(post(box, body))
    assert got[:2] == (status, code), got
    assert words in got[2]


def test_button_parameters_follow_the_template(box) -> None:
    body = order_update()
    del body["template"]["components"][2]  # the URL button's suffix
    assert _error(post(box, body))[1:] == (
        132000, "buttons: number of params does not match: button at index 0 (URL) needs a "
        "parameter")
    body = order_update()
    body["template"]["components"][3]["index"] = 5
    assert "no button at index 5" in _error(post(box, body))[2]


def test_refusals_are_counted_by_code(box) -> None:
    before = box.meta.state.refused[132001]
    post(box, template("nope"))
    assert box.meta.state.refused[132001] == before + 1
    stats = httpx.get(box.urls()["meta_stats"]).json()
    assert stats["refused"]["132001"] >= 1 and stats["accepted"] >= 1


def test_the_bridge_reads_the_mocks_answers_with_the_one_model(box) -> None:
    good = post(box, GOOD_REQUESTS["text"])
    assert read_answer(good.status_code, good.content).wamid == good.json()["messages"][0]["id"]
    bad = post(box, template("tired"))
    answer = read_answer(bad.status_code, bad.content)
    assert answer.error is not None and answer.error.code == 132015 and not answer.rate_limited
    assert read_answer(502, b"<html>Bad gateway</html>").unreadable == "HTTP 502, HTML (24 bytes)"


def test_rate_limit_at_the_configured_mps(tmp_path) -> None:
    settings = SandboxSettings(templates=write_templates(tmp_path / "t"), store_callbacks=False,
                               meta=MetaSettings(mps=0.001, burst=5))
    with RunningSandbox(settings) as sandbox:
        codes = [post(sandbox, GOOD_REQUESTS["text"]).status_code for _ in range(12)]
        state = sandbox.meta.state
        assert codes.count(200) == state.accepted and state.refused[130429] == codes.count(400)
        assert state.accepted == 5  # the burst; at 0.001/s nothing refills meanwhile
        answer = post(sandbox, GOOD_REQUESTS["text"])
        if answer.status_code == 400:
            error = read_answer(answer.status_code, answer.content)
            assert error.rate_limited and error.error is not None
            assert error.error.code == 130429
        assert state.max_in_window(1.0) == 5 and sum(state.per_second()) == 5


def test_duplicates_are_counted_by_biz_opaque_callback_data(box) -> None:
    body = dict(GOOD_REQUESTS["text"], biz_opaque_callback_data="i|1|2|3|dup")
    for _ in range(2):
        assert post(box, body).status_code == 200
    assert box.meta.state.duplicates()["i|1|2|3|dup"] == 2


def _box(tmp_path, **meta) -> RunningSandbox:
    return RunningSandbox(SandboxSettings(templates=write_templates(tmp_path / "t"),
                                          store_callbacks=False,
                                          meta=MetaSettings(mps=0, **meta)))


def test_faults_html_500_and_hang(tmp_path) -> None:
    with _box(tmp_path, faults={"html": 1.0}) as sandbox:
        answer = post(sandbox, GOOD_REQUESTS["text"])
        assert answer.status_code == 502 and answer.headers["content-type"].startswith(
            "text/html")
        assert read_answer(answer.status_code, answer.content).unreadable == (
            f"HTTP 502, HTML ({len(answer.content)} bytes)")
        assert sandbox.meta.state.accepted == 0 and sandbox.meta.state.faults["html"] == 1
    with _box(tmp_path, faults={"500": 1.0}) as sandbox:
        assert _error(post(sandbox, GOOD_REQUESTS["text"]))[:2] == (500, 131000)
    with _box(tmp_path, faults={"hang": 1.0}, hang_seconds=1.5) as sandbox:
        with pytest.raises(httpx.ReadTimeout):
            meta = sandbox.settings.meta
            httpx.post(f"{sandbox.base_url}/meta/v21.0/{meta.phone_number_id}/messages",
                       json=GOOD_REQUESTS["text"], timeout=0.3,
                       headers={"Authorization": f"Bearer {meta.token}"})
        assert sandbox.meta.state.accepted == 1  # sent, though the client never heard


def test_fail_rates_sync_in_the_answer_async_by_status(tmp_path) -> None:
    with _box(tmp_path, fail_rates={132015: 1.0}) as sandbox:
        assert _error(post(sandbox, GOOD_REQUESTS["text"]))[1] == 132015
    with _box(tmp_path, fail_rates={131026: 1.0}) as sandbox:
        answer = post(sandbox, GOOD_REQUESTS["text"])
        assert answer.status_code == 200
        wamid = answer.json()["messages"][0]["id"]
        assert sandbox.meta.state.sent[wamid].failure == 131026


def test_the_pair_rate_limit_is_131056(tmp_path) -> None:
    with _box(tmp_path, pair_interval=60.0) as sandbox:
        assert post(sandbox, GOOD_REQUESTS["text"]).status_code == 200
        assert _error(post(sandbox, GOOD_REQUESTS["text"]))[1] == 131056
        other = dict(GOOD_REQUESTS["text"], to="919000000002")
        assert post(sandbox, other).status_code == 200
        answer = read_answer(*(lambda r: (r.status_code, r.content))(
            post(sandbox, GOOD_REQUESTS["text"])))
        assert answer.rate_limited


def test_requests_per_wamid_show_a_message_sent_twice(box) -> None:
    body = dict(GOOD_REQUESTS["text"], biz_opaque_callback_data="i|1|2|3|twice")
    wamids = [post(box, body).json()["messages"][0]["id"] for _ in range(2)]
    counts = box.meta.state.requests_per_wamid()
    assert counts[wamids[0]] == counts[wamids[1]] == 2
    assert box.meta.state.requests_by_key["i|1|2|3|twice"] == 2


def test_a_client_that_leaves_mid_request_is_counted_not_a_traceback(box, caplog) -> None:
    import socket
    import time

    before = box.disconnects.count
    host, port = box.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(f"POST /meta/v21.0/{box.settings.meta.phone_number_id}/messages HTTP/1.1"
                    f"\r\nHost: x\r\nContent-Length: 500\r\nAuthorization: Bearer "
                    f"{box.settings.meta.token}\r\n\r\n{{\"a\":".encode())
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while box.disconnects.count == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.disconnects.count == before + 1
    assert not [r for r in caplog.records if "Exception in ASGI" in r.getMessage()]

"""The Cloud API send model: what it accepts, how Meta's refusals read, answers, signatures."""

from __future__ import annotations

import json

import pytest

from ctwa.wire.cloudapi import (
    ERRORS,
    RATE_LIMIT_CODES,
    SendRequest,
    error_body,
    new_wamid,
    parse_request,
    read_answer,
    sign,
    signature_matches,
    status_error,
    success_body,
)
from tests.sandbox.templates import GOOD_REQUESTS


@pytest.mark.parametrize("name", sorted(GOOD_REQUESTS))
def test_every_kind_round_trips_unchanged(name) -> None:
    model = SendRequest.model_validate(GOOD_REQUESTS[name])
    assert model.to_wire() == GOOD_REQUESTS[name]
    assert json.loads(model.to_json()) == GOOD_REQUESTS[name]


def test_type_defaults_to_text_as_on_meta() -> None:
    model, problems = parse_request({"messaging_product": "whatsapp", "to": "1",
                                     "text": {"body": "hi"}})
    assert model is not None and model.type == "text" and not problems


@pytest.mark.parametrize(("body", "expected"), [
    ([], (100, "The request body must be a JSON object.")),
    ({"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {}},
     (100, "Param image must have exactly one of id or link.")),
    ({"messaging_product": "whatsapp", "to": "1", "type": "audio",
      "audio": {"link": "https://a.example/x.ogg", "caption": "no"}},
     (100, 'Unexpected key "caption" on param "audio".')),
    ({"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "x"},
      "image": {"link": "https://a.example/x.png"}},
     (100, 'Unexpected key "image" on a message of type text.')),
    ({"messaging_product": "whatsapp", "to": "1", "type": "template", "template": {
        "name": "t", "language": {"code": "en"}, "components": [
            {"type": "button", "sub_type": "copy_code", "index": 0, "parameters": [
                {"type": "coupon_code", "coupon_code": "X" * 16}]}]}},
     (131009, "Param template[components][0][parameters][0][coupon_code] is too long "
              "(at most 15).")),
    ({"messaging_product": "whatsapp", "to": "1", "type": "template", "template": {
        "name": "t", "language": {"code": "en"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "a",
                                             "parameter_name": "First Name"}]}]}},
     (131009, "Param template[components][0][parameters][0][parameter_name] is not valid.")),
])
def test_refusals_read_as_metas(body, expected) -> None:
    model, problems = parse_request(body)
    assert model is None and problems[0] == expected
    assert not any("pydantic" in text or "Value error" in text for _, text in problems)


def _template(components: list) -> dict:
    return {"messaging_product": "whatsapp", "to": "1", "type": "template",
            "template": {"name": "t", "language": {"code": "en"}, "components": components}}


@pytest.mark.parametrize(("components", "expected"), [
    ([{"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer",
                                                     "limited_time_offer": {
                                                         "expiration_time_ms": "soon"}}]}],
     "Param template[components][0][parameters][0][limited_time_offer][expiration_time_ms] "
     "must be an integer."),
    ([{"type": "carousel", "cards": [{"card_index": 0, "components": [
        {"type": "body", "parameters": [{"type": "text"}]}]}]}],
     "The parameter template[components][0][cards][0][components][0][parameters][0][text] is "
     "required."),
    ([{"type": "header", "parameters": [{"type": "image"}]}],
     "The parameter template[components][0][parameters][0][image] is required."),
    ([{"type": "body", "parameters": [{"type": "txt", "text": "a"}]}],
     "Param template[components][0][parameters][0][type] must be one of {text, currency, "
     "date_time}"),
])
def test_paths_follow_the_document_not_pydantics_union_tags(components, expected) -> None:
    assert parse_request(_template(components))[1][0][1] == expected


def test_bodies_and_codes() -> None:
    error = error_body(132000, "body: 1 vs 2")["error"]
    assert error["message"] == ("(#132000) Number of parameters does not match the expected "
                                "number of params")
    assert error["error_data"] == {"messaging_product": "whatsapp", "details": "body: 1 vs 2"}
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert ERRORS[190].http_status == 401 and ERRORS[131026].delivery == "async"
    assert {4, 80007, 130429, 131056} == RATE_LIMIT_CODES
    assert status_error(131047)["title"] == "Re-engagement message"
    wamid = new_wamid()
    assert wamid.startswith("wamid.") and wamid != new_wamid()
    body = success_body("+919000000001", wamid)
    assert body["contacts"] == [{"input": "+919000000001", "wa_id": "919000000001"}]


@pytest.mark.parametrize(("status", "body", "words"), [
    (200, b'{"messaging_product": "whatsapp"}', "HTTP 200, JSON without messages[0].id"),
    (400, b'{"oops": 1}', "HTTP 400, JSON without error.code"),
    (200, b"", "HTTP 200, not JSON (0 bytes)"),
    (503, b"  <html></html>", "HTTP 503, HTML (15 bytes)"),
])
def test_unreadable_answers_are_a_reason_not_an_exception(status, body, words) -> None:
    assert read_answer(status, body).unreadable == words


def test_rate_limited_answers_are_marked() -> None:
    answer = read_answer(400, json.dumps(error_body(130429)).encode())
    assert answer.rate_limited and answer.error is not None and answer.error.code == 130429
    assert not read_answer(400, json.dumps(error_body(131009)).encode()).rate_limited


def test_signatures() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signature_matches("s3cret", body, header)
    assert signature_matches("s3cret", body, f" {header} ")
    assert not signature_matches("other", body, header)
    assert not signature_matches("s3cret", body + b" ", header)
    assert not signature_matches("s3cret", body, None) and not signature_matches("s3cret", body,
                                                                                 "")


def test_metas_error_texts_are_made_safe_where_they_enter() -> None:
    body = error_body(100, "bad \x1b[31mred\x1b[0m\nnext line " + "x" * 5000)
    body["error"]["message"] = "(#100) \x07bell"
    answer = read_answer(400, json.dumps(body).encode())
    assert answer.error is not None
    assert "\x1b" not in answer.error.details and "\\x1b[31m" in answer.error.details
    assert "\n" not in answer.error.details and len(answer.error.details) < 1100
    assert answer.error.message == "(#100) \\x07bell" and answer.error.code == 100

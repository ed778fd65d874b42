"""A callback body of any shape (arrays, strings, nested wrappers, 1 MB) gets a diagnosis from
lint, the listener, the store's extraction and the round trip: never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.callbacks.listener import MAX_BODY, Listener
from ctwa.roundtrip.analyze import analyze
from ctwa.store.extract import callback_records
from ctwa.wire.callbacks import find_wrapper
from ctwa.wire.lint import lint_document

KEYS = st.sampled_from(["statuses", "from", "payload", "url", "body", "data", "msgId",
                        "status", "timestamp", "ts", "error", "code", "title", "type", "text",
                        "context", "id", "entry", "wabaNumber", "payloadVersion", "x"])
SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**15) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=30) | st.sampled_from(
    ["sent", "delivered", "failed", "1700000000", "2023-06-05 13:16:18", "1|2|3|4"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=5), max_leaves=25)


def _wrapped(doc):
    return st.sampled_from([doc, {"url": "http://x/status", "payload": doc}, {"body": doc},
                            {"data": {"payload": doc}}, [doc], json.dumps(doc),
                            {"payload": json.dumps(doc)}])


BODIES = JSON.flatmap(_wrapped)


def _rows(doc, kind):
    return [{"id": i, "at": 1.0, "route": "/status", "kind": r.kind, "msg_id": r.msg_id,
             "status": r.status, "code": r.code, "valid": r.valid,
             "problems": json.dumps(r.problems), "body": r.body}
            for i, r in enumerate(callback_records(doc, kind, "/status", 1.0, "{}",
                                                   ["$: wrong"]))]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(BODIES)
def test_lint_extract_and_analyze_take_any_shape(doc) -> None:
    for kind in (None, "status", "inbound"):
        result = lint_document(doc, kind)
        assert result.ok or result.errors[0].message  # a diagnosis, in words
        rows = _rows(doc, kind or result.kind)
        trip = analyze({"1|2|3|4": 0.0}, [r for r in rows if r["msg_id"] == "1|2|3|4"],
                       others=[r for r in rows if r["msg_id"] != "1|2|3|4"],
                       kinds={"1|2|3|4": "template"})
        assert sum(trip.furthest.values()) == 1
        assert all(set(d) == {"cause", "seen", "meaning", "fix"} for d in trip.diagnoses)
    find_wrapper(doc)


@pytest.fixture(scope="module")
def client():
    """A real listener on 127.0.0.1 and an httpx client bound to it."""
    import httpx

    from tests.conftest import LiveServer

    with LiveServer(Listener().app()) as server, httpx.Client(base_url=server.url,
                                                              timeout=10) as http:
        yield http


@settings(max_examples=60, deadline=None, derandomize=True)
@given(BODIES)
def test_the_listener_answers_any_shape_with_a_diagnosis(client, doc) -> None:
    for route in ("/", "/status", "/inbound"):
        answer = client.post(route, content=json.dumps(doc).encode())
        assert answer.status_code in (200, 400), answer.text
        body = answer.json()
        assert body["status"] in ("accepted", "invalid")
        if body["status"] == "invalid":
            assert body.get("error") or body.get("problems")


def test_the_shapes_real_middlewares_post_are_named(client) -> None:
    status = {"payloadVersion": "0.1", "statuses": [
        {"msgId": "1|2|3|4", "status": "sent", "timestamp": "1700000000"}]}
    wrapped = client.post("/", json={"url": "http://x/status", "payload": status}).json()
    assert "wrapped in `{url, payload}`" in wrapped["problems"][0]["message"]
    nested = client.post("/status", json={"data": {"payload": json.dumps(status)}}).json()
    assert "wrapped in `{data}` as a JSON string" in nested["problems"][0]["message"]
    array = client.post("/", json=[status, status]).json()
    assert "a JSON array of 2 item(s), not one callback" in array["error"]
    text = client.post("/", json="hello").json()
    assert "a JSON string, not a callback object" in text["error"]
    query = client.post("/status?a=undefined&b=", json=status).json()
    messages = [p["message"] for p in query["problems"]]
    assert any("`a=undefined`" in m for m in messages)
    assert any("`b= (empty)`" in m for m in messages)


def test_a_megabyte_body_is_refused_in_words_and_just_under_it_is_read(client) -> None:
    big = {"payloadVersion": "0.1", "statuses": [
        {"msgId": "1|2|3|4", "status": "sent", "timestamp": "1700000000", "x": "a" * MAX_BODY}]}
    over = client.post("/status", content=json.dumps(big).encode())
    assert over.status_code == 413 and "over" in over.json()["error"]
    big["statuses"][0]["x"] = "a" * (MAX_BODY - 200)
    under = client.post("/status", content=json.dumps(big).encode())
    assert under.status_code == 200
    assert "unknown key `x`" in under.json()["problems"][0]["message"]
    deep: object = {"statuses": []}
    for _ in range(200):
        deep = {"payload": deep}
    nested = client.post("/", content=json.dumps(deep).encode())
    assert nested.status_code == 400

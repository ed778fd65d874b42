"""Fixture parsing: every form, references, the volume shorthand, errors with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.callbacks.fixtures import _Context, load_fixture, parse_duration
from ctwa.callbacks.replay import group_statuses, validate
from ctwa.infra.errors import InputError
from tests.conftest import EXAMPLES


def fixture(tmp_path: Path, text: str):
    path = tmp_path / "f.yaml"
    path.write_text(text)
    return load_fixture(path)


def test_every_example_fixture_is_valid() -> None:
    for path in sorted((EXAMPLES / "callbacks").glob("*.yaml")):
        events = load_fixture(path).events
        assert events and validate(events) == [], path


def test_status_events_and_references(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CAMPAIGN", "42")
    loaded = fixture(tmp_path, """
vars: {prefix: "1|2"}
events:
  - name: first
    status: sent
    msgId: "{{ prefix }}|{{ env.CAMPAIGN }}|{{ env.MISSING | 9 }}"
    timestamp: "1647441774"
  - status: failed
    msgId: "{{ first.msgId }}"
    error: {code: 1004}
    after: 250ms
  - status: clicked
    msgId: "{{ first.msgId }}"
    url: https://x.example/a
""")
    sent, failed, clicked = loaded.events
    assert sent.body == {"payloadVersion": "0.1", "statuses": [
        {"msgId": "1|2|42|9", "status": "sent", "timestamp": "1647441774"}]}
    assert failed.body["statuses"][0]["error"] == {
        "code": 1004, "title": "Too many send requests to phone numbers"}
    assert failed.after == 0.25 and failed.msg_id == "1|2|42|9"
    assert clicked.body["statuses"][0]["url"] == "https://x.example/a"
    assert validate(loaded.events) == []


def test_builtins_make_fresh_values(tmp_path) -> None:
    loaded = fixture(tmp_path, """
events:
  - {status: sent, msgId: "{{ msg_id }}"}
  - {status: sent, msgId: "{{ msg_id }}"}
  - {raw: {id: "{{ uuid }}", at: "{{ now }}"}, to: inbound}
""")
    a, b, raw = loaded.events
    assert a.msg_id != b.msg_id and len(a.msg_id.split("|")) == 5
    assert len(raw.body["id"]) == 36 and raw.body["at"].isdigit()


def test_inbound_forms(tmp_path) -> None:
    loaded = fixture(tmp_path, """
defaults: {from: "919876543210", wabaNumber: "9199"}
events:
  - {inbound: text, text: hello, context: "1|2|3|4"}
  - {inbound: file, file: {mediaURL: "https://x/d.pdf"}}
  - {inbound: location, location: {latitude: "1.5", longitude: "2.5"}}
""")
    text, document, location = loaded.events
    assert text.body["text"] == {"body": "hello"} and text.body["context"] == {"id": "1|2|3|4"}
    assert document.body["document"] == {"mediaURL": "https://x/d.pdf"}
    assert location.body["type"] == "location"
    assert validate(loaded.events) == []


def test_volume_shorthand(tmp_path) -> None:
    loaded = fixture(tmp_path, """
events:
  - messages: 200
    statuses: [sent, delivered, read]
    failure_rate: 0.1
    reply_rate: 0.2
    seed: 1
""")
    statuses = [e for e in loaded.events if e.target == "status"]
    failed = [e for e in statuses if e.body["statuses"][0]["status"] == "failed"]
    replies = [e for e in loaded.events if e.target == "inbound"]
    assert 5 < len(failed) < 40 and 15 < len(replies) < 70
    assert len({e.msg_id for e in statuses}) == 200
    assert validate(loaded.events) == []


@pytest.mark.parametrize(("text", "line", "words"), [
    ("events:\n  - status: sent\n    msgId: '{{ frist.msgId }}'\n", 3, "unknown reference"),
    ("vars: {user: 1}\nevents:\n  - status: sent\n    msgId: '{{ usr }}'\n", 4,
     "did you mean 'user'"),
    ("events:\n  - status: sending\n    msgId: x\n", 2, "'sending' is not a status"),
    ("events:\n  - status: sent\n", 2, "needs msgId"),
    ("events:\n  - status: failed\n    msgId: x\n    error: {code: 42}\n", 4,
     "42 is not a callback error code"),
    ("events:\n  - status: sent\n    msgId: x\n    mesage: y\n", 4,
     "not a field of a status event"),
    ("events:\n  - inbound: sticker\n", 2, "'sticker' is not an inbound type"),
    ("events:\n  - inbound: text\n    from: '1'\n", 2, "needs 'wabaNumber'"),
    ("events:\n  - status: sent\n    msgId: x\n    after: soon\n", 4, "not a duration"),
    ("events:\n  - status: sent\n    inbound: text\n", 2, "exactly one of"),
    ("events:\n  - name: a\n    status: sent\n    msgId: x\n  - status: read\n"
     "    msgId: '{{ a.msgid }}'\n", 6, "did you mean 'msgId'"),
    ("events:\n  - status: sent\n    msgId: '{{ env.NOPE_NOT_SET }}'\n", 3, "is not set"),
])
def test_errors_name_file_line_and_field(tmp_path, text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as info:
        fixture(tmp_path, text)
    message = str(info.value)
    assert f"f.yaml:{line}" in message and words in message, message


def test_not_a_fixture(tmp_path) -> None:
    for text in ("- a\n", "events: []\n", "event: []\n", "events: [\n"):
        with pytest.raises(InputError):
            fixture(tmp_path, text)


def test_raw_events_are_validated_too(tmp_path) -> None:
    loaded = fixture(tmp_path, "events:\n  - raw: {statuses: [{msgId: x, status: Sent}]}\n")
    problems = validate(loaded.events)
    assert problems and "f.yaml:2" in problems[0]


@pytest.mark.parametrize(("value", "seconds"), [("500ms", 0.5), ("2s", 2), ("1.5s", 1.5),
                                                ("1m", 60), (250, 0.25)])
def test_durations(value, seconds) -> None:
    assert parse_duration(value, "x") == seconds


def test_grouping_keeps_order_and_respects_waits(tmp_path) -> None:
    loaded = fixture(tmp_path, """
events:
  - {status: sent, msgId: a}
  - {status: sent, msgId: b}
  - {status: sent, msgId: c}
  - {status: delivered, msgId: a, after: 1s}
  - {inbound: text, text: hi, from: "1", wabaNumber: "2"}
  - {status: read, msgId: a}
""")
    grouped = group_statuses(loaded.events, 2)
    assert [[s["msgId"] for s in g.body.get("statuses", [])] for g in grouped] == [
        ["a", "b"], ["c"], ["a"], [], ["a"]]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}| .abenvxmsg_idnowuu12")), max_size=40))
def test_references_never_crash(text: str) -> None:
    ctx = _Context(Path("f.yaml"), {"x": "1"})
    ctx.named["a"] = {"b": "2"}
    try:
        value = ctx.resolve(text, 3, "field")
    except InputError as exc:
        assert str(exc).startswith("f.yaml:3: field")
        return
    assert isinstance(value, str)


def test_defaults_fill_what_each_kind_can_take(tmp_path) -> None:
    loaded = fixture(tmp_path, """
defaults: {after: 100ms, timestamp: "1700000000", from: "919876543210", wabaNumber: "9199"}
events:
  - {status: sent, msgId: a}
  - {status: read, msgId: a, after: 0}
  - {inbound: text, text: hi, from: "911111111111"}
""")
    sent, read, reply = loaded.events
    assert sent.after == 0.1 and read.after == 0
    assert sent.body["statuses"][0]["timestamp"] == "1700000000"
    assert "from" not in sent.body["statuses"][0]
    assert reply.body["from"] == "911111111111" and reply.body["wabaNumber"] == "9199"

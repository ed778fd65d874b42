"""Callbacks as real middlewares break them: each named with the path of the field that is
wrong, the key as written, and a fix (issue 23)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.wire.callbacks import check_callback_url, find_wrapper
from ctwa.wire.codes import CALLBACK_ERRORS, closest_callback_code, contradicting_title
from ctwa.wire.lint import _vocabulary, lint_document


def status(**entry: Any) -> dict[str, Any]:
    base = {"msgId": "1|2|3|4", "status": "delivered", "timestamp": "1647441774"}
    base.update(entry)
    return {"payloadVersion": "0.1", "statuses": [base]}


def inbound(**over: Any) -> dict[str, Any]:
    doc = {"payloadVersion": "0.1", "from": "919999999999", "wabaNumber": "9199",
           "timestamp": "1647441774", "type": "text", "text": {"body": "hi"}}
    doc.update(over)
    return doc


def problems(doc: Any, kind: str | None = None) -> list[tuple[str, str, str, str | None]]:
    return [(p.severity, p.path, p.message, p.hint) for p in lint_document(doc, kind).problems]


@pytest.mark.parametrize("kind", [None, "status"])
def test_a_wrapped_callback_is_named_with_its_envelope(kind) -> None:
    found = problems({"url": "https://ct.example/status?a=1", "payload": status()}, kind)
    assert found == [("error", "$", "the callback is wrapped in `{url, payload}`: CleverTap "
                      "reads the body as the callback itself, so it drops this one",
                      "post the inner object (the value of `payload`) as the body")]


def test_the_inner_callbacks_own_problems_keep_their_paths_under_the_envelope() -> None:
    doc = {"url": "x", "payload": status(timestamp="2023-06-05 13:16:18")}
    paths = [p for _, p, _, _ in problems(doc)]
    assert paths == ["$", "$.payload.statuses[0].timestamp"]
    assert lint_document(doc).kind == "status"


def test_a_suggestion_is_never_the_word_itself() -> None:
    bare = {"url": "x", "payloadVersion": "0.1", "statuses": [
        {"msgId": "1|2|3|4", "status": "sent", "timestamp": "1700000000"}]}
    (found,) = [p for p in problems(bare, "status") if p[1] == "$.url"]
    assert found[3] == "remove it: `url` is a key elsewhere in the status format, not at " \
        "this level"
    image = inbound(type="image", image={"mediaURL": "https://x/a.png", "mimeType": "a/b"})
    del image["text"]
    (hint,) = [p[3] for p in problems(image) if p[1] == "$.image.mimeType"]
    assert hint == "did you mean `mimetype`? (keys are case-sensitive)"


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.sampled_from(_vocabulary("status") + _vocabulary("inbound")))
def test_no_known_key_is_suggested_as_itself(word) -> None:
    doc = status()
    doc["statuses"][0][word] = "x"
    for _, _, message, hint in problems(doc, "status"):
        if message.startswith(f"unknown key `{word}`"):
            assert hint != f"did you mean `{word}`?"


def test_a_date_string_timestamp_is_named_where_it_is_with_its_epoch_seconds() -> None:
    (found,) = problems(inbound(timestamp="2023-06-05 13:16:18"))
    assert found[1] == "$.timestamp" and "is a date string" in found[2]
    assert found[3] == 'write "1685970978" (that time as epoch seconds, read as UTC)'
    missing = inbound()
    del missing["timestamp"]
    assert [p[1] for p in problems(missing)] == ["$.timestamp"]
    (in_status,) = problems(status(timestamp="2023-06-05T13:16:18Z"))
    assert in_status[1] == "$.statuses[0].timestamp" and "1685970978" in in_status[3]


def test_a_ts_key_is_named_as_written() -> None:
    doc = status(status="clicked", url="https://x")
    del doc["statuses"][0]["timestamp"]
    doc["statuses"][0]["ts"] = 1435322805
    assert {p[1] for p in problems(doc)} == {"$.statuses[0].ts"}


def test_an_out_of_range_code_gets_the_tables_closest_meaning() -> None:
    (found,) = problems(status(status="failed", error={"code": 404, "title": "Not Found"}))
    assert found[1] == "$.statuses[0].error.code"
    assert found[2] == "failure code 404 is not in CleverTap's table (1000-1010)"
    assert found[3].startswith('use 1009 ("Other"), the closest meaning in the table: 404 '
                               "looks like an HTTP status")
    (by_title,) = problems(status(status="failed", error={"code": 7, "title": "Blacklisted"}))
    assert by_title[3].startswith('use 1006 ("Phone number is blacklisted")')
    assert closest_callback_code(131047)[0] == 1009  # no Meta table given: Other
    assert closest_callback_code(2002)[0] == 1002


def test_a_title_that_contradicts_its_code_names_the_code_it_belongs_to() -> None:
    """ERRATA 19: the spec's own failure sample pairs 1004 with "Invalid phone number."."""
    result = lint_document(status(status="failed", error={"code": 1004,
                                                          "title": "Invalid phone number."}))
    assert result.ok
    (warning,) = result.warnings
    assert warning.errata == 19 and warning.path == "$.statuses[0].error.title"
    assert "is the meaning of 1002" in warning.message and "send code 1002" in warning.hint
    assert contradicting_title(1006, "too many send requests") == 1004
    assert contradicting_title(1010, "WhatsApp Message Blocked by Meta") is None
    assert contradicting_title(1009, "anything at all") is None
    for code, title in CALLBACK_ERRORS.items():  # the table's own titles agree with it
        assert contradicting_title(code, title) is None, code


def test_a_missing_msgid_is_not_an_unknown_one() -> None:
    doc = status()
    del doc["statuses"][0]["msgId"]
    (found,) = problems(doc)
    assert found[1] == "$.statuses[0].msgId" and "a missing msgId, not an unknown one" in \
        found[2]
    assert "None" not in found[2]


@pytest.mark.parametrize(("url", "keys"), [
    ("https://wzrkt.com/a/b?a=undefined", ["?a"]),
    ("https://wzrkt.com/a/b?a=&b=null&c=ok", ["?a", "?b"]),
    ("https://wzrkt.com/a/b?a=W9R-XXX", []),
    ("https://wzrkt.com/a/b", []),
])
def test_callback_urls_with_empty_or_undefined_query_values(url, keys) -> None:
    assert [p.path for p in check_callback_url(url)] == keys


def test_wrappers_are_found_nested_and_as_json_strings_but_not_in_callbacks() -> None:
    inner = status()
    assert find_wrapper({"data": {"payload": inner}}).inner == inner
    assert find_wrapper({"body": json.dumps(inner)}).encoded
    assert find_wrapper(inner) is None
    assert find_wrapper({"payload": {"nothing": 1}}) is None
    assert find_wrapper({"payload": inner, "unrelated": 1}) is None  # not an envelope


def test_lint_names_the_wrapper_on_the_command_line(cli, tmp_path) -> None:
    path = tmp_path / "callback.json"
    path.write_text(json.dumps({"url": "https://ct.example/status", "payload": status()}))
    for args in ((), ("--kind", "status")):
        result = cli("lint", str(path), *args)
        assert result.exit_code == 1
        text = result.stdout + result.stderr
        assert "(status)" in text and "wrapped in `{url, payload}`" in text
        assert "did you mean `url`" not in text and "payloadVersion`?" not in text

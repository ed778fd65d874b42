"""ERRATA variants are recognised and named; bad documents get path-precise errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.infra.errors import InputError
from ctwa.wire.lint import InvalidDocument, lint_document, lint_paths, read_document
from ctwa.wire.outbound import validation_payload
from tests.wire.documents import inbound, status


def template(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "payloadVersion": 0.1, "to": "919999999999", "wabaNumber": "919999999998",
        "isTemplate": True, "msgId": "1|2|3|4|5",
        "template": {"namespace": "order_update", "languageCode": "en"},
        "components": [{"type": "body", "body": {"text": "Hi John",
                                                 "parameters": [{"type": "text",
                                                                 "text": "John"}]}}],
    }
    doc.update(over)
    return doc


def errata_of(result) -> list[int | None]:
    return sorted((p.errata for p in result.problems), key=lambda e: e or 0)


# --- each ERRATA row -------------------------------------------------------------------------

def test_errata_1_lowercase_and_string_payload_version() -> None:
    doc = template()
    doc["payloadversion"] = "0.1"
    del doc["payloadVersion"]
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [1, 1]
    assert result.value.payloadVersion == 0.1


def test_errata_2_callback_version_spelling_and_number() -> None:
    doc = status()
    doc["payloadversion"] = 0.1
    del doc["payloadVersion"]
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [2, 2]
    assert result.value.payloadVersion == "0.1"


def test_errata_3_msg_id() -> None:
    doc = {"payloadVersion": 0.1, "to": "91", "wabaNumber": "91", "msg_id": "1|2|3|4",
           "type": "audio", "isTemplate": False, "audio": {"mediaURL": "https://x/a.mp3"}}
    result = lint_document(doc)
    assert result.kind == "freeform" and result.ok and errata_of(result) == [3]
    assert result.problems[0].path == "$.msg_id"


def test_errata_4_footertext() -> None:
    doc = template()
    doc["components"].append({"type": "footer", "footertext": "bye"})
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [4]
    assert result.problems[0].path == "$.components[1].footertext"


def test_errata_6_duplicate_button_index_is_an_error_naming_both_places() -> None:
    button = {"type": "button", "index": 0, "subType": "quickReply", "buttonText": "Yes"}
    doc = template()
    doc["components"] += [button, dict(button, buttonText="No")]
    result = lint_document(doc)
    assert not result.ok
    (error,) = result.errors
    assert error.errata == 6 and error.path == "$.components[2].index"
    assert "$.components[1]" in error.message


def test_errata_7_top_level_custom_props_moves_to_components() -> None:
    doc = template(customProps=[{"k": "v"}])
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [7]
    assert result.value.to_wire()["components"][-1] == {"customProps": [{"k": "v"}]}


def test_errata_8_inbound_file_object_and_mimetype() -> None:
    doc = inbound(type="file", file={"mediaURL": "https://x/d.pdf", "mimetype": ".pdf"})
    del doc["text"]
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [8, 8]
    assert result.value.to_wire()["document"] == {"mediaURL": "https://x/d.pdf",
                                                  "mimeType": ".pdf"}


def test_errata_9_misspelt_location_keys_and_numbers() -> None:
    doc = inbound(type="location", location={"lattitude": 2.45, "Longitude": "1.5"})
    del doc["text"]
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [9, 9, 9]
    assert result.value.location.latitude == "2.45"


def test_errata_11_clicked_case_and_ts() -> None:
    doc = status(status="CLICKED", url="https://x", ts=1435322805)
    del doc["statuses"][0]["timestamp"]
    result = lint_document(doc)
    assert result.ok and errata_of(result) == [11, 11, 12]


def test_errata_12_number_timestamp() -> None:
    result = lint_document(status(timestamp=1647441774))
    assert result.ok and errata_of(result) == [12]


def test_errata_13_wrapped_validation() -> None:
    result = lint_document({"body": validation_payload().to_wire()})
    assert result.kind == "validation" and result.ok and errata_of(result) == [13]


def test_errata_14_msg_id_without_pipes_is_a_warning() -> None:
    result = lint_document(template(msgId="abc"))
    assert result.ok and errata_of(result) == [14]


def test_string_error_code_in_failed_status_is_converted() -> None:
    doc = status(status="failed", error={"code": "1004", "title": "Too many"})
    result = lint_document(doc)
    assert result.ok and result.value.statuses[0].error.code == 1004
    assert [p.path for p in result.warnings] == ["$.statuses[0].error.code"]


def test_both_spellings_present_is_an_error() -> None:
    doc = template(payloadversion=0.1)
    result = lint_document(doc)
    assert not result.ok and result.errors[0].path == "$.payloadversion"


# --- path-precise errors ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d.pop("to"), "$.to", "missing required field `to`"),
        (lambda d: d["template"].pop("languageCode"), "$.template.languageCode", "missing"),
        (lambda d: d["components"][0]["body"].update(text=5), "$.components[0].body.text",
         "must be a string, got 5"),
        (lambda d: d["components"].append({"type": "header", "header": {
            "type": "image", "image": {"mediaUrl": "x"}}}),
         "$.components[1].header.image.mediaUrl", "unknown key `mediaUrl`"),
        (lambda d: d["components"].append({"type": "sticker"}), "$.components[1]",
         "unknown component"),
        (lambda d: d["components"].append({"type": "button", "index": 0, "subType": "copy_code",
                                           "buttonText": "Copy"}),
         "$.components[1]", "exactly one"),
        (lambda d: d.update(isTemplate="yes"), "$.isTemplate", "true"),
    ],
)
def test_bad_template_errors_name_the_path(mutate, path: str, words: str) -> None:
    doc = template()
    mutate(doc)
    result = lint_document(doc, "template")
    assert not result.ok
    assert any(p.path == path and words in p.message for p in result.errors), result.errors


def test_unknown_key_gets_a_did_you_mean_hint() -> None:
    doc = template()
    doc["wabaNumbr"] = "1"
    del doc["wabaNumber"]
    result = lint_document(doc, "template")
    unknown = [p for p in result.errors if p.path == "$.wabaNumbr"]
    assert unknown and unknown[0].hint == "did you mean `wabaNumber`?"


def test_bad_status_timestamp_and_code() -> None:
    doc = status(status="failed", timestamp="yesterday", error={"code": 42, "title": "x"})
    result = lint_document(doc)
    paths = {p.path for p in result.errors}
    assert paths == {"$.statuses[0].timestamp", "$.statuses[0].error.code"}


def test_undetectable_document_says_to_pass_kind() -> None:
    result = lint_document({"hello": "world"})
    assert result.kind is None and "--kind" in (result.errors[0].hint or "")


def test_read_document_raises_with_every_problem() -> None:
    with pytest.raises(InvalidDocument) as info:
        read_document({"statuses": []}, "status", "cb.json")
    assert "cb.json: $.statuses" in str(info.value)
    assert info.value.exit_code == 2


def test_unknown_meta_types_are_flagged_not_rejected() -> None:
    page = {"data": [{"name": "t", "language": "en", "status": "SHINY", "category": "NEW",
                      "components": [{"type": "BODY", "text": "hi"},
                                     {"type": "HOLOGRAM"},
                                     {"type": "BUTTONS", "buttons": [{"type": "TELEPORT"},
                                                                     {"type": "FLOW"}]}]}]}
    result = lint_document(page)
    assert result.ok
    assert len(result.warnings) == 5


# --- files -----------------------------------------------------------------------------------

def test_lint_paths_reports_broken_files_without_hiding_others(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps(template()))
    (tmp_path / "broken.json").write_text('{"msg_id": “x”}')
    (tmp_path / "multi.yaml").write_text("statuses: []\n---\n" + json.dumps(status()))
    (tmp_path / "notes.txt").write_text("ignored")
    results = {r.source.rsplit("/", 1)[-1]: r for r in lint_paths([tmp_path])}
    assert set(results) == {"good.json", "broken.json", "multi.yaml#1", "multi.yaml#2"}
    assert results["good.json"].ok and results["multi.yaml#2"].ok
    broken = results["broken.json"].errors[0]
    assert "broken.json: not valid JSON at line 1 column" in broken.message
    assert "typographic" in (broken.hint or "")
    assert not results["multi.yaml#1"].ok


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        lint_paths([tmp_path / "nope.json"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["to", "type", "statuses", "components", "from", "d",
                                       "status", "msgId", "body", "data", "x"]),
                      children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_lint_never_crashes_on_arbitrary_json(doc: Any) -> None:
    result = lint_document(doc)
    assert result.ok or result.errors
    for problem in result.problems:
        assert problem.path.startswith("$")

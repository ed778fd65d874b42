"""Lint on CleverTap upload requests is as strict as upload-users, and reads CleverTap's real
answers (a 200 that refuses records, the 401 body)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctwa.wire.lint import lint_document

FIXTURES = Path(__file__).parent / "fixtures"


def record(**profile) -> dict:
    return {"d": [{"identity": "u1", "type": "profile", "profileData": profile}]}


@pytest.mark.parametrize(("profile", "code", "field"), [
    ({"Phone": "+14155551234", "Email": "asha@"}, 515, "Email"),
    ({"Phone": "+14155551234", "Gender": "Woman"}, 514, "Gender"),
    ({"Phone": "14155551234"}, 516, "Phone"),
    ({"Phone": "+1415"}, 516, "Phone"),
    ({"Phone": 14155551234}, 516, "Phone"),
])
def test_upload_records_are_checked_like_upload_users(profile, code, field) -> None:
    result = lint_document(record(**profile))
    assert result.kind == "upload" and not result.ok
    (error,) = result.errors
    assert error.path == f"$.d[0].profileData.{field}"
    assert f"(CleverTap refuses the record: {code})" in error.message


@pytest.mark.parametrize("ts", ["2024-01-01", "1700000000", -5, 1.5, True])
def test_ts_must_be_epoch_seconds(ts) -> None:
    doc = record(Phone="+14155551234")
    doc["d"][0]["ts"] = ts
    (error,) = lint_document(doc).errors
    assert error.path == "$.d[0].ts" and "525" in error.message


def test_a_good_record_lints_clean() -> None:
    doc = record(Phone="+14155551234", Email="asha@example.com", Gender="F",
                 **{"MSG-whatsapp": True})
    doc["d"][0]["ts"] = 1700000000
    result = lint_document(doc)
    assert result.ok and not result.problems


def test_a_partial_answer_names_each_refused_record(cli) -> None:
    result = cli("lint", str(FIXTURES / "clevertap_upload_partial.json"))
    output = result.stdout + result.stderr
    assert result.exit_code == 0 and "(upload-response)" in output
    assert "record refused: 523 (missing identity)" in output


def test_the_401_body_is_recognised(cli) -> None:
    doc = json.loads((FIXTURES / "clevertap_upload_401.json").read_text())
    result = lint_document(doc)
    assert result.kind == "upload-response"
    (warning,) = result.warnings
    assert "CleverTap refused the request: Account ID is not valid (code 401)" in \
        warning.message


@pytest.mark.parametrize(("profile", "code", "field"), [
    ({"Employed": "Yes"}, 517, "Employed"),
    ({"Employment": "full time"}, 517, "Employment"),
    ({"Education": "University"}, 518, "Education"),
    ({"Married": True}, 519, "Married"),
    ({"Age": "28"}, 520, "Age"),
    ({"Age": -1}, 520, "Age"),
])
def test_demographic_values_clevertap_refuses(profile, code, field) -> None:
    (error,) = lint_document(record(Phone="+14155551234", **profile)).errors
    assert error.path == f"$.d[0].profileData.{field}"
    assert f"(CleverTap refuses the record: {code})" in error.message and error.hint


def test_the_values_clevertaps_own_snippets_write_pass() -> None:
    good = record(Phone="+14155551234", Employed="Y", Education="Graduate", Married="N",
                  Age=28)
    assert lint_document(good).ok


def test_a_numeric_identity_is_accepted_as_clevertap_processes_it() -> None:
    doc = record(Phone="+14155551234")
    doc["d"][0]["identity"] = 4
    assert lint_document(doc).ok
    from ctwa.wire.profiles import record_refusal

    assert record_refusal(doc["d"][0]) is None  # the sandbox takes it too
    doc["d"][0]["identity"] = True
    assert not lint_document(doc).ok

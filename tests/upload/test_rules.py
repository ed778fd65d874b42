"""Reading and checking the CSV: header rules, every per-row rejection, encodings, quoting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctwa.http import make_client
from ctwa.infra.errors import ExitCode
from ctwa.upload.rules import check_row, date_value, plan_columns
from ctwa.upload.run import Uploader, UploadOptions

HEADER = ["Identity", "Name", "Email", "Phone", "Gender", "MSG-whatsapp", "Score", "Joined"]


def rules(**kw):
    return plan_columns(HEADER, kw.pop("types", {"Score": "int", "Joined": "date"}),
                        kw.pop("dropped", set()), kw.pop("region", None))


def row(**over):
    values = dict(zip(HEADER, ["u1", "Ann", "ann@example.com", "+14155552671", "F", "TRUE",
                               "7", "2024-01-02"], strict=True))
    values.update(over)
    return [values[h] for h in HEADER]


def test_a_good_row_becomes_a_record() -> None:
    checked = check_row(rules(), 2, row())
    assert json.loads(checked.record) == {"identity": "u1", "type": "profile", "profileData": {
        "Name": "Ann", "Email": "ann@example.com", "Phone": "+14155552671", "Gender": "F",
        "MSG-whatsapp": True, "Score": 7, "Joined": "$D_1704153600"}}


def test_empty_cells_are_left_out_and_numbers_become_e164() -> None:
    checked = check_row(rules(region="in"), 2, row(Name="", Score="", Phone="098765 43210"))
    data = json.loads(checked.record)["profileData"]
    assert "Name" not in data and "Score" not in data and data["Phone"] == "+919876543210"


@pytest.mark.parametrize(("over", "words", "code"), [
    ({"Identity": ""}, "identity is empty", 523),
    ({"Identity": "x" * 120}, "under 120", None),
    ({"Phone": ""}, "Phone is empty", 516),
    ({"Phone": "4155552671"}, "--default-region", 516),
    ({"Phone": "+1415"}, "not a valid number", 516),
    ({"Phone": "+abc"}, "is not a phone number", 516),
    ({"Phone": "abc"}, "phone 'abc' is not a phone number", 516),
    ({"Email": "nope"}, "not an email address", 515),
    ({"Gender": "Q"}, "use M, F or O", 514),
    ({"MSG-whatsapp": "perhaps"}, "not TRUE/FALSE", None),
    ({"Score": "7.5"}, "not a whole number", None),
    ({"Joined": "yesterday"}, "not an ISO date", None),
    ({"Name": "n" * 600}, "at most 512", None),
])
def test_each_rejection_names_field_and_fix(over, words: str, code) -> None:
    checked = check_row(rules(), 5, row(**over))
    assert checked.record is None and words in checked.reason and checked.code == code
    assert checked.row == 5


def test_a_row_with_the_wrong_number_of_fields() -> None:
    checked = check_row(rules(), 3, ["u1", "Ann"])
    assert "has 2 fields; the header has 8" in checked.reason


def test_msg_flags_and_known_keys_are_spelt_as_clevertap_does() -> None:
    plan = plan_columns(["objectId", "PHONE", "msg-WhatsApp", "email"], {}, set(), None)
    assert plan.identity_key == "objectId"
    assert [c.key for c in plan.columns] == ["Phone", "MSG-whatsapp", "Email"]
    assert plan.columns[1].kind == "bool"


@pytest.mark.parametrize(("header", "words"), [
    (["Name", "Phone"], "first column must be identity or objectId"),
    (["identity", "Name"], "no Phone column"),
    (["identity", "Phone", "phone"], "appears twice"),
    (["identity", "Phone", "x" * 130], "over 120 bytes"),
    (["identity", "Phone", *[f"c{i}" for i in range(257)]], "at most 256"),
])
def test_header_errors(header, words) -> None:
    with pytest.raises(ValueError, match=words):
        plan_columns(header, {}, set(), None)


def test_options_must_name_real_columns() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        plan_columns(HEADER, {"nope": "int"}, set(), None)
    with pytest.raises(ValueError, match="cannot be dropped"):
        plan_columns(HEADER, {}, {"phone"}, None)
    plan = plan_columns(HEADER, {}, {"score"}, None)
    assert "Score" not in [c.key for c in plan.columns]


def test_date_values() -> None:
    assert date_value("1970-01-02") == "$D_86400"
    assert date_value("1970-01-01T01:00:00Z") == "$D_3600"


def dry(path: Path, **kw):
    return Uploader(UploadOptions(path, dry_run=True, workers=1, **kw)).run()


def test_bom_crlf_semicolons_and_embedded_newlines(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes("\ufeffidentity;Phone;Notes\r\nu1;+14155552671;\"two\r\nlines\"\r\n"
                     "u2;+14155552672;plain\r\n".encode())
    report = dry(path)
    assert report.counts.would_upload == 2 and report.counts.adds_up
    assert report.first_batch[0]["profileData"]["Notes"] == "two\r\nlines"


def test_latin1_file_needs_encoding(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes("identity,Phone,Name\nu1,+14155552671,Jos\xe9\nu2,+14155552672,Zoë\n"
                     .encode("latin-1"))
    report = dry(path)  # every row: the encoding is wrong, the run stops naming --encoding
    assert report.exit_code == ExitCode.USAGE and "--encoding" in report.error
    assert "2 of the 2 rows read are not utf-8-sig text (the first at row 2)" in report.error
    assert dry(path, encoding="latin-1").first_batch[0]["profileData"]["Name"] == "José"


def test_one_row_that_is_not_text_is_rejected_alone(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(b"identity,Phone,Name\nu1,+14155552671,Jos\xe9\nu2,+14155552672,Ann\n")
    report = dry(path)
    assert report.error is None and report.counts.would_upload == 1
    assert report.counts.rejected == 1 and report.counts.adds_up
    [(row, reason)] = report.rejected_sample
    assert row == 2 and reason == ("not text in the file's encoding: byte 0xE9 in field 3; "
                                   "if the file is not UTF-8, pass --encoding (e.g. cp1252)")


def test_a_row_that_is_not_text_reaches_the_rejects_file_as_utf8(tmp_path: Path) -> None:
    import respx

    path = tmp_path / "u.csv"
    path.write_bytes(b"identity,Phone,Name\nu1,+14155552671,Jos\xe9\nu2,+14155552672,Ann\n")
    url = "https://in1.api.clevertap.com/1/upload"
    with respx.mock:
        respx.post(url).respond(json={"status": "success", "processed": 1, "unprocessed": []})
        with make_client() as client:
            report = Uploader(UploadOptions(path, workers=1), client, url).run()
    assert report.counts.uploaded == 1 and report.counts.rejected == 1
    text = path.with_name("u.rejects.csv").read_text(encoding="utf-8")
    assert "u1,+14155552671,Jos\ufffd" in text


def test_row_numbers_count_the_header_as_row_1(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("identity,Phone\nu1,+14155552671\n\nu2,4155552672\n")
    report = dry(path)
    assert report.rejected_sample == [(4, "phone has no + and country code; write it as "
                                          "+<country><number>, or pass --default-region")]


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert dry(empty).exit_code == ExitCode.USAGE
    header_only = tmp_path / "h.csv"
    header_only.write_text("identity,Phone\n")
    report = dry(header_only)
    assert report.exit_code == ExitCode.OK and report.counts.rows_read == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("h") / "u.csv"
    path.write_bytes(data)
    report = dry(path)
    assert report.error is None or report.exit_code == ExitCode.USAGE
    assert report.counts.adds_up


csv_cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                   max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(csv_cell | st.sampled_from(["+14155552671", "TRUE", '"', ",", "\n"]),
                         min_size=0, max_size=5), max_size=8))
def test_malformed_csv_gives_rejects_or_a_clear_error(tmp_path_factory, rows) -> None:
    path = tmp_path_factory.mktemp("m") / "u.csv"
    lines = ["identity,Phone,MSG-whatsapp"] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines), encoding="utf-8")
    report = dry(path)
    assert report.counts.adds_up
    assert report.error is None or "\n" not in report.error


DEMOGRAPHIC = ["Identity", "Phone", "Employed", "Education", "Married", "Age"]


@pytest.mark.parametrize(("values", "words", "code"), [
    (["u1", "+14155552671", "perhaps", "", "", ""], "Employed 'perhaps'", 517),
    (["u1", "+14155552671", "", "PhD", "", ""], "Education 'PhD'", 518),
    (["u1", "+14155552671", "", "", "divorced", ""], "Married 'divorced'", 519),
    (["u1", "+14155552671", "", "", "", "twenty"], "Age 'twenty' is not an age", 520),
    (["u1", "+14155552671", "", "", "", "400"], "Age 400 is not an age", 520),
])
def test_demographics_are_refused_as_clevertap_does(values, words, code) -> None:
    plan = plan_columns(DEMOGRAPHIC, {}, set(), None)
    checked = check_row(plan, 2, values)
    assert checked.record is None and words in checked.reason and checked.code == code


def test_demographics_in_the_words_users_write_become_clevertaps() -> None:
    plan = plan_columns(DEMOGRAPHIC, {}, set(), None)
    checked = check_row(plan, 2, ["u1", "+14155552671", "yes", "graduate", "N", "28"])
    assert json.loads(checked.record)["profileData"] == {
        "Phone": "+14155552671", "Employed": "Y", "Education": "Graduate", "Married": "N",
        "Age": 28}

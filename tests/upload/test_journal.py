"""The journal and the rejects file: resume refuses another file or setup, survives a line cut
short by a kill, and never writes a row twice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ctwa.infra.errors import InputError
from ctwa.upload.journal import BatchEntry, Journal, RejectsFile, fingerprint
from ctwa.upload.regions import api_base_url


def test_resume_refuses_a_changed_file_or_other_options(tmp_path: Path) -> None:
    data = tmp_path / "u.csv"
    data.write_text("identity,Phone\n")
    header = fingerprint(data, {"batch_size": 1000})
    journal = Journal(tmp_path / "j.jsonl")
    journal.start(header, resume=False)
    journal.record(BatchEntry(1, 2, 1001, 1000, "uploaded", 1000, 0))
    journal.close()
    assert journal.load(header)[1].uploaded == 1000
    with pytest.raises(InputError, match="other options"):
        journal.load(fingerprint(data, {"batch_size": 500}))
    data.write_text("identity,Phone\nu1,+14155552671\n")
    with pytest.raises(InputError, match="another size"):
        journal.load(fingerprint(data, {"batch_size": 1000}))
    with pytest.raises(InputError, match="no journal"):
        Journal(tmp_path / "none.jsonl").load(header)


def test_a_line_cut_short_by_a_kill_is_not_a_finished_batch(tmp_path: Path) -> None:
    data = tmp_path / "u.csv"
    data.write_text("identity,Phone\n")
    header = fingerprint(data, {})
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(header) + "\n" + json.dumps(vars(BatchEntry(
        1, 2, 3, 2, "uploaded", 2, 0))) + '\n{"batch": 2, "first_')
    entries = Journal(path).load(header)
    assert list(entries) == [1]
    journal = Journal(path)
    journal.start(header, resume=True)
    journal.record(BatchEntry(2, 4, 5, 2, "uploaded", 2, 0))
    journal.close()
    assert list(Journal(path).load(header)) == [1, 2]
    assert '"first_\n' not in path.read_text()  # the half line was cut, not kept
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    with pytest.raises(InputError, match="damaged journal line"):
        Journal(path).load(header)


def test_rejects_on_resume_keep_final_lines_and_drop_not_uploaded(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    first = RejectsFile(path, ["identity", "Phone"])
    first.open(resume=False)
    first.add(3, "phone is empty", 516, ["u2", ""])
    first.add(4, "not uploaded: HTTP 500", None, "u3\x1f+14155552671")
    first.add(3, "again", 516, ["u2", ""])
    first.close()
    second = RejectsFile(path, ["identity", "Phone"])
    second.open(resume=True)
    second.add(3, "phone is empty", 516, ["u2", ""])
    second.close()
    rows = list(csv.DictReader(path.open()))
    assert [(r["row"], r["reason"], r["identity"]) for r in rows] == [
        ("3", "phone is empty", "u2")]


@pytest.mark.parametrize(("region", "base", "expected"), [
    ("in1", None, "https://in1.api.clevertap.com"), ("EU", None, "https://api.clevertap.com"),
    ("eu1", None, "https://api.clevertap.com"), (None, None, "https://api.clevertap.com"),
    ("sg1", "http://127.0.0.1:9/ct/", "http://127.0.0.1:9/ct")])
def test_regions(region, base, expected) -> None:
    assert api_base_url(region, base) == expected


def test_unknown_region() -> None:
    with pytest.raises(InputError, match="mec1"):
        api_base_url("mars")


def test_resume_takes_the_same_file_by_another_spelling(tmp_path, cli, monkeypatch) -> None:
    import respx

    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\nu1,+14155552671\n")
    url = "https://in1.api.clevertap.com/1/upload"
    with respx.mock:
        respx.post(url).respond(json={"status": "success", "processed": 1, "unprocessed": []})
        first = cli("upload-users", str(path), "--region", "in1", "--account-id", "A",
                    "--passcode", "pc-CANARY-55e0")
        assert first.exit_code == 0, first.stderr
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        again = cli("upload-users", "../users.csv", "--region", "in1", "--account-id",
                    "A", "--passcode", "pc-CANARY-55e0", "--resume",
                    "--journal", str(tmp_path / "users.journal.jsonl"))
    assert again.exit_code == 0, again.stderr

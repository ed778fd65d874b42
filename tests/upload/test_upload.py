"""Uploading: every answer shape (respx), a real mock CleverTap end to end, interrupt + resume."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import respx

from ctwa.http import RetryPolicy, make_client
from ctwa.infra.errors import ExitCode
from ctwa.sandbox.clevertap import MockCleverTap
from ctwa.upload.run import Uploader, UploadOptions
from tests.conftest import EXAMPLES, LiveServer

URL = "https://in1.api.clevertap.com/1/upload"
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001, total_time=5,
                   statuses=frozenset({429, 500, 502, 503, 504}), retry_read_errors=True)


def users_file(tmp_path: Path, count: int, bad_every: int = 0) -> Path:
    path = tmp_path / "users.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "Name", "Phone", "MSG-whatsapp"])
        for i in range(count):
            phone = "bad" if bad_every and i % bad_every == 0 else f"+1415555{i % 10000:04d}"
            writer.writerow([f"user-{i}", f"User {i}", phone, "TRUE"])
    return path


def upload(path: Path, url: str = URL, **kw):
    options = UploadOptions(path, workers=1, **{"batch_size": 2, **kw})
    with make_client(headers={"X-CleverTap-Account-Id": "A", "X-CleverTap-Passcode":
                              "pc-CANARY-55e0"}.items(), retry=FAST) as client:
        return Uploader(options, client, url).run()


def rejects(path: Path) -> list[dict[str, str]]:
    with path.with_name(path.stem + ".rejects.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@respx.mock
def test_full_success(tmp_path) -> None:
    route = respx.post(URL).respond(json={"status": "success", "processed": 2,
                                          "unprocessed": []})
    report = upload(users_file(tmp_path, 4))
    assert report.exit_code == ExitCode.OK and report.counts.uploaded == 4
    assert route.call_count == 2
    body = json.loads(route.calls.last.request.content)
    assert body["d"][0]["profileData"]["Phone"].startswith("+")
    assert route.calls.last.request.headers["X-CleverTap-Passcode"] == "pc-CANARY-55e0"


@respx.mock
def test_partial_with_string_records_matched_by_identity(tmp_path) -> None:
    refused = json.dumps({"identity": "user-1", "type": "profile", "profileData": {}})
    respx.post(URL).respond(json={"status": "success", "processed": 1, "unprocessed": [
        {"status": "fail", "code": 523, "error": "Bad. Skipped record number : 2",
         "record": refused}]})
    path = users_file(tmp_path, 2)
    report = upload(path)
    assert (report.counts.uploaded, report.counts.refused) == (1, 1)
    (line,) = rejects(path)
    assert line["row"] == "3" and line["code"] == "523" and line["identity"] == "user-1"
    assert line["reason"].startswith("refused by CleverTap: Bad.")
    assert report.exit_code == ExitCode.FAILED


@respx.mock
def test_all_refused_with_object_records(tmp_path) -> None:
    respx.post(URL).respond(json={"status": "fail", "processed": 0, "unprocessed": [
        {"status": "fail", "code": 516, "error": "Invalid phone", "record": {"identity": i}}
        for i in ("user-0", "user-1")]})
    report = upload(users_file(tmp_path, 2))
    assert report.counts.refused == 2 and report.counts.uploaded == 0


@respx.mock
def test_refusal_matched_by_record_number_when_no_identity(tmp_path) -> None:
    respx.post(URL).respond(json={"status": "success", "processed": 1, "unprocessed": [
        {"status": "fail", "code": 555, "error": "oops. Skipped record number : 2"}]})
    path = users_file(tmp_path, 2)
    upload(path)
    assert rejects(path)[0]["identity"] == "user-1"


@respx.mock
def test_401_stops_at_once_with_exit_4(tmp_path) -> None:
    route = respx.post(URL).respond(401, json={"status": "fail",
                                               "error": "Account ID is not valid", "code": 401})
    path = users_file(tmp_path, 10)
    report = upload(path, concurrency=1)
    assert report.exit_code == ExitCode.CONFIG and "Account ID is not valid" in report.error
    assert route.call_count == 1
    assert report.counts.adds_up


@respx.mock
def test_429_then_success(tmp_path) -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(429), httpx.Response(
        200, json={"status": "success", "processed": 2, "unprocessed": []})])
    report = upload(users_file(tmp_path, 2))
    assert report.counts.uploaded == 2


@respx.mock
def test_500_until_retries_run_out_is_not_lost(tmp_path) -> None:
    route = respx.post(URL).respond(500, json={"status": "fail", "error": "boom"})
    path = users_file(tmp_path, 3)
    report = upload(path)
    assert route.call_count == 6  # 2 batches x 3 attempts
    assert report.counts.not_uploaded == 3 and report.counts.adds_up
    assert report.exit_code == ExitCode.FAILED
    reasons = {line["reason"] for line in rejects(path)}
    assert reasons == {"not uploaded: HTTP 500: boom after 3 attempts"}


@respx.mock
def test_unreachable_exits_3(tmp_path) -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    report = upload(users_file(tmp_path, 2))
    assert report.exit_code == ExitCode.UNREACHABLE and report.counts.not_uploaded == 2


def test_real_server_enforces_limits_end_to_end(tmp_path, cli) -> None:
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"}, concurrency=3, latency=0.02)
    path = users_file(tmp_path, 2500, bad_every=97)
    with LiveServer(mock.app()) as server:
        result = cli("--json", "upload-users", str(path), "--base-url", server.url,
                     "--account-id", "ACC", "--concurrency", "5", "--batch-size", "200",
                     env={"CTWA_PASSCODE": "pc-CANARY-55e0"})
    data = json.loads(result.stdout)
    counts = data["counts"]
    assert counts["adds_up"] and counts["rows_read"] == 2500
    assert counts["rejected"] == 26 and counts["uploaded"] == 2474
    assert result.exit_code == ExitCode.FAILED  # the bad rows
    assert mock.state.rejected_429 > 0 and mock.state.max_in_flight <= 3  # limit was hit
    assert set(mock.state.uploads.values()) == {1}  # every row exactly once
    assert data["request"]["headers"]["X-CleverTap-Passcode"] == "****"


def test_example_users_file(tmp_path, cli) -> None:
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"})
    path = tmp_path / "users.csv"
    path.write_bytes((EXAMPLES / "users.csv").read_bytes())
    with LiveServer(mock.app()) as server:
        result = cli("upload-users", str(path), "--base-url", server.url, "--account-id",
                     "ACC", "--passcode", "pc-CANARY-55e0")
    assert result.exit_code == ExitCode.FAILED
    assert re.search(r"rows read\s+12\s", result.stdout)
    assert re.search(r"adds up\s+yes", result.stdout)
    assert len(mock.state.profiles) == 6 and len(rejects(path)) == 6


def test_interrupted_run_resumes_without_sending_anything_twice(tmp_path) -> None:
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"}, latency=0.05)
    path = users_file(tmp_path, 3000, bad_every=101)
    env = {**os.environ, "CTWA_PASSCODE": "pc-CANARY-55e0", "NO_COLOR": "1",
           "CTWA_NO_KEYRING": "1"}
    with LiveServer(mock.app()) as server:
        args = [sys.executable, "-m", "ctwa", "upload-users", str(path), "--base-url",
                server.url, "--account-id", "ACC", "--batch-size", "50", "--concurrency", "2"]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 30
        while mock.state.requests < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == ExitCode.INTERRUPTED, err
        assert "--resume" in err and "pc-CANARY-55e0" not in err
        sent_before = sum(mock.state.uploads.values())
        assert 0 < sent_before < 2970
        resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True,
                                 timeout=120)
    assert resumed.returncode == ExitCode.FAILED, resumed.stderr  # only the bad rows remain
    assert len(mock.state.uploads) == 2970
    assert set(mock.state.uploads.values()) == {1}
    lines = rejects(path)
    assert len(lines) == 30 and len({line["row"] for line in lines}) == 30
    assert all(not line["reason"].startswith("not uploaded") for line in lines)


def test_in_process_interrupt_accounts_for_every_row(tmp_path, monkeypatch) -> None:
    """Ctrl-C while batches are queued: each row read is uploaded or written as not uploaded."""
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"}, latency=0.05)
    path = users_file(tmp_path, 400)
    calls = {"n": 0}

    def interrupt_after_three(report, done, size) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    with LiveServer(mock.app()) as server, make_client(
            headers={"X-CleverTap-Account-Id": "ACC",
                     "X-CleverTap-Passcode": "pc-CANARY-55e0"}.items()) as client:
        options = UploadOptions(path, workers=1, batch_size=20, concurrency=2)
        report = Uploader(options, client, f"{server.url}/1/upload",
                          interrupt_after_three).run()
    counts = report.counts
    assert report.interrupted and report.exit_code == ExitCode.INTERRUPTED
    assert counts.adds_up and counts.uploaded == sum(mock.state.uploads.values())
    assert counts.not_uploaded > 0
    lines = rejects(path)
    assert len(lines) == counts.not_uploaded
    assert all(line["reason"].startswith("not uploaded: interrupted") for line in lines)


def test_resume_retries_batches_that_failed(tmp_path) -> None:
    path = users_file(tmp_path, 6)
    with respx.mock:
        respx.post(URL).respond(503)
        first = upload(path)
    assert first.counts.not_uploaded == 6 and len(rejects(path)) == 6
    with respx.mock:
        route = respx.post(URL).respond(json={"status": "success", "processed": 2,
                                              "unprocessed": []})
        second = upload(path, resume=True)
    assert route.call_count == 3 and second.counts.uploaded == 6
    assert second.batches_skipped == 0 and rejects(path) == []
    with respx.mock:
        third_route = respx.post(URL).respond(json={"status": "success", "processed": 2})
        third = upload(path, resume=True)
    assert third_route.call_count == 0 and third.batches_skipped == 3
    assert third.counts.uploaded == 6 and third.exit_code == ExitCode.OK


def _cli_upload(cli, path: Path, server, *extra: str):
    return cli("upload-users", str(path), "--base-url", server.url, "--account-id", "ACC",
               "--passcode", "pc-CANARY-55e0", *extra)


def test_a_fixed_rejects_file_uploads_as_it_is(tmp_path, cli) -> None:
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"})
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone,Email,Gender\nu1,+14155552671,a@b.co,F\n"
                    "u2,+14155552672,not-an-email,M\nu3,+14155552673,c@d.co,Woman\n")
    with LiveServer(mock.app()) as server:
        first = _cli_upload(cli, path, server)
        assert first.exit_code == ExitCode.FAILED
        rejected = path.with_name("users.rejects.csv")
        fixed = rejected.read_text().replace("not-an-email", "b@c.co").replace("Woman", "F")
        again = tmp_path / "fixed.csv"
        again.write_text(fixed)
        second = _cli_upload(cli, again, server)
    assert second.exit_code == 0, second.stderr
    assert set(mock.state.profiles) == {"u1", "u2", "u3"}
    assert again.with_name("fixed.rejects.csv").read_text().startswith("row,reason,code,"
                                                                       "identity,")


def test_every_problem_of_a_row_is_reported(tmp_path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone,Email,Gender\n,12,nope,Woman\n")
    report = upload(path, dry_run=True)
    ((row, reason),) = report.rejected_sample
    assert row == 2
    for words in ("identity is empty", "phone has no + and country code",
                  "Email 'nope' is not an email address", "Gender 'Woman'"):
        assert words in reason


def test_an_earlier_journal_asks_for_resume_or_restart(tmp_path, cli) -> None:
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"})
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\nu1,+14155552671\n")
    with LiveServer(mock.app()) as server:
        assert _cli_upload(cli, path, server).exit_code == 0
        again = _cli_upload(cli, path, server)
        assert again.exit_code == ExitCode.USAGE
        assert "users.journal.jsonl exists: an earlier upload of this file finished (1 of 1 " \
            "rows uploaded)" in again.stderr and "pass --restart" in again.stderr
        assert "--resume" not in again.stderr  # nothing is left to finish
        journal = path.with_name("users.journal.jsonl")
        journal.write_text("\n".join(journal.read_text().splitlines()[:-1]) + "\n")
        unfinished = _cli_upload(cli, path, server)  # the same journal, cut before its end
        assert "an earlier upload of this file did not finish" in unfinished.stderr
        assert "pass --resume" in unfinished.stderr and "--restart" in unfinished.stderr
        assert _cli_upload(cli, path, server, "--restart").exit_code == 0
        assert _cli_upload(cli, path, server, "--resume").exit_code == 0


def test_an_encoding_error_names_its_row(tmp_path, cli) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(b'identity,Phone,Note\nu1,+14155552671,"two\nlines"\nu2,+14155552672,x\n'
                     b"u3,+1415555\xff2673,y\n")
    result = cli("upload-users", str(path), "--dry-run")
    assert result.exit_code == ExitCode.FAILED  # that row alone is rejected
    assert "row 4: not text in the file's encoding: byte 0xFF in field 2" in result.stderr


def test_dry_run_uses_the_profiles_account_and_shows_an_unset_passcode(tmp_path, cli) -> None:
    cli("profile", "add", "acme", "--account-id", "W9R-PROFILE", "--region", "in1", "--use")
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone\nu1,+14155552671\n")
    result = cli("upload-users", str(path), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "would go to https://in1.api.clevertap.com/1/upload" in result.stderr
    assert "X-CleverTap-Account-Id: W9R-PROFILE" in result.stderr
    assert "X-CleverTap-Passcode: (none)" in result.stderr
    batch, _ = json.JSONDecoder().raw_decode(result.stdout)  # then the reconciliation
    assert batch["d"][0]["identity"] == "u1"


def test_a_failed_upload_says_what_to_do_next(tmp_path, cli) -> None:
    mock = MockCleverTap({"ACC": "pc-CANARY-55e0"})
    path = tmp_path / "users.csv"
    path.write_text("identity,Phone,Email\nu1,+14155552671,x\n")
    with LiveServer(mock.app()) as server:
        result = _cli_upload(cli, path, server)
    assert result.exit_code == ExitCode.FAILED
    assert "next: fix the rows in" in result.stderr and "users.rejects.csv" in result.stderr


@respx.mock
def test_an_echoed_passcode_never_reaches_the_journal_or_rejects(tmp_path) -> None:
    from ctwa.infra import masking

    masking.register_secret("pc-CANARY-55e0")
    respx.post(URL).respond(json={"status": "fail", "processed": 0, "unprocessed": [
        {"status": "fail", "code": 555, "error": "bad passcode pc-CANARY-55e0",
         "record": {"identity": "user-0"}},
        {"status": "fail", "code": 555, "error": "bad passcode pc-CANARY-55e0",
         "record": {"identity": "user-1"}}]})
    path = users_file(tmp_path, 2)
    upload(path)
    for written in (path.with_name("users.journal.jsonl"), path.with_name("users.rejects.csv")):
        assert "pc-CANARY-55e0" not in written.read_text(), written
    assert "bad passcode ****" in path.with_name("users.rejects.csv").read_text()

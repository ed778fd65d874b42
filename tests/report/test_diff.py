"""``ctwa report diff`` and ``ctwa runs list``: thresholds, directions, missing metrics, run
ids and a load run's own --json output; and the summary's masked command line."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.infra.errors import ExitCode, InputError
from ctwa.report.diff import compare, parse_thresholds
from ctwa.report.summary import masked_argv, new_summary
from ctwa.store.db import Store


def run(metrics: dict[str, float], run_id: str = "r") -> dict:
    return {"kind": "load", "id": run_id, "metrics": metrics}


def test_directions_and_points() -> None:
    base = run({"p99": 200.0, "rps": 1000.0, "errors": 0.05})
    worse = run({"p99": 230.0, "rps": 880.0, "errors": 0.2})
    rows = {r.metric: r for r in compare(base, worse, parse_thresholds(
        "p99=10%,rps=10%,errors=0.1%"))}
    assert rows["p99"].regressed and rows["p99"].change == "+15.0%"
    assert rows["rps"].regressed and rows["rps"].change == "-12.0%"
    assert rows["errors"].regressed and rows["errors"].change == "+0.15 pts"
    better = run({"p99": 150.0, "rps": 1200.0, "errors": 0.0})
    assert not any(r.regressed for r in compare(base, better, parse_thresholds(
        "p99=10%,rps=10%,errors=0.1%")))


def test_a_missing_metric_is_an_error_not_a_pass() -> None:
    with pytest.raises(InputError, match="has no metric 'p99'"):
        compare(run({"rps": 1.0}), run({"rps": 1.0, "p99": 2.0}), parse_thresholds("p99=5%"))


@settings(max_examples=100, derandomize=True)
@given(st.text(max_size=30))
def test_any_threshold_text_parses_or_is_one_clear_line(text) -> None:
    try:
        parse_thresholds(text)
    except InputError as exc:
        assert "METRIC=N%" in str(exc)


def test_cli_diff_with_run_ids_and_json_files(cli, tmp_path) -> None:
    with Store() as store:
        for run_id, p99 in (("load-base-1", 200.0), ("load-new-1", 260.0)):
            store.add_run(run_id, "load", True, run({"p99": p99, "rps": 1000.0,
                                                     "errors": 0.0}, run_id))
    worse = cli("report", "diff", "load-base", "load-new-1")
    assert worse.exit_code == ExitCode.FAILED
    assert "REGRESSED" in worse.stdout and "p99 +30.0%" in worse.stderr
    ok = cli("--json", "report", "diff", "load-base-1", "load-new-1", "--max-regression",
             "p99=50%")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["regressed"] is False
    raw = tmp_path / "run.json"  # a load run's own --json output
    raw.write_text(json.dumps({"sent": 100, "connection_errors": 0, "failed": 1,
                               "too_slow": 0, "requests_per_second": 900.0,
                               "latency_ms": {"p50": 100.0, "p90": 150.0, "p99": 199.0}}))
    mixed = cli("report", "diff", "load-base-1", str(raw))
    assert mixed.exit_code == ExitCode.FAILED and "errors" in mixed.stderr  # 1% errors
    missing = cli("report", "diff", "nothing-like-it", str(raw))
    assert missing.exit_code == ExitCode.USAGE and "runs list" in missing.stderr
    listed = cli("runs", "list")
    assert "load-new-1" in listed.stdout.splitlines()[0] or "load-new-1" in listed.stdout


def test_the_command_line_is_masked() -> None:
    shown = masked_argv(["upload-users", "u.csv", "--passcode", "s3cret-pass", "--token=tok-9",
                         "--url", "https://x.example/t?access_token=abc123&x=1"])
    assert "s3cret-pass" not in shown and "tok-9" not in shown and "abc123" not in shown
    assert shown.startswith("ctwa upload-users u.csv --passcode")


def test_a_summary_is_its_verdict_and_passes_only_when_every_criterion_passed() -> None:
    from ctwa.report.verdict import Criterion, Verdict

    now = time.time()

    def summary(*statuses: str) -> dict:
        return new_summary("load", target="t", started=now, ended=now, verdict=Verdict(tuple(
            Criterion(f"c{i}", status, "why") for i, status in enumerate(statuses))),
            metrics={}, data={})

    assert summary("not tested")["outcome"] == "incomplete"
    assert summary("not tested")["passed"] is False
    assert summary()["outcome"] == "incomplete"  # nothing judged is not a pass
    assert summary("pass", "pass")["outcome"] == "passed"
    assert summary("pass", "attested")["outcome"] == "passed"
    assert summary("pass", "not attested")["outcome"] == "incomplete"
    assert summary("pass", "warning")["outcome"] == "incomplete"
    assert summary("pass", "not tested", "fail")["outcome"] == "failed"
    kept = summary("pass", "fail")
    assert kept["verdict"]["exit_code"] == 1 and kept["criteria"][1]["status"] == "fail"


def test_diff_names_a_new_run_whose_verdict_failed_as_a_regression(cli) -> None:
    from ctwa.report.verdict import Criterion, Verdict

    now = time.time()
    with Store() as store:
        for run_id, status in (("load-ok-1", "pass"), ("load-bad-1", "fail")):
            summary = new_summary("load", target="t", started=now, ended=now,
                                  verdict=Verdict((Criterion("deadline", status, "why"),)),
                                  metrics={"p99": 100.0, "rps": 10.0, "errors": 0.0},
                                  data={})
            summary["id"] = run_id
            store.add_run(run_id, "load", summary["outcome"], summary)
    result = cli("report", "diff", "load-ok-1", "load-bad-1")
    assert result.exit_code == ExitCode.FAILED
    assert "its verdict is failed (BASE: passed)" in result.stderr
    assert "outcome" in result.stdout and "REGRESSED" in result.stdout
    listed = cli("runs", "list").stdout
    assert "load-bad-1" in listed and " failed" in listed and " passed" in listed

"""JUnit XML for CI (Jenkins, GitLab, GitHub annotations): one test case per criterion of the
run's verdict; a failed one is a failure, one not tested, not attested or with a warning is
skipped, with why."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_junit(summary: dict[str, Any], path: Path) -> None:
    from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

    from ctwa.report.verdict import FAIL, UNFINISHED, of_summary

    verdict = of_summary(summary)
    suite = TestSuite(f"ctwa {summary['kind']}: {summary['target']}")
    suite.timestamp = _iso(summary["started"])
    for criterion in verdict.criteria:
        case = TestCase(criterion.name, classname=f"ctwa.{summary['kind']}",
                        time=max(0.0, summary["ended"] - summary["started"]))
        if criterion.status == FAIL:
            case.result = [Failure(criterion.reason)]
        elif criterion.status in UNFINISHED:  # not tested, not attested, warning
            case.result = [Skipped(f"{criterion.status}: {criterion.reason}")]
        else:
            case.system_out = criterion.reason
        suite.add_testcase(case)
    for warning in verdict.warnings:
        suite.add_property("warning", warning)
    suite.add_property("outcome", verdict.outcome)
    suite.add_property("run_id", summary["id"])
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)


def _iso(at: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat(
        timespec="seconds")

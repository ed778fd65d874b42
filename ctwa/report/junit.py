"""JUnit XML for CI (Jenkins, GitLab, GitHub annotations): one test case per criterion; a
criterion not tested is skipped, with why."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_junit(summary: dict[str, Any], path: Path) -> None:
    from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

    suite = TestSuite(f"ctwa {summary['kind']}: {summary['target']}")
    suite.timestamp = _iso(summary["started"])
    for criterion in summary["criteria"]:
        case = TestCase(criterion["name"], classname=f"ctwa.{summary['kind']}",
                        time=max(0.0, summary["ended"] - summary["started"]))
        if criterion["status"] == "fail":
            case.result = [Failure(criterion["detail"])]
        elif criterion["status"] == "not tested":
            case.result = [Skipped(criterion["detail"])]
        else:
            case.system_out = criterion["detail"]
        suite.add_testcase(case)
    for warning in summary["warnings"]:
        suite.add_property("warning", warning)
    suite.add_property("run_id", summary["id"])
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)


def _iso(at: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat(
        timespec="seconds")

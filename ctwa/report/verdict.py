"""One verdict per run: a list of criteria, each with a stable name, a status, what was
measured, the threshold it was held to and a one-line reason, and one outcome computed from
them by one rule. The console, ``--json``, the HTML report, JUnit, the store's run row,
``report diff`` and the exit code all render this object and nothing else, so they cannot
disagree.

The rule: ``passed`` only when every criterion passed (a manual criterion a person attested
counts as satisfied); ``failed`` when any failed; ``incomplete`` otherwise (some were not
tested, not attested, or passed with a warning that makes the pass meaningless). A run that
was interrupted, sent nothing, or whose every answer was the same error is never ``passed``:
the criteria that say so are part of the verdict. Exit 0 for ``passed`` and ``incomplete``, 1
for ``failed``; 130 when the run was interrupted (Ctrl-C), whatever the criteria say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

PASS, FAIL, NOT_TESTED, NOT_ATTESTED, WARNING = (
    "pass", "fail", "not tested", "not attested", "warning")
#: A manual criterion a person vouched for (certify's --attest): satisfied, never a pass.
ATTESTED = "attested"
STATUSES = (PASS, FAIL, NOT_TESTED, NOT_ATTESTED, WARNING, ATTESTED)
#: Statuses that leave the outcome ``incomplete`` (when nothing failed).
UNFINISHED = (NOT_TESTED, NOT_ATTESTED, WARNING)

PASSED, INCOMPLETE, FAILED = "passed", "incomplete", "failed"
OUTCOMES = (PASSED, INCOMPLETE, FAILED)

#: The exit codes (README: Exit codes); kept here so the core needs nothing from the CLI.
EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 3, 4, 130
#: Criteria whose failure has its own documented exit code: the endpoint could not be
#: reached at all (3), it refused the credentials (4).
EXIT_BY_FAILED = {"reachable": EXIT_UNREACHABLE, "answered": EXIT_UNREACHABLE,
                  "credentials": EXIT_CONFIG}

#: How each status is written on a console line and in the HTML report.
LABELS = {PASS: "PASS", FAIL: "FAIL", NOT_TESTED: "NOT TESTED", NOT_ATTESTED: "NOT ATTESTED",
          WARNING: "WARNING", ATTESTED: "ATTESTED"}
HEADLINES = {PASSED: "PASSED", INCOMPLETE: "INCOMPLETE", FAILED: "FAILED"}


@dataclass(frozen=True)
class Criterion:
    name: str  # stable: JUnit test case names, `report diff` and scripts key on it
    status: str
    reason: str  # one line, naming the cause
    measured: Any = None  # what was seen (a count, a latency, a text)
    threshold: Any = None  # what it was held to

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"criterion {self.name!r}: unknown status {self.status!r}")

    @property
    def line(self) -> str:
        """The console line: the status, the name, the reason."""
        return f"{LABELS[self.status]}: {self.name}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "measured": self.measured,
                "threshold": self.threshold, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Criterion:
        """A criterion as a summary keeps it (older summaries called the reason detail)."""
        status = str(data.get("status", NOT_TESTED))
        return cls(str(data.get("name", "?")), status if status in STATUSES else NOT_TESTED,
                   str(data.get("reason", data.get("detail", ""))), data.get("measured"),
                   data.get("threshold"))


def outcome_of(criteria: Iterable[Criterion]) -> str:
    """The one rule (module docstring). No criterion at all is not a pass: nothing was
    judged."""
    statuses = [c.status for c in criteria]
    if any(s == FAIL for s in statuses):
        return FAILED
    if not statuses or any(s in UNFINISHED for s in statuses):
        return INCOMPLETE
    return PASSED


@dataclass(frozen=True)
class Verdict:
    criteria: tuple[Criterion, ...] = ()
    interrupted: bool = False
    #: What makes a pass meaningless or the figures partial, said before the criteria.
    warnings: tuple[str, ...] = field(default=())

    @property
    def outcome(self) -> str:
        return outcome_of(self.criteria)

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    @property
    def headline(self) -> str:
        """PASSED / INCOMPLETE / FAILED, and why when it is not a pass."""
        outcome = self.outcome
        text = HEADLINES[outcome]
        if outcome == PASSED:
            return text
        failed = [c.name for c in self.criteria if c.status == FAIL]
        if failed:
            return f"{text}: " + ", ".join(failed) + " failed"
        if not self.criteria:
            return f"{text}: nothing was judged"
        why = [f"{c.name} {c.status}" for c in self.criteria if c.status in UNFINISHED]
        return f"{text}: " + ", ".join(why)

    def exit_code(self, strict: bool = False) -> int:
        """0 passed or incomplete, 1 failed (``strict``: incomplete too), 130 interrupted;
        3 or 4 when what failed was reaching the endpoint or its credentials."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        outcome = self.outcome
        for c in self.criteria:
            if c.status == FAIL and c.name in EXIT_BY_FAILED:
                return EXIT_BY_FAILED[c.name]
        if outcome == FAILED or (strict and outcome == INCOMPLETE):
            return EXIT_FAILED
        return EXIT_OK

    def get(self, name: str) -> Criterion | None:
        return next((c for c in self.criteria if c.name == name), None)

    def with_criteria(self, *more: Criterion) -> Verdict:
        """This verdict with more criteria (one of the same name is replaced)."""
        names = {c.name for c in more}
        return replace(self, criteria=tuple(c for c in self.criteria if c.name not in names)
                       + more)

    def lines(self) -> list[str]:
        """The console rendering: one line per criterion, then the outcome."""
        return [c.line for c in self.criteria] + [f"verdict: {self.headline}"]

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.criteria) for status in STATUSES}

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "exit_code": self.exit_code(),
                "interrupted": self.interrupted, "headline": self.headline,
                "criteria": [c.as_dict() for c in self.criteria],
                "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(tuple(Criterion.from_dict(c) for c in data.get("criteria") or []),
                   bool(data.get("interrupted")), tuple(data.get("warnings") or ()))


def of_summary(summary: dict[str, Any]) -> Verdict:
    """The verdict a run summary holds (one written before verdicts were kept: rebuilt from
    its criteria and warnings)."""
    kept = summary.get("verdict")
    if isinstance(kept, dict):
        return Verdict.from_dict(kept)
    data = summary.get("data") or {}
    return Verdict(tuple(Criterion.from_dict(c) for c in summary.get("criteria") or []),
                   bool(data.get("interrupted")) if isinstance(data, dict) else False,
                   tuple(summary.get("warnings") or ()))


def run_criterion(*, sent: int, interrupted: bool, what: str = "message",
                  interruption: str | None = None) -> Criterion:
    """Whether the run ran at all, and to its end: a run that sent nothing or was stopped is
    never a pass, and says which."""
    if interrupted:
        why = interruption or "interrupted (Ctrl-C)"
        return Criterion("run complete", NOT_TESTED,
                         f"{why} after {sent:,} {what}(s): the figures cover what was sent",
                         sent, "the whole run")
    if sent == 0:
        return Criterion("run complete", NOT_TESTED, f"no {what} was sent: nothing to judge",
                         0, f"at least one {what}")
    return Criterion("run complete", PASS, f"{sent:,} {what}(s) sent, to the end", sent,
                     "the whole run")

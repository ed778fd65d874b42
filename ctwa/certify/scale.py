"""certify's scale criterion as the spec words it: "the error count is per expectation, and
errors are categorised correctly", and "sent, delivered and viewed counts match your platform
count".

Every refusal (2000-2004) and every failed status (1000-1010) is named by its code and held
to what the tester expects: ``--expect-errors 2003=26``, or a code beside a number in the
``--to-file`` recipients (``919000000003,2003``: every message to that number is expected to
fail so). A refusal that is expected and correctly coded passes; one not expected, or with
another code, fails naming both. The BSP's own dashboard counts (``--platform-counts
sent=N,delivered=N,read=N``) are compared with what the callbacks said."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctwa.infra.errors import InputError

PLATFORM_STATUSES = ("sent", "delivered", "read")


@dataclass(frozen=True)
class Expectations:
    errors: dict[int, int] = field(default_factory=dict)  # code -> messages, --expect-errors
    per_number: dict[str, int] = field(default_factory=dict)  # number -> code, --to-file
    platform: dict[str, int] | None = None  # --platform-counts

    def codes(self, numbers: tuple[str, ...], sent: int) -> Counter[int]:
        """Messages expected to fail, by code: the explicit counts, plus every message sent
        to a number marked with a code (message i goes to numbers[i % len])."""
        expected: Counter[int] = Counter(self.errors)
        if self.per_number and numbers:
            rounds, rest = divmod(sent, len(numbers))
            for index, number in enumerate(numbers):
                code = self.per_number.get(number)
                if code is not None:
                    expected[code] += rounds + (index < rest)
        return expected


def parse_expect_errors(text: str | None) -> dict[int, int]:
    """``2003=26,1006=4``: how many messages are expected to fail with each code."""
    out: dict[int, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = re.fullmatch(r"(\d{4})\s*=\s*(\d+)", part)
        if not match:
            raise InputError(f"--expect-errors {part!r}: write CODE=COUNT, e.g. 2003=26",
                             hint="codes: 2000-2004 (refusals), 1000-1010 (failed statuses)")
        code = int(match.group(1))
        if not (2000 <= code <= 2004 or 1000 <= code <= 1010):
            raise InputError(f"--expect-errors {part!r}: {code} is not one of CleverTap's "
                             "codes (2000-2004 refusals, 1000-1010 failed statuses)")
        out[code] = out.get(code, 0) + int(match.group(2))
    return out


def parse_platform_counts(text: str | None) -> dict[str, int] | None:
    """``sent=N,delivered=N,read=N``, as the BSP's dashboard shows them."""
    if text is None:
        return None
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"([a-z]+)\s*=\s*(\d+)", part)
        if not match or match.group(1) not in PLATFORM_STATUSES:
            raise InputError(f"--platform-counts {part!r}: write STATUS=COUNT with STATUS one "
                             "of sent, delivered, read", hint="e.g. sent=5000,delivered=4974,"
                             "read=4100")
        out[match.group(1)] = int(match.group(2))
    if not out:
        raise InputError("--platform-counts is empty", hint="e.g. sent=5000,delivered=4974")
    return out


def read_numbers(path: Path) -> tuple[tuple[str, ...], dict[str, int]]:
    """The --to-file recipients, each optionally followed by the code its messages are
    expected to fail with (``919000000003,2003``)."""
    from ctwa.wire.numbers import check_phone

    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    numbers, codes = [], {}
    for row, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = re.split(r"[,;\s]+", text, maxsplit=1)
        number, code = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        checked = check_phone(number, f"{path}:{row}")
        numbers.append(checked)
        if code:
            if not re.fullmatch(r"\d{4}", code):
                raise InputError(f"{path}:{row}: {code!r} after the number is not an error "
                                 "code", hint="write NUMBER,CODE, e.g. 919000000003,2003")
            codes[checked] = int(code)
    if not numbers:
        raise InputError(f"{path}: no numbers in the file")
    return tuple(numbers), codes


def _meaning(code: int) -> str:
    from ctwa.wire.codes import callback_error_title, messaging_error_meaning

    if 2000 <= code <= 2004:
        return messaging_error_meaning(code)
    return (callback_error_title(code) or "unknown code").lower()


def observed_codes(report: Any, trip: dict[str, Any]) -> Counter[int]:
    """Refusals by their 2000-2004 code, and failed statuses by their 1000-1010 code."""
    seen: Counter[int] = Counter()
    for code, n in report.failure_codes.items():
        if str(code).isdecimal():
            seen[int(code)] += n
    for code, n in (trip.get("failed_codes") or {}).items():
        if str(code).isdecimal():
            seen[int(code)] += n
    return seen


def judge_errors(report: Any, trip: dict[str, Any], expected: Counter[int]) -> list[str]:
    """What does not match the expectations, each named by code; empty when all do.
    Messages refused without a code, by an HTTP status, with no answer or with an answer
    that breaks the contract are never expected."""
    problems = []
    seen = observed_codes(report, trip)
    for code in sorted(set(seen) | set(expected)):
        got, wanted = seen.get(code, 0), expected.get(code, 0)
        if got != wanted:
            what = "refused with" if 2000 <= code <= 2004 else "failed with"
            problems.append(f"{got:,} {what} {code} ({_meaning(code)}), {wanted:,} expected")
    uncoded = sum(n for code, n in report.failure_codes.items() if not str(code).isdecimal())
    if uncoded:
        problems.append(f"{uncoded:,} refused without a code (the contract needs 2000-2004)")
    for status, n in report.http_statuses.items():
        problems.append(f"{n:,} refused with HTTP {status} (CleverTap expects 200 and a code)")
    if report.timeouts:
        problems.append(f"{report.timeouts:,} timed out")
    if report.connection_errors:
        problems.append(f"{report.connection_errors:,} connection error(s)")
    if report.contract_violations:
        problems.append(f"{report.contract_violations:,} answer(s) breaking the contract")
    unknown = (trip.get("failed_codes") or {}).get("None")
    if unknown:
        problems.append(f"{unknown:,} failed status(es) without a code")
    return problems


def expected_text(report: Any, trip: dict[str, Any], expected: Counter[int]) -> str:
    """The errors that were as expected, named (for the reason of a pass)."""
    seen = observed_codes(report, trip)
    named = [f"{seen[code]:,} {'refused with' if 2000 <= code <= 2004 else 'failed with'} "
             f"{code} ({_meaning(code)})" for code in sorted(expected) if seen.get(code)]
    return ("errors as expected: " + ", ".join(named)) if named else "no error"


def platform_view(trip: dict[str, Any]) -> dict[str, int]:
    """What the callbacks say, counted as a dashboard counts: sent includes the messages
    that went on to delivered or read, delivered includes read."""
    furthest = trip.get("furthest") or {}
    read = furthest.get("read", 0)
    delivered = read + furthest.get("delivered", 0)
    return {"sent": delivered + furthest.get("sent", 0), "delivered": delivered, "read": read}


def judge_platform(trip: dict[str, Any], platform: dict[str, int]) -> list[str]:
    ours = platform_view(trip)
    return [f"{status}: the platform counts {platform[status]:,}, the callbacks said "
            f"{ours[status]:,}" for status in PLATFORM_STATUSES
            if status in platform and platform[status] != ours[status]]

"""What a round trip's callbacks say about the BSP: each cause found, as what was seen, what
it means and what to change. Broken integrations break in a few ways that look alike from
CleverTap's side ("no status"), and each needs another fix:

- nothing arrived at all (the callback URL, or no DLRs sent);
- callbacks arrived but break the format (CleverTap drops them): why, per kind of problem,
  naming a known envelope such as ``{url, payload}``;
- callbacks arrived for msgIds never sent (the BSP's own ids), or without a msgId;
- some kinds of message get no callback at all while others do (the BSP's pipeline drops
  templates or media after accepting them);
- callbacks for messages whose answer was not accepted (the answer is wrong, not the
  pipeline);
- valid callbacks with warnings (a title that contradicts its code, a callback URL with
  ``a=undefined`` in its query).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: How many kinds of invalid callback or warning are named (the rest are counted).
SHOWN = 3


@dataclass(frozen=True)
class Diagnosis:
    cause: str  # nothing, invalid, orphans, no_msgid, dropped_kinds, dropped, unaccepted, warning
    seen: str
    meaning: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"cause": self.cause, "seen": self.seen, "meaning": self.meaning,
                "fix": self.fix}


def line(diagnosis: dict[str, str]) -> str:
    """One diagnosis as one line: seen: meaning -> fix."""
    return f"{diagnosis['seen']}: {diagnosis['meaning']} -> {diagnosis['fix']}"


@dataclass
class Evidence:
    """What analyze() gathers beside its counts, for the diagnosis."""

    where: str | None = None
    invalid_for: Counter[str] = field(default_factory=Counter)  # msgId -> invalid callbacks
    problems: Counter[str] = field(default_factory=Counter)  # problem (grouped) -> count
    example: dict[str, str] = field(default_factory=dict)  # group -> one problem as written
    warnings: Counter[str] = field(default_factory=Counter)
    warning_example: dict[str, str] = field(default_factory=dict)
    arrived: set[str] = field(default_factory=set)  # msgIds with a valid callback
    silent: list[str] = field(default_factory=list)  # msgIds with no callback at all
    orphans: list[str] = field(default_factory=list)
    no_msgid: Counter[str] = field(default_factory=Counter)  # by status
    unaccepted: set[str] = field(default_factory=set)
    unread: Counter[str] = field(default_factory=Counter)  # requests that are no callback
    unread_example: dict[str, str] = field(default_factory=dict)
    #: Kinds of message that got callbacks among those sent but not awaited (certify's
    #: error checks): they show the callback URL works for that kind.
    answered_kinds: set[str] = field(default_factory=set)

    def invalid(self, msg_id: str, problems: list[str]) -> None:
        self.invalid_for[msg_id] += 1
        first = problems[0] if problems else "invalid"
        group = _group(first)
        self.problems[group] += 1
        self.example.setdefault(group, first)

    def unreadable(self, problem: str) -> None:
        group = _group(problem)
        self.unread[group] += 1
        self.unread_example.setdefault(group, problem)

    def warned(self, warnings: Iterable[str]) -> None:
        for warning in warnings:
            group = _group(warning)
            self.warnings[group] += 1
            self.warning_example.setdefault(group, warning)


def _group(problem: str) -> str:
    """A problem without its quoted values (a date, a title), so the same fault on every
    message is counted as one; codes stay apart."""
    return re.sub(r'"[^"]*"', '"…"', problem)


def _split(problem: str) -> tuple[str, str]:
    """A stored problem, ``path: message -> hint``, as (path: message, hint)."""
    text, _, hint = problem.partition(" -> ")
    return text, hint


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _kind_names(kinds: Iterable[str]) -> str:
    names = sorted(set(kinds))
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def diagnose(trip: Any, evidence: Evidence, kinds: dict[str, str]) -> list[Diagnosis]:
    """Each cause the round trip shows, the likeliest first."""
    found: list[Diagnosis] = []
    arrived_any = bool(trip.callbacks or evidence.orphans or evidence.no_msgid
                       or evidence.unaccepted or evidence.unread)
    where = evidence.where or "the listener"
    if trip.accepted and not arrived_any and evidence.answered_kinds and kinds:
        found += _silent(trip, evidence, kinds)
    elif trip.accepted and not arrived_any:
        found.append(Diagnosis(
            "nothing", f"nothing arrived for {_plural(trip.accepted, 'accepted message')}",
            "the BSP sent no callback here (not even an invalid one)",
            f"check that the BSP's callback URL points at {where}/status (or a public URL "
            "that reaches it), that it is reachable from the BSP, and that the BSP sends DLRs "
            "after accepting a message"
            + _kind_hint(kinds)))
    found += _invalid(evidence)
    for group, count in evidence.unread.most_common(SHOWN):
        text, hint = _split(evidence.unread_example[group])
        found.append(Diagnosis(
            "unreadable", f"{_plural(count, 'request')} arrived at the callback URL that "
            "cannot be read as a callback", text.removeprefix("$: "),
            hint or "post one callback object per request, as JSON (`ctwa schema status`)"))
    if evidence.orphans:
        example = evidence.orphans[0]
        own = "Meta's message id (a wamid)" if example.startswith("wamid") else "its own id"
        found.append(Diagnosis(
            "orphans", f"{_plural(len(evidence.orphans), 'callback')} arrived for msgIds "
            f"never sent (e.g. {example!r})",
            f"the BSP puts {own} in msgId, so CleverTap matches them to no message",
            "echo the msgId CleverTap sent with each message, unchanged, in its callbacks"))
    if evidence.no_msgid:
        statuses = _kind_names(evidence.no_msgid)
        found.append(Diagnosis(
            "no_msgid", f"{_plural(sum(evidence.no_msgid.values()), 'status callback')} "
            f"({statuses}) arrived without a msgId",
            "a missing msgId, not an unknown one: CleverTap cannot tell which message they "
            "are about, so it drops them",
            "put the msgId of the message in every status callback, the later ones (delivered, "
            "read) too"))
    if arrived_any:
        found += _silent(trip, evidence, kinds)
    if evidence.unaccepted:
        found.append(Diagnosis(
            "unaccepted", f"callbacks arrived for {_plural(len(evidence.unaccepted), 'message')} "
            "whose answer was not accepted",
            "the BSP processed them, so its answer is what is wrong (CleverTap counts these "
            "as not sent)",
            'answer HTTP 200 with {"status": "success"} for every message it accepts'))
    found += _warnings(evidence)
    return found


def _kind_hint(kinds: dict[str, str]) -> str:
    sent = set(kinds.values())
    if not sent or sent == {"text"}:
        return ""
    return (f"; if text messages get callbacks and {_kind_names(sent)} messages do not, the "
            "BSP's own pipeline drops these after accepting them")


def _invalid(evidence: Evidence) -> list[Diagnosis]:
    if not evidence.problems:
        return []
    total = sum(evidence.problems.values())
    messages = len(evidence.invalid_for)
    found = []
    for group, count in evidence.problems.most_common(SHOWN):
        text, hint = _split(evidence.example[group])
        found.append(Diagnosis(
            "invalid", f"{_plural(count, 'callback')} (of {total:,} invalid, for "
            f"{_plural(messages, 'message')}) arrived but break CleverTap's format",
            text.removeprefix("$: ") + ("" if "drops" in text else
                                        "; CleverTap drops such a callback"),
            hint or "send the callback in CleverTap's format (`ctwa schema status`)"))
    rest = len(evidence.problems) - SHOWN
    if rest > 0:
        found.append(Diagnosis("invalid", f"{rest} other kind(s) of invalid callback",
                               "see each callback's problems", "`ctwa trace MSGID`"))
    return found


def _silent(trip: Any, evidence: Evidence, kinds: dict[str, str]) -> list[Diagnosis]:
    """Accepted messages with no callback at all while others got some: by kind when the
    kinds split (templates dropped, text not), else as a share."""
    silent = evidence.silent
    if not silent or (len(silent) == trip.accepted and not (
            evidence.arrived or evidence.invalid_for or evidence.answered_kinds)):
        return []
    if kinds:
        answered = {kinds.get(m, "?") for m in set(kinds) - set(silent)
                    if m in evidence.arrived or m in evidence.invalid_for}
        answered |= evidence.answered_kinds
        dropped = Counter(kinds.get(m, "?") for m in silent)
        never = {k for k in dropped if k not in answered}
        if never and answered and never == set(dropped):  # whole kinds, none in part
            counts = ", ".join(f"{k} {dropped[k]:,}" for k in sorted(never))
            return [Diagnosis(
                "dropped_kinds", f"accepted {_kind_names(never)} messages got no callback at "
                f"all ({counts}), while {_kind_names(answered)} did",
                "the BSP accepts these kinds, then its own pipeline drops them (as a worker "
                "that crashes on them does): the callback URL works, since others arrive",
                f"check how the BSP processes {_kind_names(never)} messages after answering "
                "(its worker's logs), and send each a status")]
    return [Diagnosis(
        "dropped", f"{_plural(len(silent), 'accepted message')} of {trip.accepted:,} got no "
        "callback at all, while the others did",
        "the BSP drops some messages after accepting them (the callback URL works)",
        "send at least a sent or failed status for every accepted message")]


def _warnings(evidence: Evidence) -> list[Diagnosis]:
    found = []
    for group, count in evidence.warnings.most_common(SHOWN):
        text, hint = _split(evidence.warning_example[group])
        found.append(Diagnosis("warning", f"{_plural(count, 'callback')} arrived with a warning",
                               text, hint or "see `ctwa lint` on one of them"))
    return found

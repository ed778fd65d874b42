"""DLR completeness from callback rows: a partition of the accepted messages that always adds
up, and each anomaly class from the rows that show it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.roundtrip.analyze import analyze


def row(msg_id, status, at, kind="status", valid=True, code=None, problems=None) -> dict:
    return {"msg_id": msg_id, "status": status, "at": at, "kind": kind, "valid": int(valid),
            "code": code, "problems": problems, "id": 0}


def test_the_normal_path_and_time_to_status() -> None:
    trip = analyze({"a": 100.0}, [row("a", "sent", 100.1), row("a", "delivered", 100.3),
                                  row("a", "read", 101.0)], until="read")
    assert trip.furthest == {"read": 1, "delivered": 0, "sent": 0, "failed": 0, "none": 0}
    assert trip.time_to_status_ms["sent"]["p50"] == 100.0
    assert list(trip.time_to_status_ms) == ["sent", "delivered", "read"]
    assert trip.anomalies == {} and trip.complete == 1


def test_each_anomaly_class() -> None:
    sent = dict.fromkeys("abcdefg", 0.0)
    rows = [row("a", "sent", 1), row("a", "sent", 2),                       # duplicate
            row("b", "read", 1), row("b", "delivered", 2),                  # downgrade
            row("c", "delivered", 1), row("c", "failed", 2, code=1006),     # failed after
            row("d", "sent", 1),                                            # no terminal
            row("e", "sent", 1, valid=False, problems='["$.x: wrong"]'),    # wrong format
            row("f", "sent", 11)]                                           # late
    others = [row("zz", "sent", 1), row(None, "text", 1, kind="inbound")]
    trip = analyze(sent, rows, until="delivered", others=others)
    assert trip.anomalies == {"duplicates": 1, "downgrades": 1, "failed_after_delivered": 1,
                              "missing_terminal": 3, "wrong_format": 1, "late": 1,
                              "none": 1, "orphans": 1, "no_context": 1, "missing_until": 3}
    assert trip.examples["wrong_format"] == ["e: $.x: wrong"]
    # e got a callback, an invalid one: not "none" (g is), but reached no status either
    assert trip.only_invalid == 1 and trip.furthest["none"] == 2
    assert trip.failed_codes == {"1006": 1}


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(
    ["sent", "delivered", "read", "failed", "clicked"]), st.booleans()), max_size=60),
    st.integers(1, 10))
def test_the_counts_always_add_up(events, n) -> None:
    sent = {f"m{i}": 0.0 for i in range(n)}
    rows = [row(f"m{m}", status, t, valid=valid) for t, (m, status, valid) in enumerate(events)]
    trip = analyze(sent, rows, until="delivered")
    assert sum(trip.furthest.values()) == n == trip.accepted
    assert trip.complete <= n
    assert all(count > 0 for count in trip.anomalies.values())


def _row(msg_id, status, kind="status", valid=True, problems=None) -> dict:
    return {**row(msg_id, status, 1.0, kind=kind, valid=valid, problems=problems),
            "route": "/status"}


def test_what_arrived_is_told_apart_never_nothing_when_something_did() -> None:
    """Each way callbacks arrive wrong has its own cause; "nothing" only when nothing did."""
    sent = {"a": 0.0}
    nothing = analyze(sent, [], where="http://127.0.0.1:8787")
    assert [d["cause"] for d in nothing.diagnoses] == ["nothing"]
    assert "http://127.0.0.1:8787/status" in nothing.diagnoses[0]["fix"]
    cases = {
        "invalid": ([_row("a", "sent", valid=False, problems='["$.x: bad -> fix it"]')], []),
        "orphans": ([], [_row("wamid.1", "sent")]),
        "no_msgid": ([], [_row(None, "delivered", valid=False)]),
        "unreadable": ([], [_row(None, None, valid=False, problems='["not JSON: x"]')]),
        "unaccepted": ([_row("b", "sent")], []),
    }
    for cause, (ours, others) in cases.items():
        trip = analyze(sent, ours, others=others)
        causes = [d["cause"] for d in trip.diagnoses]
        assert cause in causes and "nothing" not in causes, (cause, trip.diagnoses)
    invalid = analyze(sent, cases["invalid"][0]).diagnoses[0]
    assert invalid["meaning"].startswith("$.x: bad") and invalid["fix"] == "fix it"
    assert "none" not in analyze(sent, cases["invalid"][0]).anomalies


def test_dropped_kinds_need_whole_kinds_dropped() -> None:
    sent = dict.fromkeys(["t1", "t2", "x1", "i1"], 0.0)
    kinds = {"t1": "template", "t2": "template", "x1": "text", "i1": "image"}
    by_kind = analyze(sent, [_row("x1", "sent"), _row("i1", "sent")], kinds=kinds)
    (dropped,) = [d for d in by_kind.diagnoses if d["cause"] == "dropped_kinds"]
    assert dropped["seen"].startswith("accepted template messages got no callback at all")
    partly = analyze(sent, [_row("x1", "sent"), _row("t1", "sent")], kinds=kinds)
    causes = [d["cause"] for d in partly.diagnoses]  # a template answered: not by kind
    assert "dropped_kinds" not in causes and "dropped" in causes

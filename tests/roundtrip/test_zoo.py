"""The sandbox's zoo of faults (``ctwa sandbox --misbehave``), each run through the sandbox
and named by its diagnosis: what was seen, what it means, what to change. A single send with
``--await-callbacks`` and a load round trip; certify's are in tests/certify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctwa.infra.errors import ExitCode, InputError
from ctwa.infra.ports import free_port
from ctwa.sandbox.bsp import FAULTS, BspSettings, parse_faults
from ctwa.sandbox.server import RunningSandbox, SandboxSettings

AUTH = ("--username", "ctwa", "--password", "sandbox")


def run(cli, *args: str, faults: tuple[str, ...] = (), shares: dict[str, float] | None = None,
        until: str = "read", timeout: str = "2s", json_mode: bool = True,
        sample: tuple[str, ...] = ("send-template", "--sample", "text"),
        to: str = "919000000001"):
    """A send with --await-callbacks through a sandbox whose BSP misbehaves so."""
    port = free_port()
    listen = f"http://127.0.0.1:{port}"
    bsp = BspSettings(misbehave=faults, shares=shares or {}, status_url=f"{listen}/status",
                      inbound_url=f"{listen}/inbound", dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli(*(("--json",) if json_mode else ()), *sample, "--to", to, "--endpoint",
                     box.urls()["bsp_endpoint"], *AUTH, "--await-callbacks", "--until", until,
                     "--callback-timeout", timeout, "--listen", f"127.0.0.1:{port}", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def causes(data: dict) -> dict[str, str]:
    """Each diagnosis's cause -> its whole text (seen: meaning -> fix)."""
    out: dict[str, str] = {}
    for d in data["round_trip"]["diagnoses"]:
        out[d["cause"]] = out.get(d["cause"], "") + f"{d['seen']}: {d['meaning']} -> {d['fix']}"
    return out


def test_faults_take_a_share() -> None:
    assert parse_faults(["wrong-msgid=10%,no-dlr=0.5", "slow-ceiling=50"]) == (
        ("wrong-msgid", "no-dlr", "slow-ceiling"),
        {"wrong-msgid": 0.1, "no-dlr": 0.5, "slow-ceiling": 50.0})
    for bad in ("wrong-msgid=150%", "no-dlr=x", "slow-ceiling=0", "nonsense"):
        with pytest.raises(InputError):
            parse_faults([bad])


def test_a_share_hits_exactly_that_share_and_leaves_the_rest_clean(cli) -> None:
    result = run(cli, "--count", "20", "--workers", "1", faults=("wrong-msgid",),
                 shares={"wrong-msgid": 0.1}, until="delivered", timeout="3s")
    trip = json.loads(result.stdout)["round_trip"]
    assert trip["furthest"]["read"] == 18 and trip["furthest"]["none"] == 2
    assert trip["anomalies"]["orphans"] == 6  # sent, delivered and read of 2 messages
    assert "never sent" in causes(trip | {"round_trip": trip})["orphans"]


# --- each fault, one message, --await-callbacks -----------------------------------------------

SINGLE = [
    ("wrapped-callbacks", "invalid", "wrapped in `{url, payload}`", "post the inner object"),
    ("date-timestamps", "invalid", "is a date string", "epoch seconds"),
    ("no-msgid-dlr", "no_msgid", "without a msgId", "a missing msgId, not an unknown one"),
    ("wrong-msgid", "orphans", "msgIds never sent", "echo the msgId"),
    ("meta-format", "invalid", "Meta's WhatsApp Cloud API webhook", "ctwa callback convert"),
    ("bad-codes", "invalid", "131026 is not in CleverTap's table", 'use 1007'),
    ("bad-callback-query", "warning", "`a=undefined`", "exactly as CleverTap gave it"),
    ("accept-then-drop", "nothing", "nothing arrived", "pipeline drops these"),
]


@pytest.mark.parametrize(("fault", "cause", "seen", "fix"), SINGLE)
def test_each_fault_of_one_message_is_diagnosed(cli, fault, cause, seen, fix) -> None:
    shares = {"bad-codes": 1.0} if fault == "bad-codes" else None
    result = run(cli, faults=(fault,), shares=shares)
    data = json.loads(result.stdout)
    found = causes(data)
    assert cause in found, data["round_trip"]
    assert seen in found[cause] and fix in found[cause], found[cause]
    if cause != "nothing":  # something arrived: never "nothing arrived", nor "none"
        assert "nothing arrived" not in result.stdout + result.stderr
        assert "none" not in data["round_trip"]["anomalies"] or fault == "wrong-msgid"


def test_wrong_codes_name_the_code_for_the_title_and_the_closest_meaning(cli) -> None:
    result = run(cli, "--count", "3", "--workers", "1", faults=("wrong-codes",),
                 shares={"wrong-codes": 1.0}, until="delivered", timeout="3s")
    data = json.loads(result.stdout)
    found = causes(data)
    # 1004 "Invalid phone number" (ERRATA 19) and 1006 "Too many send requests": warnings
    assert 'is the meaning of 1002 ("Invalid phone number"), not of 1004' in found["warning"]
    assert "is the meaning of 1004" in found["warning"] and "send code 1004" in \
        found["warning"]
    # 404: outside the table, with its closest meaning
    assert "failure code 404 is not in CleverTap's table (1000-1010)" in found["invalid"]
    assert 'use 1009 ("Other")' in found["invalid"] and "HTTP status" in found["invalid"]


def test_an_empty_200_is_named_and_the_wait_skipped_with_a_word(cli) -> None:
    result = run(cli, faults=("empty-200",), json_mode=False)
    assert result.exit_code == ExitCode.FAILED
    assert "HTTP 200 but the body is empty" in result.stderr
    assert "not waiting for callbacks: the message was not accepted" in result.stderr


def test_an_empty_200_in_a_load_run_still_gets_callbacks_which_say_the_answer_is_wrong(
        cli) -> None:
    result = run(cli, "--count", "5", "--workers", "1", faults=("empty-200",),
                 until="delivered", timeout="2s")
    data = json.loads(result.stdout)
    assert data["contract_violations"] == 5
    found = causes(data)
    assert "callbacks arrived for 5 messages whose answer was not accepted" in \
        found["unaccepted"]
    assert '{"status": "success"}' in found["unaccepted"]


def test_no_auth_is_a_send_that_should_have_been_refused(cli) -> None:
    port = free_port()
    bsp = BspSettings(misbehave=("no-auth",), status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
        result = cli("--json", "send-template", "--sample", "text", "--to", "919000000001",
                     "--endpoint", box.urls()["bsp_endpoint"], "--username", "someone",
                     "--password", "wrong")
    assert json.loads(result.stdout)["verdict"]["outcome"] == "accepted"


@pytest.mark.parametrize(("fault", "anomaly", "text"), [
    ("duplicate-dlr", "duplicates", "delivered twice"),
    ("out-of-order", "downgrades", "sent after delivered"),
    ("no-read", "missing_until", "no read status"),
    ("no-context", "no_context", "reply without context"),
])
def test_the_older_faults_are_named_by_their_anomaly(cli, fault, anomaly, text) -> None:
    result = run(cli, faults=(fault,))
    trip = json.loads(result.stdout)["round_trip"]
    assert anomaly in trip["anomalies"] and text in " ".join(trip["examples"][anomaly])


def test_the_human_output_shows_what_it_means_and_what_to_change(cli) -> None:
    result = run(cli, faults=("wrapped-callbacks",), json_mode=False)
    assert result.exit_code == ExitCode.FAILED
    out = result.stdout
    assert "DIAGNOSIS 3 callbacks (of 3 invalid, for 1 message) arrived but break" in out
    assert "means: the callback is wrapped in `{url, payload}`" in out
    assert "fix:   post the inner object (the value of `payload`) as the body" in out
    assert "ANOMALY none" not in out
    assert "nothing arrived" not in result.stderr and "wrapped in" in result.stderr
    msg_id = next(line.split()[-1] for line in out.splitlines() if "msgId" in line)
    traced = cli("trace", msg_id)  # trace tells the same
    assert "DIAGNOSIS" in traced.stdout and "post the inner object" in traced.stdout


# --- load round trips ------------------------------------------------------------------------

LOAD = [
    ("no-dlr", {}, "dropped", "4 accepted messages of 20 got no callback at all"),
    ("wrapped-callbacks", {"wrapped-callbacks": 0.5}, "invalid", "wrapped in `{url, payload}`"),
    ("date-timestamps", {}, "invalid", "is a date string"),
    ("no-msgid-dlr", {"no-msgid-dlr": 0.25}, "no_msgid", "arrived without a msgId"),
    ("wrong-msgid", {"wrong-msgid": 0.1}, "orphans", "msgIds never sent"),
    ("bad-callback-query", {}, "warning", "a=undefined"),
    ("accept-then-drop", {}, "nothing", "pipeline drops these"),
    ("meta-format", {}, "invalid", "Meta's WhatsApp Cloud API webhook"),
    ("bad-codes", {}, "invalid", "use 1007"),
]


@pytest.mark.parametrize(("fault", "shares", "cause", "text"), LOAD)
def test_each_fault_in_a_load_round_trip_is_diagnosed(cli, fault, shares, cause, text) -> None:
    result = run(cli, "--count", "20", "--workers", "1", faults=(fault,), shares=shares,
                 until="delivered", timeout="2s")
    assert result.exit_code == ExitCode.FAILED
    data = json.loads(result.stdout)
    found = causes(data)
    assert cause in found and text in found[cause], data["round_trip"]["diagnoses"]
    if cause != "nothing":
        assert "nothing" not in found


def test_templates_dropped_but_text_answered_is_said_by_kind() -> None:
    """accept-then-drop: the worker crashes on templates and media; text gets its DLRs."""
    import time

    from ctwa.callbacks.listener import Listener
    from ctwa.http import Auth
    from ctwa.infra.threadserver import ThreadServer
    from ctwa.roundtrip.waiting import round_trip, wait_for
    from ctwa.send.endpoint import Endpoint
    from ctwa.send.freeform import build_freeform
    from ctwa.send.messaging import deliver
    from ctwa.send.samples import load_sample
    from ctwa.store.db import Store
    from ctwa.store.writer import BatchWriter

    port = free_port()
    bsp = BspSettings(misbehave=("accept-then-drop",),
                      status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    writer = BatchWriter()
    started = time.time()
    sent_at: dict[str, float] = {}
    kinds: dict[str, str] = {}
    try:
        with ThreadServer(Listener(store=writer).app(), "127.0.0.1", port), \
                RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
            endpoint = Endpoint(box.urls()["bsp_endpoint"], Auth("basic", "ctwa", "sandbox"))
            for i, kind in enumerate(("template", "template", "text", "text", "image")):
                msg_id = f"7|{i}|20261201|{i}"
                if kind == "template":
                    body = {**load_sample("text"), "to": "919000000001", "msgId": msg_id}
                else:
                    body = build_freeform(
                        kind, to="919000000001", waba="919999999998", msg_id=msg_id,
                        text="hi" if kind == "text" else None,
                        media_url="https://cdn.example.com/a.png" if kind == "image"
                        else None).to_wire()
                assert deliver(endpoint, body, timeout=5, deadline=5).verdict.accepted
                sent_at[msg_id], kinds[msg_id] = time.time(), kind
            with Store() as store:
                wait_for(store, "delivered", 2.0, msg_ids=list(sent_at), expected=5)
                trip = round_trip(store, sent_at, "delivered", started, time.time(),
                                  kinds=kinds)
    finally:
        writer.close()
    found = {d["cause"]: d for d in trip.diagnoses}
    assert "nothing" not in found, trip.diagnoses
    dropped = found["dropped_kinds"]
    assert dropped["seen"] == ("accepted image and template messages got no callback at all "
                               "(image 1, template 2), while text did")
    assert "its own pipeline drops them" in dropped["meaning"]


def test_a_throughput_ceiling_is_named_in_the_load_verdict(cli) -> None:
    result = run(cli, "--count", "40", "--workers", "1", faults=("slow-ceiling",),
                 shares={"slow-ceiling": 20.0}, until="sent", timeout="3s")
    data = json.loads(result.stdout)
    assert data["too_slow"] > 0
    line = next(v for v in data["verdict"] if v.startswith("DIAGNOSIS"))
    assert "throughput ceiling" in line and "message(s)/s" in line


def test_no_msgid_through_an_already_running_listener_is_reported(cli) -> None:
    """`ctwa callback listen` in another terminal: callbacks without a msgId still count."""
    from ctwa.callbacks.listener import Listener
    from ctwa.infra.threadserver import ThreadServer
    from ctwa.store.writer import BatchWriter

    port = free_port()
    bsp = BspSettings(misbehave=("no-msgid-dlr",),
                      status_url=f"http://127.0.0.1:{port}/status",
                      dlr_delays=(0.02, 0.05, 0.08))
    writer = BatchWriter()
    try:
        with ThreadServer(Listener(store=writer).app(), "127.0.0.1", port), \
                RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
            result = cli("--json", "send-template", "--sample", "text", "--to",
                         "919000000001", "--endpoint", box.urls()["bsp_endpoint"], *AUTH,
                         "--await-callbacks", "--callback-timeout", "2s", "--listen",
                         f"127.0.0.1:{port}")
    finally:
        writer.close()
    found = causes(json.loads(result.stdout))
    assert "without a msgId" in found["no_msgid"]


def test_every_fault_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("`--misbehave FAULT"):]
    for name in FAULTS:
        assert f"`{name}" in section, name


def test_the_ceiling_is_named_only_when_latency_grows_and_the_client_kept_up() -> None:
    from ctwa.load.ceiling import throughput_ceiling
    from ctwa.load.engine import LoadReport

    def report(p50, saturated=False, too_slow=10):
        return LoadReport(url="x", sent=100, too_slow=too_slow, elapsed=5.0,
                          peak_in_flight=100, client_saturated=saturated,
                          series={"p50_ms": p50})

    line = throughput_ceiling(report([200.0, 900.0, 1800.0]))
    assert line is not None and "about 20 message(s)/s" in line
    assert throughput_ceiling(report([200.0, 900.0, 1800.0], saturated=True)) is None
    assert throughput_ceiling(report([900.0, 950.0, 1000.0])) is None  # slow, not queuing
    assert throughput_ceiling(report([200.0, 1800.0], too_slow=0)) is None


@pytest.mark.parametrize(("fault", "anomaly", "until"), [
    ("duplicate-dlr", "duplicates", "delivered"),
    ("out-of-order", "downgrades", "delivered"),
    ("no-read", "missing_until", "read"),
    ("no-context", "no_context", "delivered"),
])
def test_the_older_faults_in_a_load_round_trip(cli, fault, anomaly, until) -> None:
    result = run(cli, "--count", "10", "--workers", "1", faults=(fault,), until=until,
                 timeout="2s")
    assert result.exit_code == ExitCode.FAILED
    trip = json.loads(result.stdout)["round_trip"]
    assert trip["anomalies"][anomaly] == 10, trip["anomalies"]
    assert "nothing" not in causes({"round_trip": trip})


def test_trace_tells_the_callbacks_without_a_msgid_that_came_after_the_send(cli) -> None:
    data = json.loads(run(cli, faults=("no-msgid-dlr",)).stdout)
    told = json.loads(cli("--json", "trace", data["msgId"]).stdout)
    assert [d["cause"] for d in told["diagnoses"]] == ["no_msgid"]
    assert "arrived without a msgId" in told["diagnoses"][0]["seen"]


def test_the_report_and_junit_carry_the_diagnosis(cli, tmp_path) -> None:
    page, junit = tmp_path / "run.html", tmp_path / "run.xml"
    run(cli, "--count", "5", "--workers", "1", "--report", str(page), "--junit", str(junit),
        faults=("wrapped-callbacks",), until="delivered", timeout="2s")
    html = page.read_text()
    assert 'id="diagnoses"' in html and "wrapped in `{url, payload}`" in html
    assert "post the inner object" in junit.read_text()

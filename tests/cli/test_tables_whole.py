"""Numbers are never cut: every result table, rendered at 40, 80 and 120 columns (40 as a
terminal, 80 and 120 piped with COLUMNS), holds every value the command's --json document
gives for it, whole; tables that do not fit wrap between words or stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from tests.conftest import EXAMPLES, LiveServer

AUTH = ("--username", "ctwa", "--password", "sandbox")
LONG_NAME = "whatsapp_hsm_technology_generic_verification_code_for_the_login_page"


@pytest.fixture(scope="module")
def box():
    with RunningSandbox(SandboxSettings(port=0, bsp=BspSettings(
            dlr_delays=(0.01, 0.02, 0.03), latency=(0.001, 0.005)))) as sandbox:
        yield sandbox


def at_widths(cli, monkeypatch, *argv: str) -> dict[int, str]:
    """stdout at 40 columns (a terminal), 80 and 120 (piped, COLUMNS says the width)."""
    shown = {}
    for width in (40, 80, 120):
        with monkeypatch.context() as env:
            env.setenv("COLUMNS", str(width))
            if width == 40:
                env.setenv("FORCE_COLOR", "1")  # rich: a terminal, 40 wide
            result = cli(*argv)
        shown[width] = result.stdout
    return shown


def whole(shown: dict[int, str], values: list[Any]) -> None:
    for width, text in shown.items():
        for value in values:
            assert str(value) in text, f"{value!r} missing at {width} columns:\n{text}"


def fmt(value: float) -> str:
    return f"{value:g}"


def test_the_load_report(cli, box, monkeypatch) -> None:
    argv = ("send-template", "--sample", "text", "--to", "919000000003", "--endpoint",
            box.urls()["bsp_endpoint"], *AUTH, "--count", "30", "--concurrency", "5",
            "--workers", "1")
    data = json.loads(cli("--json", *argv).stdout)
    shown = at_widths(cli, monkeypatch, *argv)
    values = [f"{data[k]:,}" for k in ("sent", "accepted", "too_slow", "timeouts",
                                      "connection_errors", "contract_violations")]
    values += [f"{n:,}" for n in data["failure_codes"].values()]
    values += [f"failure {code}" for code in data["failure_codes"]]
    values += [data["url"]]
    values += [c["reason"] for c in data["verdict"]["criteria"]  # summary lines, whole
               if c["name"] not in ("deadline", "client")]  # (those two quote timings)
    whole(shown, values)
    # latencies vary run to run: each run's own table names the six percentiles, and from
    # 80 columns up holds its six whole figures on one line, under them
    for width, text in shown.items():
        assert all(name in text for name in ("p50", "p90", "p95", "p99", "p99.9", "max"))
        if width >= 80:
            row = next(line for line in text.splitlines()
                       if line.strip().startswith("answer time"))
            assert len(row.split()) == 8, text  # "answer time" and six figures


def test_the_latency_row_keeps_p99_9_and_max_at_80_columns(cli, monkeypatch) -> None:
    """The issue's row: at 80 columns the six latency figures are all there."""
    import io

    from rich.console import Console

    from ctwa.cli.loadmode import _render_load
    from ctwa.cli.output import Output
    from ctwa.load.engine import LoadReport

    report = LoadReport("http://127.0.0.1:1/bsp/messages", sent=1000, accepted=1000,
                        latency_ms={"p50": 11.07, "p90": 19.2, "p95": 20.73, "p99": 21.12,
                                    "p99.9": 25.33, "max": 40.01},
                        loop_lag_ms={"p50": 0.1, "p99": 0.5, "max": 1.2},
                        connect_ms={"p50": 1.5, "p99": 3.25, "max": 4.75}, connections=1500,
                        requests_per_second=987.6, peak_in_flight=1500, mean_in_flight=14.2,
                        elapsed=1.0, timeout=10.0)
    for width in (40, 80, 110, 120):
        buffer = io.StringIO()
        out = Output()
        out._stdout = Console(file=buffer, width=width, force_terminal=True, no_color=True,
                              highlight=False)
        _render_load(out, report)
        text = buffer.getvalue()
        for figure in ("11.07", "19.2", "20.73", "21.12", "25.33", "40.01", "1,500", "988",
                       "14.2", "3.25", "4.75"):
            assert figure in text, f"{figure} cut at {width} columns:\n{text}"
        if width >= 80:  # laid out as a table (wrapped when needed) within the width;
            # narrower, stacked lines the terminal wraps
            assert all(len(line) <= width for line in text.splitlines()
                       if "report:" not in line), text
            # the six latency figures read across one line, each under its percentile
            lines = text.splitlines()
            header = next(line for line in lines if line.split()[:1] == ["latency"])
            row = next(line for line in lines if "answer time" in line)
            assert row.split()[2:] == ["11.07", "19.2", "20.73", "21.12", "25.33", "40.01"]
            assert header.split()[2:] == ["p50", "p90", "p95", "p99", "p99.9", "max"]
            for name, figure in zip(header.split()[2:], row.split()[2:], strict=True):
                assert header.index(name) + len(name) == row.index(figure) + len(figure)


def test_templates_list(cli, monkeypatch, tmp_path) -> None:
    from ctwa.sandbox.vendor import generated_templates, vendor_app

    templates = generated_templates(3)
    templates[0]["name"] = LONG_NAME
    templates[1]["status"] = "PAUSED"
    library = tmp_path / "lib"
    with LiveServer(vendor_app(templates, token="t0k")) as server:
        assert cli("import-templates", "--url", f"{server.url}/templates", "--token", "t0k",
                   "--library", str(library)).exit_code == 0
    data = json.loads(cli("--json", "templates", "list", "--library", str(library)).stdout)
    shown = at_widths(cli, monkeypatch, "templates", "list", "--library", str(library))
    whole(shown, [v for entry in data for v in (entry["name"], entry["language"],
                                                entry["status"], entry["category"])])
    whole(shown, [LONG_NAME, "PAUSED", "APPROVED"])


def test_the_upload_reconciliation(cli, box, monkeypatch, tmp_path) -> None:
    creds = box.credentials()
    users = tmp_path / "users.csv"
    users.write_bytes((EXAMPLES / "users.csv").read_bytes())
    argv = ("upload-users", str(users), "--base-url", box.urls()["clevertap_api"],
            "--account-id", creds["account_id"], "--passcode", creds["passcode"], "--restart")
    data = json.loads(cli("--json", *argv).stdout)
    shown = at_widths(cli, monkeypatch, *argv)
    counts = data["counts"]
    whole(shown, [f"{counts[k]:,}" for k in ("rows_read", "uploaded", "rejected", "refused",
                                             "not_uploaded")])
    whole(shown, [c["reason"] for c in data["verdict"]["criteria"]])


def test_report_diff_and_profiles(cli, monkeypatch) -> None:
    from ctwa.report.summary import new_summary
    from ctwa.report.verdict import Criterion, Verdict
    from ctwa.store.db import Store

    with Store() as store:
        for run_id, p99 in (("load-a-1", 123.456), ("load-b-1", 234.5)):
            summary = new_summary("load", target="t", started=0.0, ended=1.0,
                                  verdict=Verdict((Criterion("deadline", "pass", "ok"),)),
                                  metrics={"p99": p99, "rps": 1234.5, "errors": 0.25,
                                           "rows_per_second_in_a_long_metric_name": 5.0},
                                  data={})
            summary["id"] = run_id
            store.add_run(run_id, "load", summary["outcome"], summary)
    data = json.loads(cli("--json", "report", "diff", "load-a-1", "load-b-1").stdout)
    shown = at_widths(cli, monkeypatch, "report", "diff", "load-a-1", "load-b-1")
    whole(shown, [row["metric"] for row in data["metrics"]] + [row["change"] for row in
                                                               data["metrics"]])
    whole(shown, ["123.5", "234.5", "1,234", "REGRESSED"])
    assert cli("profile", "add", "acme", "--endpoint",
               "https://bsp.example/a/very/long/path/to/the/messaging/endpoint/of/acme",
               "--auth", "basic", "--username", "acme-user").exit_code == 0
    listed = json.loads(cli("--json", "profile", "list").stdout)
    shown = at_widths(cli, monkeypatch, "profile", "list")
    endpoint = listed["profiles"]["acme"]["endpoint"]
    whole(shown, ["acme", endpoint, "basic"])


def test_the_import_report_listen_stats_and_profile_show(cli, box, monkeypatch,
                                                        tmp_path) -> None:
    import io

    from rich.console import Console

    from ctwa.cli.callbacks import _print_stats
    from ctwa.cli.output import Output

    argv = ("import-templates", "--url", box.urls()["vendor_templates"], "--auth", "bearer",
            "--token", box.credentials()["vendor_token"], "--library", str(tmp_path / "lib"),
            "--limit", "4")
    data = json.loads(cli("--json", *argv).stdout)
    shown = at_widths(cli, monkeypatch, *argv)
    whole(shown, [str(data["pages"]), str(data["fetched"]), data["url"]])
    tallies = {"callbacks": 123456, "valid": 123000, "invalid": 456, "with_variants": 7,
               "messages": 99999, "sent": 98765, "delivered": 87654, "read": 76543,
               "clicked": 6543, "replies": 543, "anomaly_count": 21,
               "failed": {"1006": 1234, "1009": 567}, "inbound": {"text": 321, "image": 12}}
    for width in (40, 80, 120):
        buffer = io.StringIO()
        out = Output()
        out._stdout = Console(file=buffer, width=width, force_terminal=True, no_color=True)
        _print_stats(out, tallies)
        text = buffer.getvalue()
        for value in (*(str(v) for v in tallies.values() if isinstance(v, int)),
                      "1006: 1234", "1009: 567", "text: 321", "image: 12"):
            assert value in text, (value, width, text)
    assert cli("profile", "add", "acme", "--endpoint",
               "https://bsp.example/a/very/long/path/to/the/messaging/endpoint/of/acme",
               "--auth", "basic", "--username", "acme-user-with-a-long-name").exit_code == 0
    settings = json.loads(cli("--json", "profile", "show", "acme").stdout)["settings"]
    shown = at_widths(cli, monkeypatch, "profile", "show", "acme")
    whole(shown, [str(v) for v in settings.values() if v is not None and v != []])

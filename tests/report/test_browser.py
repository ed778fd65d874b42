"""Each report kind, from a real run against the sandbox, opened in headless Chromium: the DOM
holds every chart with its data points, the numbers shown are the JSON summary's, and the page
made no network request at all."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from ctwa.store.db import Store
from tests.conftest import EXAMPLES
from tests.report.browser import CountingProxy, chromium, dump_dom

if chromium() is None and not os.environ.get("CI"):  # CI installs it (.ci/run): fail there
    pytest.skip("headless Chromium is not installed (apt-get install chromium)",
                allow_module_level=True)

AUTH = ("--username", "ctwa", "--password", "sandbox")


@pytest.fixture(scope="module")
def box():
    with RunningSandbox(SandboxSettings(port=0, bsp=BspSettings(
            dlr_delays=(0.02, 0.05, 0.08), latency=(0.005, 0.02)))) as sandbox:
        yield sandbox


@pytest.fixture
def proxy():
    catcher = CountingProxy()
    yield catcher
    catcher.close()


def summary_of(run_id: str) -> dict:
    with Store() as store:
        return json.loads(store.run(run_id)["summary"])


def latest_run() -> dict:
    with Store() as store:
        return summary_of(store.runs(1)[0]["id"])


def shown_metrics(dom: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([^"]+)">([^<]*)<', dom))


def number(text: str) -> float:
    return float(text.replace(",", ""))


def chart_points(dom: str, chart_id: str) -> int:
    """Data points drawn in one chart: line vertices and bars."""
    match = re.search(rf'<figure class="chart" id="{chart_id}">(.*?)</figure>', dom, re.S)
    assert match, f"no chart {chart_id}"
    svg = match.group(1)
    vertices = sum(len(re.findall(r"[ML]?\s*-?[\d.]+[ ,]-?[\d.]+", d))
                   for d in re.findall(r'<path d="([^"]+)" class="line ', svg))
    bars = len(re.findall(r'<rect[^>]*class="rect reactive', svg))
    return vertices + bars


def open_report(page: Path, proxy: CountingProxy, tmp_path: Path) -> str:
    assert page.stat().st_size < 5 * 1024 * 1024
    dom = dump_dom(page, proxy, tmp_path / "chromium")
    assert proxy.page_requests() == [], "the page made network requests"
    assert "<svg" in dom and not re.search(r'(src|href)="https?:', dom)
    return dom


def test_load_report(cli, box, proxy, tmp_path) -> None:
    page = tmp_path / "load.html"
    result = cli("--json", "send-template", "--sample", "lto", "--to", "919000000001",
                 "--endpoint", box.urls()["bsp_endpoint"], *AUTH, "--duration", "3s",
                 "--concurrency", "20", "--workers", "1", "--report", str(page),
                 "--junit", str(tmp_path / "load.xml"))
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    summary = latest_run()
    dom = open_report(page, proxy, tmp_path)
    shown = shown_metrics(dom)
    assert number(shown["sent"]) == report["sent"] == summary["data"]["sent"]
    assert number(shown["latency_p99"]) == pytest.approx(report["latency_ms"]["p99"], abs=0.01)
    assert number(shown["rps"]) == pytest.approx(report["requests_per_second"], abs=0.1)
    for chart in ("chart-throughput", "chart-in-flight", "chart-latency", "chart-lag",
                  "chart-distribution", "chart-answers"):
        assert chart_points(dom, chart) >= 1, chart
    assert chart_points(dom, "chart-distribution") >= 10
    assert "concurrency" in dom and "not tested" in dom.lower()
    xml = (tmp_path / "load.xml").read_text()
    assert '<testcase name="deadline"' in xml and "<skipped" in xml


def test_a_load_run_too_short_for_charts_says_so(cli, box, proxy, tmp_path) -> None:
    page = tmp_path / "short.html"
    result = cli("send-template", "--sample", "text", "--to", "919000000001", "--endpoint",
                 box.urls()["bsp_endpoint"], *AUTH, "--count", "20", "--report", str(page))
    assert result.exit_code == 0, result.stderr
    dom = open_report(page, proxy, tmp_path)
    assert "a chart needs at least 3 seconds" in dom and 'id="chart-throughput"' not in dom
    assert "too few for a p99" in dom  # the warning that makes a pass meaningless, first
    assert dom.index("too few for a p99") < dom.index('id="criteria"')


def test_round_trip_report(cli, box, proxy, tmp_path) -> None:
    from tests.roundtrip.test_round_trip import free_port

    port = free_port()
    box.settings.bsp.status_url = f"http://127.0.0.1:{port}/status"
    page = tmp_path / "trip.html"
    try:
        result = cli("--json", "send-template", "--sample", "text", "--to", "919000000001",
                     "--endpoint", box.urls()["bsp_endpoint"], *AUTH, "--count", "50",
                     "--await-callbacks", "--until", "read", "--callback-timeout", "20s",
                     "--listen", f"127.0.0.1:{port}", "--report", str(page))
    finally:
        box.settings.bsp.status_url = box.urls()["status_callback"]
    assert result.exit_code == 0, result.stderr
    trip = json.loads(result.stdout)["round_trip"]
    dom = open_report(page, proxy, tmp_path)
    shown = shown_metrics(dom)
    assert number(shown["rt_read"]) == trip["furthest"]["read"] == 50
    assert chart_points(dom, "chart-funnel") == 3 and chart_points(dom, "chart-time-to-status")


def test_upload_report(cli, box, proxy, tmp_path) -> None:
    users = tmp_path / "users.csv"
    users.write_bytes((EXAMPLES / "users.csv").read_bytes())
    page = tmp_path / "upload.html"
    creds = box.credentials()
    result = cli("--json", "upload-users", str(users), "--base-url",
                 box.urls()["clevertap_api"], "--account-id", creds["account_id"],
                 "--passcode", creds["passcode"], "--report", str(page),
                 "--junit", str(tmp_path / "upload.xml"))
    data = json.loads(result.stdout)
    dom = open_report(page, proxy, tmp_path)
    shown = shown_metrics(dom)
    assert number(shown["rows_read"]) == data["counts"]["rows_read"]
    assert number(shown["uploaded"]) == data["counts"]["uploaded"]
    assert chart_points(dom, "chart-rows") >= 2
    counts = data["counts"]
    assert sum(data["reject_codes"].values()) == (counts["rejected"] + counts["refused"]
                                                  + counts["not_uploaded"]) > 0
    assert chart_points(dom, "chart-rejects") == len(data["reject_codes"])
    assert creds["passcode"] not in dom  # the command line is shown masked
    assert "rows uploaded" in (tmp_path / "upload.xml").read_text()


def test_import_report(cli, box, proxy, tmp_path) -> None:
    page = tmp_path / "import.html"
    result = cli("--json", "import-templates", "--url", box.urls()["vendor_templates"],
                 "--auth", "bearer", "--token", box.credentials()["vendor_token"],
                 "--library", str(tmp_path / "lib"), "--report", str(page))
    data = json.loads(result.stdout)
    dom = open_report(page, proxy, tmp_path)
    shown = shown_metrics(dom)
    assert number(shown["templates"]) == data["fetched"] and number(shown["pages"]) == \
        data["pages"]
    assert chart_points(dom, "chart-by-status") >= 1
    assert chart_points(dom, "chart-by-category") >= 1
    assert box.credentials()["vendor_token"] not in dom


def test_replay_report(cli, box, proxy, tmp_path) -> None:
    page = tmp_path / "replay.html"
    result = cli("callback", "replay", str(EXAMPLES / "callbacks" / "lifecycle.yaml"),
                 "--status-url", box.urls()["status_callback"], "--inbound-url",
                 box.urls()["inbound_callback"], "--no-delay", "--report", str(page))
    assert result.exit_code == 0, result.stderr
    dom = open_report(page, proxy, tmp_path)
    assert number(shown_metrics(dom)["failed"]) == 0 and chart_points(dom, "chart-counts")


def test_the_network_check_catches_a_page_that_fetches(proxy, tmp_path) -> None:
    """The check above can fail: a page with one web font is caught."""
    page = tmp_path / "fetches.html"
    page.write_text('<html><head><link rel="stylesheet" href="https://fonts.example.com/a.css">'
                    '</head><body><img src="http://cdn.example.com/x.png"></body></html>')
    dump_dom(page, proxy, tmp_path / "chromium")
    assert any("example.com" in line for line in proxy.page_requests())

"""One self-contained HTML page per run: the verdict and the warnings that make a pass
meaningless first, then the criteria, the figures, the charts (inline SVG) and the run's
metadata. Nothing is fetched when it is opened: no script, font or stylesheet from anywhere."""

from __future__ import annotations

import html
import json
import time
from typing import Any

from ctwa.report import charts

CSS = """
body{font-family:system-ui,sans-serif;max-width:920px;margin:24px auto;color:#1d2330;
padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin-top:28px;border-bottom:1px
solid #d8dce4;padding-bottom:4px}
.verdict{font-size:1.2em;font-weight:600;padding:10px 14px;border-radius:6px}
.pass{background:#e3f6e8;color:#14632f}.fail{background:#fde6e6;color:#8f1d1d}
.nottested{background:#fff4d6;color:#7a5600}
.warning{background:#fff4d6;border-left:4px solid #d89b00;padding:8px 12px;margin:6px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}td,th{text-align:left;padding:4px 8px;
border-bottom:1px solid #eef0f4;vertical-align:top}td.num{text-align:right;
font-variant-numeric:tabular-nums}
.status{font-weight:600;white-space:nowrap}.muted{color:#667085}
figure.chart{margin:12px 0;page-break-inside:avoid}figure.chart svg{max-width:100%;height:auto}
.short{color:#667085;font-style:italic}
@media print{body{margin:0}h2{page-break-after:avoid}}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(at))


def _figure(label: str, value: Any, metric: str | None = None) -> str:
    attribute = f' data-metric="{_e(metric)}"' if metric else ""
    shown = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else (
        f"{value:,}" if isinstance(value, int) else str(value))
    return f'<tr><td>{_e(label)}</td><td class="num"{attribute}>{_e(shown)}</td></tr>'


def render(summary: dict[str, Any]) -> str:
    kind = summary["kind"]
    status = "pass" if summary["passed"] else "fail"
    parts = [f"<h1>ctwa {kind} report</h1>",
             f'<p class="muted">{_e(summary["target"])}</p>',
             f'<p class="verdict {status}" id="verdict">'
             f'{"PASSED" if summary["passed"] else "FAILED"}</p>']
    for warning in summary["warnings"]:
        parts.append(f'<div class="warning">Warning: {_e(warning)}</div>')
    parts.append("<h2>Criteria</h2><table id=\"criteria\">")
    for c in summary["criteria"]:
        css = c["status"].replace(" ", "")
        parts.append(f'<tr><td class="status {css}">{_e(c["status"].upper())}</td>'
                     f'<td>{_e(c["name"])}</td><td>{_e(c["detail"])}</td></tr>')
    parts.append("</table>")
    body = {"load": _load, "upload": _upload, "import": _import,
            "certify": _certify}.get(kind, _generic)
    parts += body(summary)
    parts.append(_metadata(summary))
    title = f"ctwa {kind} report: {summary['target']}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(parts)
            + _embedded(summary) + "</body></html>\n")


def _embedded(summary: dict[str, Any]) -> str:
    """The summary itself, for tools (and ``report diff`` on an HTML file one day)."""
    text = json.dumps({k: v for k, v in summary.items() if k != "data"}, default=str)
    return ('<script type="application/json" id="ctwa-summary">' + script_safe(text)
            + "</script>")


def script_safe(text: str) -> str:
    """JSON fit to embed in a ``<script>`` element: ``<``, ``>`` and ``&`` written as
    ``\\u003c``, ``\\u003e``, ``\\u0026`` (the same JSON to a parser), so no text (``</script>``,
    ``<!--<script>``) can end the element or change how the HTML parser reads it; U+2028 and
    U+2029 too, which older JavaScript parsers take as line ends."""
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _metadata(summary: dict[str, Any]) -> str:
    machine = summary["machine"]
    rows = [("ctwa", summary["ctwa_version"]), ("command", summary["command"]),
            ("target", summary["target"]),
            ("machine", f"{machine['host']} ({machine['system']}, {machine['cpus']} cpus, "
                        f"Python {machine['python']})"),
            ("started", _when(summary["started"])), ("ended", _when(summary["ended"])),
            ("run id", summary["id"])]
    return "<h2>Run</h2><table id=\"metadata\">" + "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _too_short(what: str, why: str) -> str:
    return f'<p class="short">{_e(what)}: {_e(why)}</p>'


def _load(summary: dict[str, Any]) -> list[str]:
    data = summary["data"]
    metrics = summary["metrics"]
    latency = data["latency_ms"]
    parts = ["<h2>Figures</h2><table id=\"figures\">",
             _figure("sent", data["sent"], "sent"),
             _figure("accepted in time", data["accepted"], "accepted"),
             _figure(f"over the {data['deadline']:g} s deadline", data["too_slow"], "too_slow"),
             _figure("not accepted", data["failed"], "failed"),
             _figure("requests/s", metrics["rps"], "rps"),
             _figure("peak in flight", data["peak_in_flight"], "peak_in_flight")]
    for name in ("p50", "p90", "p99", "p99.9", "max"):
        if name in latency:
            parts.append(_figure(f"latency {name} (ms)", latency[name], f"latency_{name}"))
    if data.get("service_ms"):
        for name in ("p50", "p99"):
            parts.append(_figure(f"latency {name} from the write (ms)",
                                 data["service_ms"][name], f"service_{name}"))
    if data.get("rate"):
        achieved = data["sent"] / data["elapsed"] if data["elapsed"] else 0.0
        parts.append(_figure("intended rate (/s)", float(data["rate"]), "intended_rate"))
        parts.append(_figure("achieved rate (/s)", round(achieved, 1), "achieved_rate"))
    parts.append("</table>")
    parts.append("<h2>Over time</h2>")
    series = data.get("series") or {}
    seconds = series.get("second", [])
    if len(seconds) < 3:
        parts.append(_too_short("charts over time", f"the run lasted {data['elapsed']:.1f} s; "
                                "a chart needs at least 3 seconds"))
    else:
        parts.append(charts.lines("chart-throughput", "answers per second", seconds,
                                  {"answered": series["answered"], "failed": series["failed"],
                                   **({"sent": series["sent"]} if data.get("rate") else {})},
                                  "per second"))
        parts.append(charts.lines("chart-in-flight", "requests in flight (peak each second)",
                                  seconds, {"in flight": series["in_flight"]}))
        parts.append(charts.lines("chart-latency", "latency percentiles each second (ms)",
                                  seconds, {p: series[f"{p}_ms"] for p in ("p50", "p90",
                                                                          "p99")}, "ms"))
        parts.append(charts.lines("chart-lag", "client event loop lag (worst each second, ms)",
                                  seconds, {"loop lag": series["lag_ms"]}, "ms"))
    parts.append("<h2>Distribution</h2>")
    curve = data.get("latency_curve") or []
    if len(curve) < 2:
        parts.append(_too_short("latency distribution", "no answers were timed"))
    else:
        parts.append(charts.percentile_plot("chart-distribution",
                                            "latency by percentile (HDR histogram)", curve))
    answers = {"accepted": data["accepted"], "too slow": data["too_slow"],
               **{f"failure {k}": v for k, v in data["failure_codes"].items()},
               **{f"HTTP {k}": v for k, v in data["http_statuses"].items()}}
    if data["connection_errors"]:
        answers["connection errors"] = data["connection_errors"]
    if data["contract_violations"]:
        answers["contract violations"] = data["contract_violations"]
    parts.append(charts.bars("chart-answers", "answers by verdict and code", answers))
    trip = data.get("round_trip")
    if trip:
        parts += _round_trip(trip)
    return parts


def _round_trip(trip: dict[str, Any]) -> list[str]:
    from ctwa.roundtrip.analyze import ANOMALY_TEXT

    parts = ["<h2>Callbacks (round trip)</h2><table id=\"round-trip\">",
             _figure("accepted", trip["accepted"], "rt_accepted")]
    for status, count in trip["furthest"].items():
        parts.append(_figure(f"furthest: {status}", count, f"rt_{status}"))
    for kind, count in trip["anomalies"].items():
        parts.append(_figure(f"anomaly {kind} ({ANOMALY_TEXT.get(kind, '')})", count,
                             f"rt_anomaly_{kind}"))
    parts.append("</table>")
    if trip.get("diagnoses"):
        from ctwa.roundtrip.diagnose import line

        parts.append("<h3>Diagnosis</h3><ul id=\"diagnoses\">" + "".join(
            f"<li>{_e(line(d))}</li>" for d in trip["diagnoses"]) + "</ul>")
    funnel = {s: trip["reached"].get(s, 0) for s in ("sent", "delivered", "read")}
    funnel.update({f"failed {code}": n for code, n in trip["failed_codes"].items()})
    parts.append(charts.bars("chart-funnel", "DLR funnel: messages that reached each status",
                             funnel))
    times = {s: v for s, v in trip["time_to_status_ms"].items() if v}
    if times:
        parts.append(charts.grouped_bars(
            "chart-time-to-status", "time from the send to each status (ms)", list(times),
            {p: [v.get(p, 0.0) for v in times.values()] for p in ("p50", "p90", "p99")},
            "ms"))
    return parts


def _upload(summary: dict[str, Any]) -> list[str]:
    data = summary["data"]
    counts = data["counts"]
    parts = ["<h2>Figures</h2><table id=\"figures\">"]
    for key in ("rows_read", "uploaded", "rejected", "refused", "not_uploaded",
                "would_upload"):
        parts.append(_figure(key.replace("_", " "), counts[key], key))
    parts.append(_figure("rows/s", summary["metrics"]["rows_per_second"], "rows_per_second"))
    parts.append("</table>")
    outcome = {k.replace("_", " "): counts[k] for k in ("uploaded", "rejected", "refused",
                                                      "not_uploaded", "would_upload")
               if counts[k]}
    if outcome:
        parts.append(charts.bars("chart-rows", "rows by outcome (reconciliation)", outcome))
    else:
        parts.append(_too_short("rows by outcome", "the file had no rows"))
    codes = data.get("reject_codes") or {}
    if codes:
        parts.append(charts.bars("chart-rejects", "rejects by reason", codes))
    series = data.get("series") or {}
    if len(series.get("second", [])) >= 3:
        parts.append(charts.lines("chart-rate", "rows per second", series["second"],
                                  {"rows": series["rows"]}))
    else:
        parts.append(_too_short("rows per second over time", "the upload took under 3 s"))
    return parts


def _import(summary: dict[str, Any]) -> list[str]:
    data = summary["data"]
    parts = ["<h2>Figures</h2><table id=\"figures\">",
             _figure("pages", data["pages"], "pages"),
             _figure("templates fetched", data["fetched"], "templates"),
             _figure("added", len(data["added"]), "added"),
             _figure("updated", len(data["updated"]), "updated"),
             _figure("unchanged", len(data["unchanged"]), "unchanged"),
             _figure("rejected", len(data["rejected"]), "rejected"), "</table>"]
    for key, title in (("by_status", "templates by status"),
                       ("by_category", "templates by category")):
        values = data.get(key) or {}
        if values:
            parts.append(charts.bars(f"chart-{key.replace('_', '-')}", title, values))
    if data["rejected"]:
        parts.append("<h2>Problems</h2><table id=\"problems\">" + "".join(
            f"<tr><td>{_e(r['name'])} ({_e(r['language'])}, page {r['page']})</td>"
            f"<td>{_e(r['path'])}: {_e(r['reason'])}</td></tr>"
            for r in data["rejected"][:200]) + "</table>")
    return parts


def _certify(summary: dict[str, Any]) -> list[str]:
    """Each check's evidence, then the scale step's load charts when it ran."""
    data = summary["data"]
    parts = [f'<p class="muted">Checked against: {_e(data["spec"])}; test number '
             f'{_e(data["to"])}</p>', "<h2>Evidence</h2>"]
    for check in data["checks"]:
        evidence = {k: v for k, v in check["evidence"].items() if k != "report"}
        text = json.dumps(evidence, indent=2, ensure_ascii=False, default=str)
        if len(text) > 20_000:
            text = text[:20_000] + "\n... (the whole of it is in results.json)"
        parts.append(f'<details id="evidence-{_e(check["name"])}"><summary>'
                     f'{_e(check["status"].upper())}: {_e(check["name"])}: {_e(check["title"])}'
                     f"</summary><pre>{_e(text)}</pre></details>")
    if data.get("scale"):
        parts.append("<h2>Scale step</h2>")
        parts += _load({"data": data["scale"], "metrics": {
            "rps": data["scale"]["requests_per_second"]}})
    return parts


def _generic(summary: dict[str, Any]) -> list[str]:
    metrics = summary["metrics"]
    parts = ["<h2>Figures</h2><table id=\"figures\">"]
    parts += [_figure(k.replace("_", " "), v, k) for k, v in metrics.items()]
    parts.append("</table>")
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    if numeric:
        parts.append(charts.bars("chart-counts", "counts", numeric))
    return parts

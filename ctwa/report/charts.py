"""Charts as static SVG from pygal: no script, no font or stylesheet from the web, printable.

pygal was chosen by measuring (benchmarks/README.md): 44 ms to import and ~9 ms a chart, 1.3 MB
installed; matplotlib's SVG looks alike but costs ~350 ms to import and ~110 MB installed with
numpy; plotly's interactive pages carry 4.7 MB of inlined JavaScript each and 64 MB installed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT = 860, 300


def _config(title: str, **options: Any) -> Any:
    import pygal
    from pygal.style import CleanStyle

    style = CleanStyle(font_family="sans-serif", background="white",
                       plot_background="white")
    return pygal.Config(js=[], css=["file://style.css", "file://graph.css"], style=style,
                        width=WIDTH, height=HEIGHT, explicit_size=True, title=title,
                        disable_xml_declaration=True, legend_at_bottom=True,
                        truncate_legend=-1, print_values=False, **options)


def _svg(chart: Any, chart_id: str) -> str:
    svg = chart.render(is_unicode=True)
    return f'<figure class="chart" id="{chart_id}">{svg}</figure>'


def lines(chart_id: str, title: str, x: Sequence[float],
          series: dict[str, Sequence[float | None]], y_title: str = "") -> str:
    """Lines over time (x in seconds)."""
    import pygal

    chart = pygal.XY(_config(title, show_dots=len(x) <= 60, dots_size=2, y_title=y_title,
                             include_x_axis=True,
                             x_title="seconds", stroke_style={"width": 2}))
    for name, values in series.items():
        chart.add(name, [(xi, yi) for xi, yi in zip(x, values, strict=False)
                         if yi is not None])
    return _svg(chart, chart_id)


def bars(chart_id: str, title: str, values: dict[str, float], y_title: str = "") -> str:
    import pygal

    chart = pygal.Bar(_config(title, y_title=y_title))
    for name, value in values.items():
        chart.add(name, [value])
    return _svg(chart, chart_id)


def grouped_bars(chart_id: str, title: str, labels: list[str],
                 series: dict[str, list[float]], y_title: str = "") -> str:
    """Bars per label, one per series (e.g. p50/p90/p99 for each status)."""
    import pygal

    chart = pygal.Bar(_config(title, y_title=y_title, x_labels=labels))
    for name, values in series.items():
        chart.add(name, values)
    return _svg(chart, chart_id)


def percentile_plot(chart_id: str, title: str, curve: Sequence[Sequence[float]]) -> str:
    """Latency by percentile on a log-of-(1/(1-p)) axis, as HdrHistogram's plots do, so the
    tail gets the room it deserves: x is the count of nines."""
    import math

    import pygal

    points = [(math.log10(1 / (1 - p / 100)) if p < 100 else 6.0, ms) for p, ms in curve]
    chart = pygal.XY(_config(title, show_dots=True, dots_size=3, x_title="percentile",
                             y_title="ms", x_labels=[0, 1, 2, 3, 4, 5],
                             x_value_formatter=lambda v: _nines(v)))
    chart.add("latency", points)
    return _svg(chart, chart_id)


def _nines(value: float) -> str:
    return {0: "0%", 1: "90%", 2: "99%", 3: "99.9%", 4: "99.99%", 5: "99.999%"}.get(
        round(value), f"{value:g}")

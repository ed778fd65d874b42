"""All terminal output goes through here: human text on stderr, data on stdout.

``--json`` prints exactly one JSON document on stdout and nothing else there; messages and
errors always go to stderr (rich, which honours ``NO_COLOR`` and plain pipes). Every string
passes through :func:`ctwa.infra.safetext.safe_text` on its way out: masked (a secret never
reaches a terminal or a log file whatever path it took), control characters escaped (no ESC or
OSC sequence from a remote reaches the terminal), lone surrogates replaced, and Rich markup
escaped. The ``--json`` document is masked on its values, before it is serialised, and every
control character and lone surrogate in it is a JSON escape: it always parses back, to the
very names a later command takes.

Every verb says its stream in its name, so a caller cannot send a result to stderr or a
message to stdout by mistake:

- ``stdout_*`` -- results, which pipes and files receive: ``stdout_line`` (one whole line),
  ``stdout_result`` (rich renderables), ``stdout_table`` (a table, never cut), ``stdout_json``
  (the one document of ``--json``); ``stdout_console`` is the rich console behind them.
- ``stderr_*`` -- messages for people, never mixed into results: ``stderr_line`` (one line),
  ``stderr_print`` (rich renderables), ``stderr_log`` (a log line, fast when piped),
  ``stderr_success``, ``stderr_warn`` (``warning: ...``), ``stderr_error`` (``error: ...``),
  ``stderr_trace`` (only with ``-v``); ``stderr_console`` is the rich console behind them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctwa.infra.safetext import dumps_safe, safe_text

#: The width results are laid out at when stdout is a pipe or a file: wide enough never to cut.
PIPE_WIDTH = 10_000
#: Tables piped or written to a file are laid out at this width unless COLUMNS says more.
PIPED_TABLE_WIDTH = 80
#: Narrower than this, a table is stacked whatever the terminal says.
MIN_WIDTH = 20


def _plain(cell: Any) -> str:
    """A table cell's text (cells are strings or rich Text)."""
    plain = getattr(cell, "plain", None)
    return str(plain if plain is not None else cell)

if TYPE_CHECKING:
    from rich.console import Console


def problem_line(problem: Any) -> tuple[str, str]:
    """One lint problem as a line and its style; lint and the listener print the same way."""
    errata = f" [ERRATA {problem.errata}]" if problem.errata else ""
    hint = f" -> {problem.hint}" if problem.hint else ""
    style = "red" if problem.severity == "error" else "yellow"
    return f"{problem.path}: {problem.severity}: {problem.message}{hint}{errata}", style


def shown(text: str) -> str:
    """A text fit for the terminal: masked, lone surrogates replaced, control characters
    escaped (line breaks and tabs kept), never cut."""
    return safe_text(text, limit=None)


def as_text(renderable: Any) -> Any:
    """A string as a ``rich.text.Text`` made safe (a name like ``a[/x]`` is text, not Rich
    markup that would stop the command); other renderables as they are."""
    if isinstance(renderable, str):
        from rich.text import Text

        return Text(shown(renderable))
    return renderable


def safe_table(table: Any) -> None:
    """Every string of a ``rich.table.Table`` (title, headers, cells) turned into safe text:
    cells hold names, statuses and URLs from remotes and users, never markup."""
    from rich.table import Table

    if not isinstance(table, Table):
        return
    table.title = as_text(table.title) if table.title is not None else None
    for column in table.columns:
        column.header = as_text(column.header)
        column._cells = [as_text(cell) for cell in column._cells]


@dataclass
class Output:
    json_mode: bool = False
    verbose: bool = False
    debug: bool = False
    _stderr: Console | None = field(default=None, repr=False)
    _stdout: Console | None = field(default=None, repr=False)
    _log_to_terminal: bool | None = field(default=None, repr=False)

    @property
    def stderr_console(self) -> Console:
        """The stderr console, created on first use (rich costs start-up time)."""
        if self._stderr is None:
            from rich.console import Console

            self._stderr = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._stderr

    @property
    def stdout_console(self) -> Console:
        """The stdout console, for results (previews, tables) that pipes and files receive.

        Piped, it is as wide as the widest line: a name cut to fit 80 columns is a different
        name when pasted back."""
        if self._stdout is None:
            from rich.console import Console

            console = Console(highlight=False)
            if not console.is_terminal:  # a pipe or a file (FORCE_COLOR makes a terminal)
                console.width = PIPE_WIDTH
            self._stdout = console
        return self._stdout

    def stdout_line(self, text: str, style: str | None = None) -> None:
        """One line of a result for people (a lint verdict, a list entry), on stdout, whole."""
        from rich.markup import escape

        body = escape(shown(text))
        self.stdout_console.print(f"[{style}]{body}[/]" if style else body, soft_wrap=True)

    def stdout_result(self, *renderables: Any) -> None:
        """A result for people, on stdout, wrapped at the width (never cut); a string is
        shown as text (never as Rich markup), made safe."""
        self.stdout_console.print(*map(as_text, renderables), soft_wrap=False)

    def preview_width(self) -> int:
        """The terminal's width when stdout is one, else 60 (a phone-like message)."""
        return self.stdout_console.width if self.stdout_console.is_terminal else 60

    def table_width(self) -> int:
        """The width tables are laid out at: the terminal's, or when stdout is a pipe or a
        file, 80 unless ``COLUMNS`` says more."""
        if self.stdout_console.is_terminal:
            return self.stdout_console.width
        import os

        try:
            columns = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
        return max(PIPED_TABLE_WIDTH, columns)

    def stdout_table(self, table: Any) -> None:
        """A result table on stdout, every value whole at any width: laid out as it is when
        it fits, with cells wrapped between words when that fits, else stacked (one
        ``header: value`` line per cell); never a character dropped. Every string in it is
        shown as text, never markup."""
        from rich.measure import Measurement

        safe_table(table)
        console, width = self.stdout_console, max(MIN_WIDTH, self.table_width())
        title, table.title = table.title, None
        if title:
            self.stdout_line(_plain(title), "bold")
        for column in table.columns:
            column.no_wrap, column.overflow = True, "ignore"
        unbounded = console.options.update(width=PIPE_WIDTH)  # measured, not clamped
        if Measurement.get(console, unbounded, table).maximum <= width:
            console.print(table, crop=False, width=width)
            return
        # wrapped between words: every column at least as wide as its longest word, the
        # rest of the width shared out by how much more each would take (rich alone would
        # fold words to share the width out)
        cells = [[column.header if table.show_header else "", *column._cells]
                 for column in table.columns]
        least = [max((len(w) for cell in column for w in _plain(cell).split()), default=1)
                 for column in cells]
        most = [max((len(line) for cell in column for line in _plain(cell).splitlines()),
                    default=1) for column in cells]
        padding = table.padding[1] + table.padding[3]
        edges = 0 if table.box is None else len(table.columns) + 1
        room = width - padding * len(least) - edges - sum(least)
        if room >= 0:
            wanted = [m - n for m, n in zip(most, least, strict=True)]
            total = sum(wanted) or 1
            widths = [n + want * room // total for n, want in zip(least, wanted, strict=True)]
            for column, exact in zip(table.columns, widths, strict=True):
                column.no_wrap, column.overflow = False, "fold"
                column.width, column.min_width, column.max_width = exact, None, None
            console.print(table, crop=False, width=width)
            return
        self._stacked(table)

    def _stacked(self, table: Any) -> None:
        """The table one cell a line: ``header: value`` (or the row's label first, for a
        table without headers), a blank line between rows."""
        columns = table.columns
        rows = max((len(c._cells) for c in columns), default=0)
        for index in range(rows):
            cells = [_plain(c._cells[index]) if index < len(c._cells) else "" for c in columns]
            if table.show_header:
                for column, cell in zip(columns, cells, strict=True):
                    header = _plain(column.header)
                    if cell:
                        self.stdout_line(f"{header}: {cell}" if header else cell)
                self.stdout_line("")
            else:
                label, *values = cells
                self.stdout_line(f"{label}: " + "  ".join(v for v in values if v) if values else
                          label)

    def stderr_print(self, *renderables: Any) -> None:
        """Rich renderables (tables, panels) for people, on stderr; strings as text."""
        for renderable in renderables:
            safe_table(renderable)
        self.stderr_console.print(*map(as_text, renderables))

    def stderr_line(self, text: str, style: str | None = None) -> None:
        from rich.markup import escape

        body = escape(shown(text))
        self.stderr_console.print(f"[{style}]{body}[/]" if style else body)

    def stderr_log(self, text: str, style: str | None = None) -> None:
        """A log line that may come thousands of times a second (the listener's): written
        straight to stderr when it is not a terminal; rich's rendering (~90 us a line) would
        otherwise be what limits the server."""
        if self._log_to_terminal is None:
            self._log_to_terminal = self.stderr_console.is_terminal
        if self._log_to_terminal:
            self.stderr_line(text, style)
            return
        import sys

        sys.stderr.write(shown(text) + "\n")

    def stderr_success(self, text: str) -> None:
        self.stderr_line(text, "green")

    def stderr_warn(self, text: str) -> None:
        self.stderr_line(f"warning: {text}", "yellow")

    def stderr_error(self, text: str) -> None:
        self.stderr_line(f"error: {text}", "bold red")

    def stderr_trace(self, text: str) -> None:
        """Verbose request/response traces (already masked by :mod:`ctwa.http`)."""
        if self.verbose:
            self.stderr_line(text, "dim")

    def stdout_json(self, payload: Any) -> None:
        """The one JSON document of ``--json`` mode, on stdout."""
        sys.stdout.write(dumps_safe(payload, indent=2) + "\n")
        sys.stdout.flush()

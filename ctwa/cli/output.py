"""All terminal output goes through here: human text on stderr, data on stdout.

``--json`` prints exactly one JSON document on stdout and nothing else there; messages and
errors always go to stderr (rich, which honours ``NO_COLOR`` and plain pipes). Every string
passes through :func:`ctwa.infra.safetext.safe_text` on its way out: masked (a secret never
reaches a terminal or a log file whatever path it took), control characters escaped (no ESC or
OSC sequence from a remote reaches the terminal), lone surrogates replaced, and Rich markup
escaped. The ``--json`` document is masked on its values, before it is serialised, and every
control character and lone surrogate in it is a JSON escape: it always parses back, to the
very names a later command takes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctwa.infra.safetext import dumps_safe, safe_text

#: The width results are laid out at when stdout is a pipe or a file: wide enough never to cut.
PIPE_WIDTH = 10_000

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
    profile: str | None = None
    _console: Console | None = field(default=None, repr=False)
    _stdout: Console | None = field(default=None, repr=False)
    _log_to_terminal: bool | None = field(default=None, repr=False)

    @property
    def console(self) -> Console:
        """The stderr console, created on first use (rich costs start-up time)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    @property
    def stdout(self) -> Console:
        """The stdout console, for results (previews, tables) that pipes and files receive.

        Piped, it is as wide as the widest line: a name cut to fit 80 columns is a different
        name when pasted back."""
        if self._stdout is None:
            import sys

            from rich.console import Console

            piped = not sys.stdout.isatty()
            self._stdout = Console(highlight=False, width=PIPE_WIDTH if piped else None)
        return self._stdout

    def line(self, text: str, style: str | None = None) -> None:
        """One line of a result for people (a lint verdict, a list entry), on stdout, whole."""
        from rich.markup import escape

        body = escape(shown(text))
        self.stdout.print(f"[{style}]{body}[/]" if style else body, soft_wrap=True)

    def result(self, *renderables: Any) -> None:
        """A result for people, on stdout, wrapped at the width (never cut); a string is
        shown as text (never as Rich markup), made safe."""
        self.stdout.print(*map(as_text, renderables), soft_wrap=False)

    def preview_width(self) -> int:
        """The terminal's width when stdout is one, else 60 (a phone-like message)."""
        return self.stdout.width if self.stdout.is_terminal else 60

    def table(self, table: Any) -> None:
        """A result table on stdout, every cell whole (no wrapping, no ellipsis)."""
        safe_table(table)
        for column in table.columns:
            column.no_wrap, column.overflow = True, "ignore"
        self.stdout.print(table, crop=False)

    def print(self, *renderables: Any) -> None:
        """Rich renderables (tables, panels) for people, on stderr; strings as text."""
        for renderable in renderables:
            safe_table(renderable)
        self.console.print(*map(as_text, renderables))

    def say(self, text: str, style: str | None = None) -> None:
        from rich.markup import escape

        body = escape(shown(text))
        self.console.print(f"[{style}]{body}[/]" if style else body)

    def log(self, text: str, style: str | None = None) -> None:
        """A log line that may come thousands of times a second (the listener's): written
        straight to stderr when it is not a terminal; rich's rendering (~90 us a line) would
        otherwise be what limits the server."""
        if self._log_to_terminal is None:
            self._log_to_terminal = self.console.is_terminal
        if self._log_to_terminal:
            self.say(text, style)
            return
        import sys

        sys.stderr.write(shown(text) + "\n")

    def success(self, text: str) -> None:
        self.say(text, "green")

    def warn(self, text: str) -> None:
        self.say(f"warning: {text}", "yellow")

    def error(self, text: str) -> None:
        self.say(f"error: {text}", "bold red")

    def trace(self, text: str) -> None:
        """Verbose request/response traces (already masked by :mod:`ctwa.http`)."""
        if self.verbose:
            self.say(text, "dim")

    def data(self, payload: Any) -> None:
        """The one JSON document of ``--json`` mode, on stdout."""
        sys.stdout.write(dumps_safe(payload, indent=2) + "\n")
        sys.stdout.flush()

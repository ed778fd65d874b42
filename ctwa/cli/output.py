"""All terminal output goes through here: human text on stderr, data on stdout.

``--json`` prints exactly one JSON document on stdout and nothing else there; messages and
errors always go to stderr (rich, which honours ``NO_COLOR`` and plain pipes). Every string
passes through :func:`ctwa.infra.masking.scrub` on its way out, so a secret never reaches a terminal
or a log file whatever path it took.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctwa.infra.masking import scrub

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

        body = escape(scrub(text))
        self.stdout.print(f"[{style}]{body}[/]" if style else body, soft_wrap=True)

    def result(self, *renderables: Any) -> None:
        """A result for people, on stdout, wrapped at the width (never cut)."""
        self.stdout.print(*renderables, soft_wrap=False)

    def preview_width(self) -> int:
        """The terminal's width when stdout is one, else 60 (a phone-like message)."""
        return self.stdout.width if self.stdout.is_terminal else 60

    def table(self, table: Any) -> None:
        """A result table on stdout, every cell whole (no wrapping, no ellipsis)."""
        for column in table.columns:
            column.no_wrap, column.overflow = True, "ignore"
        self.stdout.print(table, crop=False)

    def print(self, *renderables: Any) -> None:
        """Rich renderables (tables, panels) for people, on stderr."""
        self.console.print(*renderables)

    def say(self, text: str, style: str | None = None) -> None:
        from rich.markup import escape

        body = escape(scrub(text))
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

        sys.stderr.write(scrub(text) + "\n")

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
        text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write(scrub(text) + "\n")
        sys.stdout.flush()

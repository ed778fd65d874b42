"""Exit codes and the exceptions that carry them.

Every failure a user can cause or meet is a :class:`CtwaError` with one clear line of text and
the exit code from :class:`ExitCode`; the CLI prints the line and exits with the code, so no
traceback reaches a user unless they asked for one with ``--debug``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The one table of exit codes; the README documents the same table."""

    OK = 0
    FAILED = 1  # the remote side reported failures, or a check failed
    USAGE = 2  # usage error or invalid input file
    UNREACHABLE = 3  # DNS, refused, TLS, timeout, gave up after retries
    CONFIG = 4  # missing configuration or credentials
    INTERNAL = 70  # a bug in ctwa (sysexits' EX_SOFTWARE); rerun with --debug
    INTERRUPTED = 130  # Ctrl-C


class CtwaError(Exception):
    """A failure with a user-facing one-line message and an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class CheckFailed(CtwaError):
    """The remote side answered, but not the way the contract asks."""

    exit_code = ExitCode.FAILED


class InputError(CtwaError):
    """A file, option or value given by the user cannot be used as it is."""

    exit_code = ExitCode.USAGE


class RemoteUnreachable(CtwaError):
    """No usable answer: the request never got one (DNS, refused, TLS, timeout, retries spent)."""

    exit_code = ExitCode.UNREACHABLE


class RemoteTimeout(RemoteUnreachable):
    """No answer within the timeout: the remote was reached (or is too slow to connect to),
    it did not answer in time."""


class ConfigError(CtwaError):
    """A profile, setting or secret that the command needs is missing."""

    exit_code = ExitCode.CONFIG

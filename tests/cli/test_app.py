"""The root command: version, help, exit codes, and no traceback without --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctwa import __version__
from ctwa.cli import app as app_module
from ctwa.cli.lint import SCHEMA_KINDS
from ctwa.infra.errors import ExitCode
from ctwa.wire.kinds import KINDS


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"ctwa {__version__}"


def test_help_lists_the_commands(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("lint", "schema", "profile"):
        assert command in result.stdout


def test_usage_error_exits_2(cli) -> None:
    result = cli("lint", "--no-such-flag")
    assert result.exit_code == ExitCode.USAGE


def test_cli_kind_names_match_the_registry() -> None:
    assert tuple(KINDS) == SCHEMA_KINDS


@pytest.fixture
def boom(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("kaboom with pw-CANARY-7f3a inside")

    from ctwa.infra import masking

    masking.register_secret("pw-CANARY-7f3a")
    monkeypatch.setattr("ctwa.wire.lint.lint_paths", explode)


def test_unexpected_errors_are_one_line_without_traceback(cli, boom, tmp_path) -> None:
    result = cli("lint", str(tmp_path))
    assert result.exit_code == ExitCode.INTERNAL
    assert "Traceback" not in result.stderr
    assert "unexpected RuntimeError: kaboom with **** inside" in result.stderr
    assert "--debug" in result.stderr


def test_debug_lets_the_traceback_through(cli, boom, tmp_path) -> None:
    result = cli("--debug", "lint", str(tmp_path))
    assert result.exit_code != 0
    assert isinstance(result.exception, RuntimeError)


def test_interrupt_exits_130(cli, monkeypatch, tmp_path) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ctwa.wire.lint.lint_paths", interrupted)
    result = cli("lint", str(tmp_path))
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "interrupted" in result.stderr


def test_python_dash_m_runs_and_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; sys.argv=['ctwa','--help']\n"
            "try:\n    import ctwa.__main__ as m; m.main()\n"
            "except SystemExit: pass\n"
            "heavy = [m for m in ('httpx', 'phonenumbers', 'yaml', 'keyring') "
            "if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "HEAVY []" in out.stdout
    assert app_module.app is not None

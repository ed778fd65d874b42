"""certify never deletes a ``--report-dir`` it did not create (issue 25.16): an empty folder
the tester made stays when the endpoint is unreachable; one ctwa made for nothing goes."""

from __future__ import annotations

from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port


def _certify(cli, tmp_path, folder):
    empty = tmp_path / "empty-library"
    empty.mkdir(exist_ok=True)
    return cli("certify", "--to", "919000000001", "--waba", "919999999998", "--endpoint",
               f"http://127.0.0.1:{free_port()}/bsp", "--library", str(empty), "--listen",
               f"127.0.0.1:{free_port()}", "--no-interactive", "--report-dir", str(folder))


def test_a_report_dir_the_user_made_is_kept_when_nothing_could_be_certified(cli,
                                                                            tmp_path) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    result = _certify(cli, tmp_path, folder)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_report_dir_ctwa_made_for_nothing_is_removed(cli, tmp_path) -> None:
    folder = tmp_path / "new-evidence"
    result = _certify(cli, tmp_path, folder)
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert not folder.exists()

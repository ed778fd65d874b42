"""A load run's --report and --junit never overwrite what the run reads (issue 25.4): the
payload file, the recipients list; refused before anything is sent (the endpoint here is a
port nobody listens on, so a run that went ahead would say it could not reach it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ctwa.infra.errors import ExitCode
from ctwa.infra.ports import free_port


@pytest.mark.parametrize("output", ["--report", "--junit"])
@pytest.mark.parametrize("which", ["payload", "to-file"])
def test_a_load_report_over_an_input_is_refused_naming_it(cli, tmp_path, output,
                                                          which) -> None:
    payload = tmp_path / "payload.json"
    shutil.copy(Path(__file__).parents[1] / "spec_samples" / "template-text.json", payload)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n")
    before = {p: p.read_bytes() for p in (payload, numbers)}
    target = payload if which == "payload" else numbers
    result = cli("send-template", "--payload", str(payload), "--endpoint",
                 f"http://127.0.0.1:{free_port()}/bsp", "--auth", "none", "--count", "5",
                 "--to-file", str(numbers), output, str(target))
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"{output} {target}: is an input of this run" in result.stderr
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("auth", [["--username", "ctwa"], ["--auth", "bearer"]])
def test_a_locust_export_asks_for_no_secret(cli, tmp_path, monkeypatch, auth) -> None:
    """The export writes no secret (each Locust process reads it from its environment), so
    none is demanded: no password, no token, no profile secret."""
    for name in ("CTWA_PASSWORD", "CTWA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n919000000002\n")
    done = cli("load", "export", "--locust", str(tmp_path / "lt"), "send-template", "--sample",
               "lto", "--to-file", str(numbers), "--endpoint", "http://127.0.0.1:9/bsp", *auth,
               "--concurrency", "1500")
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "lt" / "scenario.yaml").is_file()
    assert "export CTWA_" in done.stderr  # the next step says where the secret comes from


@pytest.mark.parametrize(("given", "said"), [(["--duration", "1"], "load: for 1s to "),
                                             (["--count", "3"], "load: 3 message(s) to ")])
def test_the_load_line_says_a_time_or_a_count(cli, given, said) -> None:
    done = cli("send-template", "--sample", "text", "--to", "919000000001", "--endpoint",
               f"http://127.0.0.1:{free_port()}/bsp", "--auth", "none", "--concurrency", "1",
               *given)
    assert said in done.stderr, done.stderr

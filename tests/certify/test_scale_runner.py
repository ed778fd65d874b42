"""certify's scale step is a send job run by the one runner the send commands use: its
messages are classified, and the run judged, by the same rules."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import ctwa.certify
from tests.certify.test_certify import certify


def test_the_scale_step_is_a_send_job_through_the_runner(cli, library, tmp_path,
                                                         monkeypatch) -> None:
    import ctwa.send.job

    jobs: list[ctwa.send.job.SendJob] = []
    outcomes: list[ctwa.send.job.JobOutcome] = []
    real = ctwa.send.job.run_job

    def spying(job, hooks=None):
        jobs.append(job)
        outcomes.append(real(job, hooks))
        return outcomes[-1]

    monkeypatch.setattr(ctwa.send.job, "run_job", spying)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n919000000002\n")
    result, checks, folder = certify(cli, library, tmp_path, "--no-interactive", "--scale",
                                     "20", "--to-file", str(numbers), "--yes")
    assert result.exit_code == 0, result.stderr[-2000:]
    assert checks["scale"]["status"] == "pass", checks["scale"]["detail"]
    [job] = jobs
    assert job.load is not None and job.load.count == 20 and job.load.concurrency == 20
    assert job.awaiting is not None and job.awaiting.until == "delivered"
    assert job.recipients == ("919000000001", "919000000002") and job.run_name == "certify"
    # the evidence holds the runner's verdict, with its classification of every message
    scale = [json.loads(line) for line in (folder / "exchanges.ndjson").read_text()
             .splitlines() if json.loads(line).get("step") == "scale"]
    assert scale, "no scale exchange"
    criteria = {c["name"]: c["status"] for c in scale[0]["verdict"]["criteria"]}
    assert criteria["deadline"] == "pass" and criteria["failures"] == "pass"
    assert criteria["callbacks"] == "pass"
    assert outcomes[0].verdict.as_dict() == scale[0]["verdict"]


def test_certify_does_not_run_a_load_of_its_own() -> None:
    """Only the runner (ctwa.send.job) calls the load engine and waits for a load run's
    callbacks: certify imports neither."""
    for path in sorted(Path(ctwa.certify.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = {alias.name for alias in node.names}
                assert not (node.module == "ctwa.load.engine" and "run_load" in names), path
                assert not (node.module == "ctwa.roundtrip.record"
                            and {"start_load_run", "finish_load_run"} & names), path

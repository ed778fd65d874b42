"""ctwa's scenario on Locust: exported by the CLI, run headless as a master and two worker
processes on 127.0.0.1 against the sandbox, bounded in time. The merged count is the sum of the
workers' and what the mock BSP received; the merged histogram is the exact merge of the
workers'; failures by code are what the sandbox answered. A dead worker and a worker without
its secret are reported, not lost. Locust runs only in subprocesses: importing it here would
monkey-patch this process with gevent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctwa.infra.ports import free_port
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings

LOCUST = shutil.which("locust", path=str(Path(sys.executable).parent)) or shutil.which("locust")
pytestmark = pytest.mark.skipif(LOCUST is None, reason="Locust is not installed (ctwa[locust])")




def export(cli, folder: Path, endpoint: str, numbers: Path) -> None:
    done = cli("load", "export", "--locust", str(folder), "send-template", "--sample", "text",
               "--to-file", str(numbers), "--endpoint", endpoint, "--username", "ctwa",
               "--password", "sandbox", "--concurrency", "20")
    assert done.exit_code == 0, done.stderr
    assert "sandbox" not in (folder / "scenario.yaml").read_text().replace(
        "sandbox-", "")  # no secret in the files


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([LOCUST or "locust", "-f", "locustfile.py", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def distributed(folder: Path, env: dict[str, str], seconds: int = 3,
                worker_envs: tuple[dict[str, str], ...] | None = None,
                kill_one_after: float | None = None) -> tuple[dict, list[str]]:
    port = free_port()
    master = start(["--headless", "--master", "--expect-workers", "2", "--master-bind-port",
                    str(port), "-u", "20", "-r", "20", "-t", f"{seconds}s", "--stop-timeout",
                    "10", "--ctwa-json", "run.json", "--ctwa-report", "run.html"], folder, env)
    workers = [start(["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                     folder, worker_env) for worker_env in (worker_envs or (env, env))]
    try:
        if kill_one_after is not None:
            time.sleep(kill_one_after)
            workers[1].send_signal(signal.SIGKILL)
        master.wait(timeout=90)
    finally:
        for process in (*workers, master):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        errors = [process.communicate(timeout=30)[1] for process in (master, *workers)]
    return json.loads((folder / "run.json").read_text()), errors


@pytest.fixture
def project(cli, tmp_path):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("919000000001\n919000000002\n")
    settings = SandboxSettings(port=0, store_callbacks=False,
                               bsp=BspSettings(fail_rates={2004: 0.1}, status_url=None,
                                               latency=(0.002, 0.01), seed=7))
    with RunningSandbox(settings) as box:
        box.settings.bsp.status_url = None  # no DLRs: this measures the sending only
        folder = tmp_path / "loadtest"
        export(cli, folder, box.urls()["bsp_endpoint"], numbers)
        env = {**os.environ, "CTWA_PASSWORD": "sandbox", "PYTHONUNBUFFERED": "1"}
        yield folder, env, box


def test_master_and_two_workers_merge_exactly(project) -> None:
    from hdrh.histogram import HdrHistogram

    folder, env, box = project
    run, errors = distributed(folder, env)
    workers = run["workers_detail"]
    assert len(workers) == 2 and run["workers"] == 2
    assert run["sent"] == sum(w["sent"] for w in workers.values()) > 100
    assert run["sent"] == box.bsp.state.received  # every request counted once
    merged = HdrHistogram(1, 600_000_000, 2)
    for worker in workers.values():
        merged.add(HdrHistogram.decode(worker["hist"]))
    assert merged.get_total_count() == run["sent"] - run["connection_errors"]
    assert run["latency_ms"]["p99"] == round(merged.get_value_at_percentile(99) / 1000, 2)
    assert run["latency_ms"]["max"] == round(merged.get_max_value() / 1000, 2)
    assert run["failure_codes"] == {"2004": box.bsp.state.refused[2004]}
    assert run["incomplete"] == {"missing_workers": [], "worker_errors": {}}
    assert "<svg" in (folder / "run.html").read_text()
    assert all("Traceback" not in err for err in errors)


def test_a_worker_without_its_secret_exits_4_and_the_master_is_told(project) -> None:
    folder, env, _ = project
    bare = {k: v for k, v in env.items() if k != "CTWA_PASSWORD"}
    run, errors = distributed(folder, env, worker_envs=(env, bare))
    assert any("CTWA_PASSWORD is not set" in err for err in errors[1:])
    problems = run["incomplete"]["worker_errors"]
    assert len(problems) == 1 and "CTWA_PASSWORD" in next(iter(problems.values()))
    complete = run["verdict"]["criteria"][0]
    assert complete["name"] == "run complete" and complete["status"] == "not tested"
    assert "CTWA_PASSWORD" in complete["reason"] and run["interrupted"]
    assert run["outcome"] != "passed"  # incomplete, or failed when the sandbox refused some


def test_a_worker_that_dies_leaves_the_run_incomplete(project) -> None:
    folder, env, _ = project
    run, _ = distributed(folder, env, seconds=8, kill_one_after=2.0)
    assert run["incomplete"]["missing_workers"], run["incomplete"]
    complete = run["verdict"]["criteria"][0]
    assert complete["status"] == "not tested" and "stopped reporting" in complete["reason"]
    assert run["outcome"] != "passed" and run["sent"] > 0


def test_a_scenario_from_another_format_is_one_line(cli, tmp_path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "scenario.yaml").write_text("ctwa_scenario: 99\nctwa_version: 9.9\n")
    (folder / "locustfile.py").write_text(
        "from pathlib import Path\nfrom ctwa.locust.user import CtwaUser\n\n\n"
        "class Old(CtwaUser):\n    scenario_file = Path(__file__).with_name('scenario.yaml')\n")
    done = subprocess.run([LOCUST or "locust", "-f", "locustfile.py", "--headless", "-t", "1s"],
                          cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "scenario format 99 from ctwa 9.9" in done.stderr and "Traceback" not in done.stderr

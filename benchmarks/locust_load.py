"""ctwa's Locust scenario beside plain Locust and ctwa's own load mode, against the same nginx
as ``benchmarks/load.py`` (answering at once), same run: (1) ctwa load mode, (2) the exported
scenario on Locust with 2 worker processes (``--processes 2``), (3) plain Locust FastHttpUser
posting the same body, 2 processes. Target: (2) within 10% of (3)'s requests/s.

Run: ``python benchmarks/locust_load.py [SECONDS] [USERS]`` (defaults 10 and 200).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import load as load_bench

PLAIN = '''from locust import FastHttpUser, constant, task

BODY = {body!r}


class Plain(FastHttpUser):
    wait_time = constant(0)
    host = "{host}"

    @task
    def send(self):
        with self.client.post("/ok", data=BODY, headers={{"Content-Type": "application/json"}},
                              catch_response=True) as response:
            if response.status_code == 200:
                response.success()
'''


def locust_rate(folder: Path, seconds: int, users: int) -> float:
    locust = str(Path(sys.executable).with_name("locust"))
    out = subprocess.run([locust, "-f", "locustfile.py", "--headless", "--processes", "2",
                          "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
                          "--stop-timeout", "5", "--only-summary"], cwd=folder,
                         capture_output=True, text=True, timeout=seconds + 60)
    rows = re.findall(r"Aggregated\s+(\d+)\s+(\d+)\(", out.stderr + out.stdout)
    requests = int(rows[-1][0]) if rows else 0
    return requests / seconds


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    users = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    from ctwa.send.samples import load_sample

    body = json.dumps(load_sample("lto"), separators=(",", ":"))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        nginx, port = load_bench.start_nginx(work)
        url = f"http://127.0.0.1:{port}/ok"
        env = {**os.environ, "CTWA_CONFIG_DIR": str(work / "c"), "CTWA_DATA_DIR": str(work / "d"),
               "CTWA_NO_KEYRING": "1"}
        try:
            ctwa = str(Path(sys.executable).with_name("ctwa"))
            done = subprocess.run([ctwa, "--json", "send-template", "--sample", "lto", "--to",
                                   "919000000001", "--endpoint", url, "--duration",
                                   f"{seconds}s", "--concurrency", str(users)],
                                  capture_output=True, text=True, env=env)
            load_mode = json.loads(done.stdout)["requests_per_second"]
            subprocess.run([ctwa, "load", "export", "--locust", str(work / "scenario"),
                            "send-template", "--sample", "lto", "--to", "919000000001",
                            "--endpoint", url, "--concurrency", str(users)], check=True,
                           capture_output=True, env=env)
            scenario = locust_rate(work / "scenario", seconds, users)
            (work / "plain").mkdir()
            (work / "plain" / "locustfile.py").write_text(
                PLAIN.format(body=body, host=f"http://127.0.0.1:{port}"))
            plain = locust_rate(work / "plain", seconds, users)
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)
    print(f"{users} users/in flight, {seconds} s, body {len(body)} bytes, {os.cpu_count()} cores")
    print(f"  ctwa load mode                  {load_mode:9,.0f} req/s")
    print(f"  ctwa scenario on Locust (2 proc) {scenario:9,.0f} req/s")
    print(f"  plain Locust FastHttpUser (2 proc) {plain:9,.0f} req/s")
    print(f"  scenario / plain: {scenario / plain:.2f}")


if __name__ == "__main__":
    main()

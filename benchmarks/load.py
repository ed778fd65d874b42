"""ctwa load mode beside wrk (the ceiling), same machine, same run, 1500 in flight:
(a) nginx answering {"status":"success"} at once; (b) nginx answering after exactly 200 ms;
(c) nginx answering after 2 s (every answer too slow for CleverTap), for twice as long.

Needs Debian's nginx, wrk and libnginx-mod-http-echo:
    apt-get install -y nginx-light wrk libnginx-mod-http-echo
Run: ``python benchmarks/load.py [SECONDS] [CONCURRENCY] [RUNS] [CASES]`` (defaults 10, 1500,
3, abc);
each case runs RUNS times, wrk then ctwa, and the medians are printed.
Targets (2 cores): (a) at least 0.45 of wrk's requests/s with all 1500 in flight; (b) ctwa's
p50 within 5% and p99 within 10% of wrk's, req/s within 5%, or a saturation warning; (c)
every answer timed at ~2 s, "100%" over the deadline, no connection errors.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _servers import free_port

ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
NGINX_CONF = """
load_module {echo};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /ok {{ default_type application/json; return 200 '{{"status":"success"}}'; }}
        location /slow {{
            default_type application/json;
            echo_read_request_body;
            echo_sleep 0.2;
            echo -n '{{"status":"success"}}';
        }}
        location /slower {{
            default_type application/json;
            echo_read_request_body;
            echo_sleep 2;
            echo -n '{{"status":"success"}}';
        }}
    }}
}}
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


def start_nginx(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(echo=ECHO_MODULE, dir=folder, port=port))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"])
    time.sleep(0.5)
    if proc.poll() is not None:
        raise SystemExit("nginx did not start; see " + str(folder / "error.log"))
    return proc, port


def run_wrk(url: str, seconds: int, connections: int, body: str, folder: Path) -> dict:
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "--timeout", "30s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    return {"rps": rate, "p50": percentile("50"), "p99": percentile("99")}


def run_ctwa(url: str, seconds: int, connections: int) -> dict:
    ctwa = str(Path(sys.executable).with_name("ctwa"))
    with tempfile.TemporaryDirectory() as config:
        out = subprocess.run(
            [ctwa, "--json", "send-template", "--sample", "lto", "--to", "919000000001",
             "--endpoint", url, "--duration", f"{seconds}s", "--concurrency", str(connections),
             "--timeout", "30"],
            capture_output=True, text=True,
            env={**os.environ, "CTWA_CONFIG_DIR": config, "CTWA_NO_KEYRING": "1"})
    report = json.loads(out.stdout)
    answered = report["sent"] - report["connection_errors"] - report["abandoned"]
    return {"rps": report["requests_per_second"], "p50": report["latency_ms"]["p50"],
            "p99": report["latency_ms"]["p99"], "peak": report["peak_in_flight"],
            "saturated": report["client_saturated"], "lag_p99": report["loop_lag_ms"]["p99"],
            "failed": report["failed"], "workers": report["workers"],
            "connection_errors": report["connection_errors"],
            "too_slow": report["too_slow"] / answered if answered else 0.0,
            "connect_p99": report["connect_ms"].get("p99", 0.0)}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


CASES = (("(a) immediate answer", "/ok", 1), ("(b) 200 ms answer", "/slow", 1),
         ("(c) 2 s answer", "/slower", 2))


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    only = sys.argv[4] if len(sys.argv) > 4 else "abc"  # which cases, e.g. "a" or "bc"
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install -y nginx-light wrk "
                             "libnginx-mod-http-echo")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(20000, hard), hard))
    from ctwa.send.samples import load_sample

    body = json.dumps(load_sample("lto"), separators=(",", ":"))
    print(f"{connections} in flight, {seconds} s per run ((c): {2 * seconds} s), {repeats} "
          f"run(s) each, body {len(body)} bytes, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        nginx, port = start_nginx(Path(folder))
        try:
            for case, path, scale in CASES:
                if case[1] not in only:
                    continue
                url = f"http://127.0.0.1:{port}{path}"
                wrks, ctwas = [], []
                for _ in range(repeats):
                    wrks.append(run_wrk(url, seconds * scale, connections, body, Path(folder)))
                    ctwas.append(run_ctwa(url, seconds * scale, connections))
                print(case)
                for wrk, ctwa in zip(wrks, ctwas, strict=True):
                    print(f"  wrk {wrk['rps']:9,.0f} req/s p50 {wrk['p50']:7.1f} p99 "
                          f"{wrk['p99']:7.1f} | ctwa {ctwa['rps']:9,.0f} req/s p50 "
                          f"{ctwa['p50']:7.1f} p99 {ctwa['p99']:7.1f} peak {ctwa['peak']} "
                          f"too slow {ctwa['too_slow']:.0%} conn errors "
                          f"{ctwa['connection_errors']} connect p99 {ctwa['connect_p99']} "
                          f"lag p99 {ctwa['lag_p99']} warning {ctwa['saturated']}")
                w = {k: median(wrks, k) for k in ("rps", "p50", "p99")}
                c = {k: median(ctwas, k) for k in ("rps", "p50", "p99")}
                print(f"  median: wrk {w['rps']:,.0f} req/s p50 {w['p50']:.1f} p99 "
                      f"{w['p99']:.1f} | ctwa {c['rps']:,.0f} req/s p50 {c['p50']:.1f} p99 "
                      f"{c['p99']:.1f} | ctwa/wrk {c['rps'] / w['rps']:.2f} x req/s, "
                      f"{c['p50'] / w['p50']:.2f} x p50, {c['p99'] / w['p99']:.2f} x p99")
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)


if __name__ == "__main__":
    main()

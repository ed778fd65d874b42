"""ctwa load mode beside wrk (the ceiling), same machine, same run, 1500 in flight:
(a) nginx answering {"status":"success"} at once; (b) nginx answering after exactly 200 ms.

Needs Debian's nginx, wrk and libnginx-mod-http-echo:
    apt-get install -y nginx-light wrk libnginx-mod-http-echo
Run: ``python benchmarks/load.py [SECONDS] [CONCURRENCY]`` (defaults 10 and 1500).
Targets (2 cores): (a) at least 8,000 requests/s with all 1500 in flight; (b) ctwa's p50
within 10% of wrk's, with a saturation warning whenever it is not.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
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
                          "-s", str(script), url], capture_output=True, text=True,
                         check=True).stdout
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
    return {"rps": report["requests_per_second"], "p50": report["latency_ms"]["p50"],
            "p99": report["latency_ms"]["p99"], "peak": report["peak_in_flight"],
            "saturated": report["client_saturated"], "lag_p50": report["loop_lag_ms"]["p50"],
            "failed": report["failed"], "workers": report["workers"]}


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install -y nginx-light wrk "
                             "libnginx-mod-http-echo")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(20000, hard), hard))
    from ctwa.send.samples import load_sample

    body = json.dumps(load_sample("lto"), separators=(",", ":"))
    print(f"{connections} in flight, {seconds} s per run, body {len(body)} bytes, "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        nginx, port = start_nginx(Path(folder))
        try:
            for case, path in (("(a) immediate answer", "/ok"), ("(b) 200 ms answer", "/slow")):
                url = f"http://127.0.0.1:{port}{path}"
                wrk = run_wrk(url, seconds, connections, body, Path(folder))
                ctwa = run_ctwa(url, seconds, connections)
                print(f"{case}")
                print(f"  wrk   {wrk['rps']:9,.0f} req/s  p50 {wrk['p50']:7.1f} ms  "
                      f"p99 {wrk['p99']:7.1f} ms")
                print(f"  ctwa  {ctwa['rps']:9,.0f} req/s  p50 {ctwa['p50']:7.1f} ms  "
                      f"p99 {ctwa['p99']:7.1f} ms  peak in flight {ctwa['peak']}  "
                      f"workers {ctwa['workers']}  loop lag p50 {ctwa['lag_p50']} ms  "
                      f"saturation warning: {ctwa['saturated']}  failed {ctwa['failed']}")
                print(f"  ratio ctwa/wrk: {ctwa['rps'] / wrk['rps']:.2f} x req/s, "
                      f"{ctwa['p50'] / wrk['p50']:.2f} x p50")
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)


if __name__ == "__main__":
    main()

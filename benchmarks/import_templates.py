"""10,000 templates over 200 pages from a local vendor server: ``ctwa import-templates``
(fetch, validate every template, write the library) beside a bare httpx paging loop (fetch and
parse only), the floor any importer stands on. Target: ctwa under 10 s.

Run: ``python benchmarks/import_templates.py [TEMPLATES] [PAGE_SIZE]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _servers import serve


def bare_loop(url: str, limit: int) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    with httpx.Client() as client:
        next_url: str | None = f"{url}?limit={limit}"
        while next_url:
            body = json.loads(client.get(next_url).content)
            count += len(body["data"])
            next_url = body.get("paging", {}).get("next")
    return time.perf_counter() - started, count


def ctwa_import(url: str, limit: int) -> tuple[float, dict]:
    ctwa = Path(sys.executable).with_name("ctwa")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        proc = subprocess.run(
            [str(ctwa), "--json", "import-templates", "--url", url, "--limit", str(limit),
             "--library", folder], capture_output=True, text=True,
            env={"CTWA_CONFIG_DIR": folder, "CTWA_NO_KEYRING": "1", "PATH": "/usr/bin:/bin"})
        elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ctwa failed: {proc.stderr}")
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    expression = f"vendor_app(generated_templates({total}))"
    imports = "from ctwa.sandbox.vendor import vendor_app, generated_templates"
    with serve(expression, imports) as base:
        url = f"{base}/templates"
        bare, count = bare_loop(url, limit)
        took, report = ctwa_import(url, limit)
    print(f"templates: {total}, page size {limit}, pages: {report['pages']}")
    print(f"bare httpx paging loop       {bare:6.2f} s  ({count / bare:8.0f} templates/s)")
    print(f"ctwa import-templates        {took:6.2f} s  ({len(report['added']) / took:8.0f} "
          f"templates/s, ratio {took / bare:.1f}x the bare loop)")


if __name__ == "__main__":
    main()

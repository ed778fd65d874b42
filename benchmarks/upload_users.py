"""upload-users on a generated 1,000,000-row CSV (7 columns like the spec's example).

1. ``--dry-run`` (read, check every row, batch, encode): wall time and peak memory of the
   whole process tree, beside the obvious single-process script a customer engineer would write
   (csv.DictReader + phonenumbers + json.dumps) as the peer. Targets: under 15 s, under 150 MB.
2. The same file uploaded to the local mock CleverTap (its own process): time and rows/s.
   Target: under 60 s end to end.

Run: ``python benchmarks/upload_users.py [ROWS]``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _servers import serve

PEER = r'''
import csv, json, sys, phonenumbers
good = bad = 0
batch = []
with open(sys.argv[1], newline="", encoding="utf-8-sig") as handle:
    for row in csv.DictReader(handle):
        try:
            number = phonenumbers.parse(row["Phone"], None)
            ok = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            ok = False
        if not ok:
            bad += 1
            continue
        good += 1
        batch.append({"identity": row["Identity"], "type": "profile", "profileData": {
            "Name": row["Name"], "Email": row["Email"],
            "Phone": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            "Gender": row["Gender"], "MSG-whatsapp": row["MSG-WhatsApp"] == "TRUE",
            "Upload Name": row["Upload Name"]}})
        if len(batch) == 1000:
            json.dumps({"d": batch})
            batch = []
print(good, bad)
'''


def generate(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Identity", "Name", "Email", "Phone", "Gender", "MSG-WhatsApp",
                         "Upload Name"])
        for i in range(rows):
            phone = f"+9198{i % 100_000_000:08d}" if i % 50 else f"98{i:08d}"
            writer.writerow([f"user{i}@example.com", f"User {i}", f"user{i}@example.com",
                             phone, "MF"[i % 2], "TRUE", "Benchmark upload"])


def _tree_memory(pid: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) over a process and its descendants. RSS counts pages shared
    between forked workers once per process; PSS splits them, so it is the honest total."""
    rss = pss = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        proc = Path(f"/proc/{current}")
        try:
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
            for task in (proc / "task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return rss, pss


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, tuple[int, int], str]:
    """Wall time, peak (RSS, PSS) of the process tree (sampled every 20 ms), and stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = (0, 0)

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            rss, pss = _tree_memory(proc.pid)
            peak = (max(peak[0], rss), max(peak[1], pss))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err[-2000:]}")
    return elapsed, peak, out


def _mb(peak: tuple[int, int]) -> str:
    return f"peak PSS {peak[1] / 1e6:4.0f} MB (RSS sum {peak[0] / 1e6:4.0f} MB)"


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    ctwa = str(Path(sys.executable).with_name("ctwa"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "users.csv"
        generate(path, rows)
        size = path.stat().st_size / 1e6
        env = {**os.environ, "CTWA_CONFIG_DIR": folder, "CTWA_NO_KEYRING": "1"}
        print(f"{rows:,} rows, {size:.0f} MB, {os.cpu_count()} cores")
        peer_time, peer_rss, _ = measured([sys.executable, "-c", PEER, str(path)], env)
        print(f"peer: one-process DictReader+phonenumbers+json  {peer_time:6.1f} s  "
              f"{_mb(peer_rss)}  {rows / peer_time:9,.0f} rows/s")
        took, rss, out = measured([ctwa, "--json", "upload-users", str(path), "--dry-run"], env)
        counts = json.loads(out)["counts"]
        print(f"ctwa upload-users --dry-run                     {took:6.1f} s  "
              f"{_mb(rss)}  {rows / took:9,.0f} rows/s  "
              f"({peer_time / took:.1f}x the peer; {counts['rejected']:,} rejected)")
        app = "MockCleverTap({'BENCH': 'bench-pass'}).app()"
        with serve(app, "from ctwa.sandbox.clevertap import MockCleverTap") as base:
            took, rss, out = measured(
                [ctwa, "--json", "upload-users", str(path), "--base-url", base,
                 "--account-id", "BENCH", "--concurrency", "15"],
                {**env, "CTWA_PASSCODE": "bench-pass"})
        counts = json.loads(out)["counts"]
        print(f"ctwa upload-users to the local mock CleverTap   {took:6.1f} s  "
              f"{_mb(rss)}  {rows / took:9,.0f} rows/s  "
              f"(uploaded {counts['uploaded']:,}, adds up: {counts['adds_up']})")


if __name__ == "__main__":
    main()

"""Wall time of ``ctwa --help`` (median of N runs) beside a peer CLI when one is installed.

Run: ``python benchmarks/startup.py [N]``. The target is under 300 ms; httpie's
``http --help`` (about 168 ms on the reference machine) is the peer to beat.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_ms(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    ctwa = Path(sys.executable).with_name("ctwa")
    candidates = {"ctwa --help": [str(ctwa), "--help"]}
    peer = shutil.which("http")
    if peer:
        candidates["http --help (httpie)"] = [peer, "--help"]
    for label, argv in candidates.items():
        print(f"{label:24} {median_ms(argv, runs):7.1f} ms (median of {runs})")


if __name__ == "__main__":
    main()

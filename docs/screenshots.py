"""Regenerate the report screenshots in docs/: real runs against the sandbox (load with the
round trip, upload, import), each report opened in headless Chromium.

Run from the repository root: ``.venv/bin/python docs/screenshots.py`` (needs Debian's
``chromium``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ctwa.infra.ports import free_port  # noqa: E402
from ctwa.sandbox.bsp import BspSettings  # noqa: E402
from ctwa.sandbox.server import RunningSandbox, SandboxSettings  # noqa: E402
from tests.report.browser import CountingProxy, screenshot  # noqa: E402


def ctwa(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "ctwa", *args], env=env, check=False,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        env = {**os.environ, "CTWA_CONFIG_DIR": str(work / "c"),
               "CTWA_DATA_DIR": str(work / "d"), "CTWA_NO_KEYRING": "1", "NO_COLOR": "1"}
        port = free_port()
        bsp = BspSettings(status_url=f"http://127.0.0.1:{port}/status",
                          latency=(0.02, 0.12), dlr_delays=(0.05, 0.2, 0.6))
        with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
            urls, creds = box.urls(), box.credentials()
            numbers = work / "to.txt"
            numbers.write_text("919000000001\n919000000002\n919000000006\n919000000004\n")
            ctwa("send-template", "--sample", "lto", "--to-file", str(numbers), "--endpoint",
                 urls["bsp_endpoint"], "--username", "ctwa", "--password", "sandbox",
                 "--duration", "8s", "--rate", "300", "--concurrency", "200",
                 "--await-callbacks",
                 "--listen", f"127.0.0.1:{port}", "--report", str(work / "load.html"), env=env)
            users = work / "users.csv"
            users.write_bytes((ROOT / "examples" / "users.csv").read_bytes())
            ctwa("upload-users", str(users), "--base-url", urls["clevertap_api"],
                 "--account-id", creds["account_id"], "--passcode", creds["passcode"],
                 "--report", str(work / "upload.html"), env=env)
            ctwa("import-templates", "--url", urls["vendor_templates"], "--auth", "bearer",
                 "--token", creds["vendor_token"], "--library", str(work / "lib"),
                 "--report", str(work / "import.html"), env=env)
        proxy = CountingProxy()
        try:
            for kind, size in (("load", "1000,4200"), ("upload", "1000,1500"),
                               ("import", "1000,1600")):
                target = ROOT / "docs" / f"report-{kind}.png"
                screenshot(work / f"{kind}.html", target, proxy, work / "chromium", size)
                print(f"wrote {target.relative_to(ROOT)}")
        finally:
            proxy.close()


if __name__ == "__main__":
    main()

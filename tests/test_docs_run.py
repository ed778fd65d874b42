"""Every `ctwa ...` command in README.md and examples/README.md runs here, in the order the
documents give them, against the sandbox on 127.0.0.1 (or is listed in NOT_RUN_HERE with the
reason). The documents' example hosts, accounts and secrets are swapped for the sandbox's by
one table (SWAPS), and their campaign-sized numbers for small ones (SCALE); nothing else
changes, so a command that stops working in the README fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctwa.callbacks.listener import Listener
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from ctwa.store.writer import BatchWriter
from tests.conftest import LiveServer

ROOT = Path(__file__).parent.parent

#: Commands the tests run elsewhere, or that need a person or a real service.
NOT_RUN_HERE = {
    "ctwa demo": "tests/test_demo.py runs the demo and checks every step",
    "ctwa sandbox": "runs until Ctrl-C; the sandbox line with options is run below",
}

#: How much smaller than a campaign the documents' load examples run here.
SCALE = {"--count 100000": "--count 200", "--concurrency 1500": "--concurrency 20",
         "--duration 60s": "--duration 1s", "--rate 2000": "--rate 100",
         "--count 5000": "--count 100", "--callback-timeout 2m": "--callback-timeout 20s"}


def commands(path: Path) -> list[str]:
    """The ctwa command lines of a document, continuations joined, comments dropped."""
    text = path.read_text()
    if path.name == "README.md" and path.parent == ROOT:
        blocks = re.findall(r"```(?:sh|console)\n(.*?)```", text, re.S)
        lines = [line.strip().removeprefix("$ ") for block in blocks
                 for line in block.replace("\\\n", " ").splitlines()]
    else:  # examples/README.md: the "try it" column
        lines = re.findall(r"`(ctwa [^`]*)`", text)
    found = []
    for line in lines:
        line = re.sub(r"\s+#.*$", "", line).strip()
        if re.match(r"^(\w+=\S+ )*ctwa ", line):
            found.append(re.sub(r"\s+", " ", line))
    return found


class Docs:
    """The sandbox, a listener standing in for the README's 127.0.0.1:8787, and the swaps."""

    def __init__(self, box: RunningSandbox, listener_url: str, workdir: Path,
                 postgres_url: str) -> None:
        urls = box.urls()
        creds = box.credentials()
        self.workdir = workdir
        self.env = {"CTWA_PASSWORD": creds["bsp_password"], "VENDOR_TOKEN": creds[
            "vendor_token"], "CTWA_IMPORT_TOKEN": creds["vendor_token"],
            "CTWA_PASSCODE": creds["passcode"], "CTWA_BRIDGE_PASSWORD": "bridge-docs-pw",
            "CTWA_META_TOKEN": creds["meta_token"],
            "CTWA_META_APP_SECRET": creds["meta_app_secret"],
            "CTWA_META_VERIFY_TOKEN": "docs-verify"}
        self.swaps = [
            ("https://bsp.example/clevertap", urls["bsp_endpoint"]),
            ("https://bsp.example/ct", urls["bsp_endpoint"]),
            ("https://vendor.example/templates/import", urls["vendor_templates"]),
            ("--username acme", f"--username {creds['bsp_username']}"),
            ("--region in1 --account-id W9R-XXX-XXXX",
             f"--base-url {urls['clevertap_api']} --account-id {creds['account_id']}"),
            ("W9R-XXX-XXXX", creds["account_id"]),
            ("127.0.0.1:8787", listener_url.removeprefix("http://")),
            ("--port 8700", "--port 0"),
            # the bridge's section: the sandbox's Meta and the listener as CleverTap
            ("https://graph.facebook.com/v23.0", urls["meta_graph"]),
            ("106540352242922", creds["meta_phone_number_id"]),
            ("102290129340398", creds["meta_waba_id"]),
            ("https://clevertap.example/dlr", f"{listener_url}/status"),
            ("https://clevertap.example/inbound", f"{listener_url}/inbound"),
            ("--listen 127.0.0.1:8780", "--listen 127.0.0.1:0"),
            ("--listen 127.0.0.1:8781", "--listen 127.0.0.1:0"),
            # the replicas' PostgreSQL: a fresh schema of the tests' throw-away cluster
            ("postgresql://bridge@127.0.0.1:5432/bridge", postgres_url),
            ("--port 8787", "--port 0"),
            *SCALE.items(),
        ]

    def swap(self, line: str) -> str:
        for old, new in self.swaps:
            line = line.replace(old, new)
        return line


def run_line(docs: Docs, cli: Any, line: str) -> Any:
    """One documented command through the CLI runner, in the scratch folder, its `VAR=...`
    prefixes and `$VAR`s from the sandbox's secrets, `> FILE` written; long-running ones
    (listen, sandbox) run as real processes, stopped with Ctrl-C once they are up."""
    line = docs.swap(line)
    env = dict(docs.env)
    while (prefix := re.match(r"^(\w+)=(\S+) ", line)):
        env[prefix.group(1)] = docs.env.get(prefix.group(1), prefix.group(2))
        line = line[prefix.end():]
    line, _, target = line.partition(" > ")
    args = [env.get(a[1:], a) if a.startswith("$") else a for a in shlex.split(line)][1:]
    serving = args[0] == "bridge" and args[1:2] not in (["migrate"], ["status"])
    if args[0] == "sandbox" or args[:2] == ["callback", "listen"] or serving:
        return _until_ready([sys.executable, "-m", "ctwa", *args],
                            {**os.environ, **env, "NO_COLOR": "1"}, docs.workdir)
    secret = "set-secret" in args
    done = cli(*args, *(["--stdin"] if secret else []), env=env,
               input="pw-from-the-docs\n" if secret else None)
    if target:
        (docs.workdir / target.strip()).write_text(done.stdout)
    return done


def _until_ready(argv: list[str], env: dict[str, str], cwd: Path) -> Any:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("docs")
    (workdir / "examples").symlink_to(ROOT / "examples")
    (workdir / "completions").symlink_to(ROOT / "completions")
    (workdir / "users.csv").write_bytes((ROOT / "examples" / "users.csv").read_bytes())
    (workdir / "numbers.txt").write_text("919000000001\n919000000002\n")
    for name, p99 in (("load-base.json", 210.0), ("load-new.json", 205.0)):  # two runs' --json
        (workdir / name).write_text(json.dumps({
            "sent": 1000, "connection_errors": 0, "failed": 0, "too_slow": 0,
            "requests_per_second": 7000.0, "latency_ms": {"p50": 202.0, "p90": 204.0,
                                                          "p99": p99}}))
    (workdir / "my-callback.json").write_text(json.dumps({"payloadVersion": "0.1", "statuses": [
        {"msgId": "i|1|2|3|0", "status": "Clicked", "ts": "1700000000",
         "url": "https://shop.example.com"}]}))
    # the README's listener on 127.0.0.1:8787 keeps callbacks in the store the documented
    # commands use, and the sandbox's BSP calls back to it, as a BSP configured so would
    writer = BatchWriter(workdir / "data" / "store.sqlite3")
    listener = Listener(store=writer)
    try:
        with LiveServer(listener.app()) as live:
            bsp = BspSettings(status_url=f"{live.url}/status", inbound_url=f"{live.url}/inbound",
                              dlr_delays=(0.02, 0.05, 0.08))
            with RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
                from tests.bridge.state import pg

                postgres_url, schema = pg.fresh_schema_url()
                try:
                    yield Docs(box, live.url, workdir, postgres_url)
                finally:
                    pg.drop_schema(schema)
    finally:
        writer.close()


@pytest.mark.parametrize("document", ["README.md", "examples/README.md"])
def test_every_documented_command_runs(docs, cli, document, monkeypatch) -> None:
    monkeypatch.setenv("CTWA_CONFIG_DIR", str(docs.workdir / "config"))
    monkeypatch.setenv("CTWA_DATA_DIR", str(docs.workdir / "data"))
    monkeypatch.chdir(docs.workdir)
    lines = commands(ROOT / document)
    assert lines, f"{document} has no ctwa command"
    # the sending examples use the current profile: its lines (from the README's own
    # "Profiles and secrets") run first
    setup = [c for c in commands(ROOT / "README.md") if c.startswith("ctwa profile ")]
    ran = 0
    for line in [*setup, *lines]:
        if line in NOT_RUN_HERE:
            continue
        done = run_line(docs, cli, line)
        ran += 1
        code = getattr(done, "exit_code", getattr(done, "returncode", None))
        assert "Traceback" not in done.stderr, (line, done.stderr)
        # 1 is a documented outcome for some (users.csv has bad rows on purpose); usage,
        # configuration, reachability errors and bugs are not
        assert code in (0, 1), (line, code, done.stderr[-2000:])
        if line.startswith("ctwa bridge --"):  # it served, and stopped with its summary
            assert "ctwa bridge on" in done.stderr and "stopped after" in done.stderr, \
                done.stderr[-2000:]
    assert ran >= (20 if document == "README.md" else 6)


def test_the_documented_flow_really_happened(docs, cli, monkeypatch) -> None:
    """After the README ran: the library holds the vendor's templates and the listener saw
    the replayed callbacks."""
    monkeypatch.setenv("CTWA_CONFIG_DIR", str(docs.workdir / "config"))
    monkeypatch.setenv("CTWA_DATA_DIR", str(docs.workdir / "data"))
    monkeypatch.chdir(docs.workdir)
    for line in commands(ROOT / "README.md"):
        if line.startswith(("ctwa import-templates", "ctwa callback replay examples")):
            assert run_line(docs, cli, line).exit_code == 0, line
    listed = run_line(docs, cli, "ctwa --json templates list --sendable")
    names = {t["name"] for t in json.loads(listed.stdout)}
    assert "order_update" in names and "Test_template" in names
    stats = httpx.get(docs.swap("http://127.0.0.1:8787/stats")).json()
    assert stats["valid"] > 0 and stats["invalid"] == 0


def test_commands_are_found_in_both_documents() -> None:
    readme = commands(ROOT / "README.md")
    assert any(c.startswith("ctwa send-template --template-file examples/templates/order-up")
               for c in readme)
    assert any(c.startswith("CTWA_PASSCODE=... ctwa upload-users") for c in readme)
    assert "ctwa demo" in commands(ROOT / "examples" / "README.md")

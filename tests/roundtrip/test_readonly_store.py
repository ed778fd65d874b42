"""A store that cannot be written (issue 25.14): the commands that only read it open it
read-only, so ``store info``, ``trace`` and ``runs list`` still work; a full disk's hint
says what to free (``ctwa store prune`` needs free space itself)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ctwa.store.db import Store, _explain
from ctwa.store.records import SendRecord


def _as_another_user(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Root writes through any permission: run the command as ``nobody`` when root."""
    prefix: list[str] = []
    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv: permissions cannot make a file read-only")
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run([*prefix, sys.executable, "-m", "ctwa", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_reading_commands_work_on_a_store_that_cannot_be_written() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ctwa-ro-"))  # tmp_path's parents are 0700
    try:
        folder.chmod(0o755)
        store_file = folder / "store.sqlite3"
        with Store(store_file) as store:
            store.add_sends([SendRecord("11|22|33|1|0", time.time(), "919000000001",
                                        verdict="accepted", http_status=200)])
            store.add_run("run-1", "upload", True, {"id": "run-1"})
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
        env = {**os.environ, "CTWA_STORE": str(store_file), "NO_COLOR": "1",
               "CTWA_CONFIG_DIR": str(folder / "config"), "HOME": str(folder)}
        before = sorted(p.name for p in folder.iterdir())
        info = _as_another_user(["store", "info"], env)
        trace = _as_another_user(["trace", "--last"], env)
        runs = _as_another_user(["runs", "list"], env)
        after = sorted(p.name for p in folder.iterdir())
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
    assert info.returncode == 0, info.stderr
    assert "sends 1" in info.stdout
    assert trace.returncode == 0 and "11|22|33|1|0" in trace.stdout, trace.stderr
    assert runs.returncode == 0 and "run-1" in runs.stdout, runs.stderr
    assert before == after  # nothing created beside it


def test_a_missing_store_reads_as_empty_and_is_not_created(cli, tmp_path) -> None:
    store_file = tmp_path / "none" / "store.sqlite3"
    result = cli("--store", str(store_file), "store", "info")
    assert result.exit_code == 0 and "sends 0" in result.stdout
    assert not store_file.exists()


def test_a_full_disk_says_what_to_free_not_to_prune(tmp_path) -> None:
    store_file = tmp_path / "store.sqlite3"
    with Store(store_file):
        pass
    error = _explain(store_file, sqlite3.OperationalError("database or disk is full"))
    assert "the disk is full" in error.message
    assert "free space on the disk that holds" in (error.hint or "")
    assert "MB" in (error.hint or "") and "--store" in (error.hint or "")
    assert "`ctwa store prune" not in (error.hint or "")

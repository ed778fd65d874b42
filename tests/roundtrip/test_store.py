"""The store: migrations, its failures as one clear line, batched writes from many threads and
processes, the bound on orphans, prune, and the CLI around it."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from ctwa.infra.errors import ExitCode
from ctwa.store.db import Store, StoreError
from ctwa.store.extract import callback_records
from ctwa.store.records import CallbackRecord, SendRecord
from ctwa.store.schema import VERSION
from ctwa.store.writer import BatchWriter


def test_a_new_store_is_migrated_in_wal_mode(tmp_path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        info = store.info()
    assert info["sends"] == info["callbacks"] == info["runs"] == 0 and info["schema"] == VERSION


def test_a_store_from_a_newer_ctwa_is_refused(tmp_path) -> None:
    path = tmp_path / "s.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {VERSION + 1}")
    with pytest.raises(StoreError, match="written by a newer ctwa"):
        Store(path)


def test_a_file_that_is_not_a_store_is_one_line(tmp_path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is no database at all" * 200)
    with pytest.raises(StoreError, match="damaged or not a ctwa store") as caught:
        Store(path)
    assert caught.value.exit_code == ExitCode.USAGE and "--store" in str(caught.value)


def test_a_place_that_cannot_be_written_is_one_line(tmp_path) -> None:
    """(A read-only disk gives SQLite the same "unable to open"; root writes anywhere, so the
    test uses a path that is a folder.)"""
    (tmp_path / "s.db").mkdir()
    with pytest.raises(StoreError, match="cannot be written"):
        Store(tmp_path / "s.db")
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(StoreError, match="cannot be written"):
        Store(blocked / "s.db")


def test_a_locked_store_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("ctwa.store.db.BUSY_SECONDS", 0.2)
    path = tmp_path / "s.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = Store(path)
        store.db.execute("PRAGMA busy_timeout = 200")
        with pytest.raises(StoreError, match="locked by another process"):
            store.add_sends([SendRecord("m1", time.time())])
    finally:
        holder.execute("ROLLBACK")


def _write_many(path: str, worker: int) -> None:
    with Store(Path(path)) as store:
        for i in range(50):
            store.add_sends([SendRecord(f"{worker}-{i}", time.time())])


def test_two_processes_and_a_writer_thread_at_once(tmp_path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    writer = BatchWriter(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(path), w)) for w in range(2)]
    for process in workers:
        process.start()
    for i in range(2000):
        writer.put(CallbackRecord(time.time(), "/status", "status", f"0-{i % 50}", "sent"))
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    writer.close()
    with Store(path) as store:
        info = store.info()
    assert info["sends"] == 100 and info["callbacks"] == 2000 and writer.lost == 0


def test_orphans_past_the_limit_are_counted_not_kept(tmp_path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.add_sends([SendRecord("mine", time.time())])
    writer = BatchWriter(path, orphan_limit=100)
    for i in range(1000):
        writer.put(CallbackRecord(time.time(), "/status", "status", f"unknown-{i}", "sent"))
    writer.put(CallbackRecord(time.time(), "/status", "status", "mine", "sent"))
    writer.close()
    assert writer.orphans_kept == 100 and writer.orphans_dropped == 900
    with Store(path) as store:
        assert store.info()["callbacks"] == 101
        assert [r["status"] for r in store.callbacks_for("mine")] == ["sent"]


def test_prune_deletes_only_what_is_older(tmp_path) -> None:
    path = tmp_path / "s.db"
    now = time.time()
    with Store(path) as store:
        store.add_sends([SendRecord("old", now - 40 * 86400), SendRecord("new", now)])
        store.add_callbacks([CallbackRecord(now - 40 * 86400, "/status", "status", "old",
                                            "sent"),
                             CallbackRecord(now, "/status", "status", "new", "sent")])
        removed = store.prune(now - 30 * 86400)
        assert removed == {"sends": 1, "load_runs": 0, "callbacks": 1, "runs": 0}
        assert store.send("new") and not store.send("old")


def test_meta_webhooks_and_broken_callbacks_are_still_tied_to_their_message() -> None:
    meta = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "statuses": [{"id": "m-1", "status": "failed", "errors": [{"code": 131026}]}],
        "messages": [{"type": "text", "context": {"id": "m-2"}}]}}]}]}
    rows = callback_records(meta, "status", "/status", 1.0, json.dumps(meta), ["not ours"])
    assert [(r.msg_id, r.status, r.code, r.valid) for r in rows] == [
        ("m-1", "failed", 131026, False), ("m-2", "text", None, False)]
    odd = {"statuses": [{"msgId": 7, "status": "sent"}, "junk"]}
    assert [(r.msg_id, r.status) for r in callback_records(odd, "status", "/s", 1.0, "", [])] \
        == [(None, "sent")]
    assert callback_records("[]", None, "/", 1.0, "[]", ["x"])[0].kind == "unknown"


def test_store_commands(cli, tmp_path) -> None:
    path = tmp_path / "mine.db"
    with Store(path) as store:
        store.add_sends([SendRecord("m1", time.time() - 3 * 86400, recipient="919000000001")])
    info = cli("--json", "store", "info", "--store", str(path))
    assert info.exit_code == 0, info.stderr
    assert json.loads(info.stdout)["sends"] == 1
    pruned = cli("store", "prune", "--older-than", "2d", "--store", str(path))
    assert pruned.exit_code == 0 and "removed 1 sends" in pruned.stdout
    bad = cli("store", "prune", "--older-than", "soon")
    assert bad.exit_code == ExitCode.USAGE and "not a duration" in bad.stderr
    env = cli("--json", "store", "info", env={"CTWA_STORE": str(path)})
    assert json.loads(env.stdout)["path"] == str(path)

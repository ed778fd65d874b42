"""The state when the database is not there, goes away, comes back, or is locked; and
acknowledged writes surviving a kill -9 of the process that made them."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctwa.bridge.state import SchemaMismatch, StateError, StateUnavailable, open_state
from ctwa.bridge.state.base import safe_url
from ctwa.bridge.state.throwaway import Cluster, ClusterUnavailable, start_cluster
from ctwa.infra.ports import free_port
from tests.bridge.state import pg
from tests.bridge.state.test_state import opened, run


def test_unreachable_postgresql_is_one_line_quickly() -> None:
    url = f"postgresql://ctwa:hunter2-secret@127.0.0.1:{free_port()}/nothing"
    started = time.monotonic()
    with pytest.raises(StateUnavailable) as caught:
        run(open_state(url, timeout=2.0))
    assert time.monotonic() - started < 10
    text = str(caught.value)
    assert "\n" not in text and "unreachable" in text and "127.0.0.1" in text
    assert "hunter2-secret" not in text  # the URL's password is never shown
    assert caught.value.exit_code == 4


def test_safe_url_hides_only_the_password() -> None:
    assert safe_url("postgresql://u:pw@db:5432/x?sslmode=require") == \
        "postgresql://u:***@db:5432/x?sslmode=require"
    assert safe_url("postgresql://db/x") == "postgresql://db/x"


def test_unknown_scheme_and_unusable_sqlite_paths(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="unknown scheme 'mysql'"):
        run(open_state("mysql://db/x"))
    with pytest.raises(StateError, match="cannot be written"):
        run(open_state(str(tmp_path)))  # a directory
    (tmp_path / "junk.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StateError, match="damaged or not a bridge state"):
        run(open_state(str(tmp_path / "junk.db")))


def test_sqlite_locked_by_another_process_fails_fast_then_works(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"

    async def body() -> None:
        async with opened(str(path), timeout=1.0, ack_timeout=0.5) as state:
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            started = time.monotonic()
            with pytest.raises(StateUnavailable) as caught:
                await state.enqueue_send("m1", "template", {})
            assert time.monotonic() - started < 3.0
            assert "locked" in str(caught.value) or "did not answer" in str(caught.value)
            other.execute("ROLLBACK")
            other.close()
            assert not (await state.enqueue_send("m2", "template", {})).duplicate
            items = await state.claim_sends("r", 10, 30)
            assert [i.msg_id for i in items] == ["m2"]  # the refused one did not land later

    run(body())


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of the test's own, to stop and start (the shared one stays up)."""
    pg.server_url()  # skips (or fails under CI) the same way when there is no PostgreSQL
    try:
        cluster = start_cluster(fsync=False, bin_dir=Path(pg._BIN) if pg._BIN else None)
    except ClusterUnavailable as exc:
        pytest.fail(f"a second cluster could not start: {exc}")
    yield cluster
    cluster.destroy()


def test_postgresql_lost_while_running_fails_fast_and_resumes(own_cluster: Cluster) -> None:
    async def body() -> None:
        state = await open_state(own_cluster.url, timeout=2.0, ack_timeout=0.8)
        try:
            await state.migrate()
            assert not (await state.enqueue_send("before", "template", {})).duplicate
            own_cluster.stop("immediate")
            for name in ("during1", "during2"):
                started = time.monotonic()
                with pytest.raises(StateUnavailable) as caught:
                    await state.enqueue_send(name, "template", {})
                assert time.monotonic() - started < 2.5  # inside CleverTap's patience
                assert "unreachable" in str(caught.value)
            with pytest.raises(StateUnavailable):
                await state.claim_sends("r", 10, 30)
            own_cluster.start()
            deadline = time.monotonic() + 30
            while True:
                try:
                    await state.enqueue_send("after", "template", {})
                    break
                except StateUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.3)
            items = await state.claim_sends("r", 10, 30)
            assert sorted(i.msg_id for i in items) == ["after", "before"]
        finally:
            await state.close()

    run(body(), limit=90)


def test_postgresql_newer_schema_refused_at_open(own_cluster: Cluster) -> None:
    import psycopg

    async def prepare() -> None:
        async with opened(own_cluster.url):
            pass

    run(prepare())
    with psycopg.connect(own_cluster.url, autocommit=True) as conn:
        conn.execute("INSERT INTO bridge_schema (version) VALUES (7)")
    with pytest.raises(SchemaMismatch, match="version 7, newer than this ctwa's 2"):
        run(open_state(own_cluster.url))


CHILD = textwrap.dedent("""
    import asyncio, sys
    from ctwa.bridge.state import open_state

    async def main(url):
        state = await open_state(url)
        await state.migrate()
        print("ready", flush=True)
        n = 0
        async def one(i):
            await state.enqueue_send(f"m{i}", "template", {"n": i})
            print(f"acked m{i}", flush=True)
        while True:
            await asyncio.gather(*(one(n + k) for k in range(50)))
            n += 50
            wid = await state.store_webhook(b"body-%d" % n)
            print(f"webhook {wid}", flush=True)

    asyncio.run(main(sys.argv[1]))
""")


def test_acknowledged_writes_survive_kill_9(state_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, state_url], stdout=subprocess.PIPE,
                             text=True, env=env)
    assert child.stdout is not None
    acked, webhooks = [], []
    try:
        assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        for line in child.stdout:
            if line.startswith("acked "):
                acked.append(line.split()[1])
            elif line.startswith("webhook "):
                webhooks.append(int(line.split()[1]))
            if len(acked) >= 600 or time.monotonic() - started > 20:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    assert len(acked) >= 100

    async def check() -> None:
        async with opened(state_url) as state:
            claimed = {i.msg_id for i in await state.claim_sends("r", 100_000, 30)}
            assert set(acked) <= claimed
            stored = {i.id for i in await state.claim_webhooks("r", 100_000, 30)}
            assert set(webhooks) <= stored

    run(check())

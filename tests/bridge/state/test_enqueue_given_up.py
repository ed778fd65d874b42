"""PostgreSQL: CleverTap's answer for a message and whether it is stored always agree.

A caller told "not stored" (2004) before its INSERT came back is not committed at all (it
used to be committed and then withdrawn by a second statement, and a worker of another
replica could claim it in between); a caller whose commit has begun waits for its outcome
(the writer's own deadline used to cut the commit off in flight, which may have been applied,
and answer 2004). The cluster test at full size saw 1,069-1,120 of 20,000 messages answered
2004 and sent all the same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest

from ctwa.bridge.state import StateUnavailable, open_state
from ctwa.bridge.state._wait import settle
from tests.bridge.state import pg


@pytest.fixture
def pg_url() -> Iterator[str]:
    url, schema = pg.fresh_schema_url()
    yield url
    pg.drop_schema(schema)


def test_a_send_given_up_before_its_insert_returned_is_never_claimable(pg_url: str) -> None:
    async def body() -> list[str]:
        state = await open_state(pg_url)
        other = await open_state(pg_url)  # another replica's worker
        await state.migrate()
        claimed: list[str] = []
        try:
            withdraw = state._withdraw  # type: ignore[attr-defined]

            async def slow_withdraw(ids: list[int]) -> None:
                await asyncio.sleep(0.5)  # a busy loop: the other replica gets there first
                await withdraw(ids)

            state._withdraw = slow_withdraw  # type: ignore[attr-defined]
            locker = await psycopg.AsyncConnection.connect(pg_url)
            await locker.execute("LOCK TABLE bridge_sends IN EXCLUSIVE MODE")
            future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            state._start_writers()  # type: ignore[attr-defined]
            state._sends.put_nowait(  # type: ignore[attr-defined]
                ("m1", "freeform", b"{}", future, time.monotonic() + 0.8, [False]))
            await asyncio.sleep(0.1)  # the INSERT waits on the lock
            # the caller's timer runs before the INSERT's answer (a starved loop)
            settle(future, None, StateUnavailable("not stored in time"))
            await locker.rollback()
            await locker.close()
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                claimed += [i.msg_id for i in await other.claim_sends("r2", 10, 15.0)]
                await asyncio.sleep(0.01)
        finally:
            await state.close()
            await other.close()
        return claimed

    assert asyncio.run(asyncio.wait_for(body(), 30)) == []


def test_a_caller_whose_commit_has_begun_waits_for_its_outcome(pg_url: str) -> None:
    """The commit is slow (a deferred trigger sleeps 1.2 s at COMMIT; on a loaded machine
    it is the fsync): past the ack deadline the caller is told "stored", as it is, not 2004
    for a message that is then sent."""
    async def body() -> tuple[object, list[str]]:
        state = await open_state(pg_url, ack_timeout=0.2)
        await state.migrate()
        try:
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
                await conn.execute(
                    "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN PERFORM pg_sleep(1.2); RETURN NULL; END $$")
                await conn.execute(
                    "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON bridge_sends "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()")
            try:
                answer: object = await state.enqueue_send("m2", "freeform", {})
            except StateUnavailable as exc:
                answer = exc
            claimed = [i.msg_id for i in await state.claim_sends("r1", 10, 15.0)]
        finally:
            await state.close()
        return answer, claimed

    answer, claimed = asyncio.run(asyncio.wait_for(body(), 30))
    assert not isinstance(answer, StateUnavailable), "told 2004 for a message it stored"
    assert claimed == ["m2"]

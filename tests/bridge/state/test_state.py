"""The one suite both state backends pass (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest

from ctwa.bridge.state import (
    RANK,
    BridgeState,
    CallbackSpec,
    SchemaMismatch,
    StateError,
    open_state,
)
from ctwa.bridge.state.base import CRASH_CODE, InvalidCursor, Mapped, new_replica_id

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], limit: float = 60) -> T:
    return asyncio.run(asyncio.wait_for(coro, limit))


@contextlib.asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[BridgeState]:
    state = await open_state(url, **options)
    await state.migrate()
    try:
        yield state
    finally:
        await state.close()


def template_payload(msg_id: str) -> dict[str, Any]:
    return {"msgId": msg_id, "to": "919876543210", "template": {"name": "lto"}}


async def drain_callbacks(state: BridgeState, replica: str = "r") -> list[Any]:
    """Claim and complete callbacks until none is due; returns them in delivery order."""
    seen = []
    while True:
        items = await state.claim_callbacks(replica, 100, 30)
        if not items:
            return seen
        for item in items:
            seen.append(item)
            await state.complete_callback(item.id)


# --- lifecycle and migrations ----------------------------------------------------------------


def test_migrate_is_versioned_and_idempotent(state_url: str) -> None:
    async def body() -> None:
        state = await open_state(state_url)
        try:
            assert await state.schema_version() == 0
            first = await state.migrate()
            assert (first.before, first.after) == (0, 2)
            again = await state.migrate()
            assert (again.before, again.after) == (2, 2)
            assert await state.schema_version() == 2
        finally:
            await state.close()

    run(body())


def test_unmigrated_state_says_to_migrate(state_url: str) -> None:
    async def body() -> None:
        state = await open_state(state_url)
        try:
            with pytest.raises(SchemaMismatch, match="not migrated") as caught:
                await state.enqueue_send("m1", "template", {})
            assert "ctwa bridge migrate" in str(caught.value)
        finally:
            await state.close()

    run(body())


def _bump_schema(state_url: str, version: int) -> None:
    if state_url.startswith("sqlite://"):
        import sqlite3

        from ctwa.bridge.state.sqlite import sqlite_path

        with sqlite3.connect(sqlite_path(state_url)) as conn:
            conn.execute(f"PRAGMA user_version = {version}")
        return
    import psycopg

    with psycopg.connect(state_url, autocommit=True) as conn:
        conn.execute("INSERT INTO bridge_schema (version) VALUES (%s)", (version,))


def test_newer_schema_is_refused_naming_both_versions(state_url: str) -> None:
    async def prepare() -> None:
        async with opened(state_url):
            pass

    run(prepare())
    _bump_schema(state_url, 99)
    with pytest.raises(SchemaMismatch) as caught:
        run(open_state(state_url))
    text = str(caught.value)
    assert "99" in text and "newer than this ctwa's 2" in text
    assert "\n" not in text


# --- the send outbox -------------------------------------------------------------------------


def test_enqueue_reports_duplicates_and_claims_oldest_first(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            first = await state.enqueue_send("m1", "template", template_payload("m1"))
            second = await state.enqueue_send("m2", "freeform", {"msgId": "m2"})
            again = await state.enqueue_send("m1", "template", {"other": True})
            assert not first.duplicate and not second.duplicate
            assert again.duplicate and again.id == first.id
            items = await state.claim_sends("r1", 10, 30)
            assert [i.msg_id for i in items] == ["m1", "m2"]
            assert items[0].payload == template_payload("m1")  # the first one is kept
            assert items[0].kind == "template" and items[0].attempts == 0
            assert await state.claim_sends("r2", 10, 30) == []
            depths = await state.depths()
            assert depths.sends_claimed == 2 and depths.sends_queued == 0

    run(body())


def test_1500_concurrent_enqueues_are_all_durable_and_duplicates_caught(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            ids = [f"i|c|b|{n}|v" for n in range(1500)]
            results = await asyncio.gather(
                *(state.enqueue_send(m, "template", template_payload(m)) for m in ids),
                *(state.enqueue_send(m, "template", {}) for m in ids[:50]))
            assert sum(not r.duplicate for r in results) == 1500
            assert sum(r.duplicate for r in results) == 50
        async with opened(state_url) as reopened:  # what was acknowledged is there
            claimed = await reopened.claim_sends("r", 5000, 30)
            assert sorted(i.msg_id for i in claimed) == sorted(ids)

    run(body())


def test_two_replicas_never_claim_the_same_send(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as a, opened(state_url) as b:
            for n in range(300):
                await a.enqueue_send(f"m{n}", "template", {})

            async def claimer(state: BridgeState, name: str) -> list[str]:
                got: list[str] = []
                while True:
                    items = await state.claim_sends(name, 7, 30)
                    if not items:
                        return got
                    got.extend(i.msg_id for i in items)

            results = await asyncio.gather(claimer(a, "A"), claimer(b, "B"), claimer(a, "A2"),
                                           claimer(b, "B2"))
            everything = [m for got in results for m in got]
            assert len(everything) == len(set(everything)) == 300

    run(body())


def test_expired_lease_returns_a_claimed_send_to_the_queue(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            await state.enqueue_send("m1", "template", {})
            assert [i.msg_id for i in await state.claim_sends("dead", 5, 0.3)] == ["m1"]
            assert await state.claim_sends("alive", 5, 30) == []
            await asyncio.sleep(0.6)
            again = await state.claim_sends("alive", 5, 30)
            assert [i.msg_id for i in again] == ["m1"] and again[0].attempts == 1
            with pytest.raises(StateError, match="not claimed"):
                # the dead replica woke up: it may not send what it lost
                await state.mark_in_flight(again[0].id + 10_000)

    run(body())


def test_heartbeat_keeps_a_live_replicas_leases(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            await state.enqueue_send("m1", "template", {})
            await state.claim_sends("slow", 5, 0.5)
            for _ in range(4):
                await asyncio.sleep(0.25)
                await state.heartbeat("slow", {"listen": "127.0.0.1:1"})
            assert await state.claim_sends("other", 5, 30) == []

    run(body())


def test_crash_rule_fails_a_send_in_doubt_past_its_window_with_1009_never_resent(
        state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            state.in_doubt_window = 0.5
            await state.enqueue_send("m1", "template", {})
            await state.enqueue_send("m2", "template", {})
            item1, item2 = await state.claim_sends("victim", 5, 0.3)
            await state.mark_in_flight(item1.id)  # m1's request went to Meta, then: kill -9
            await asyncio.sleep(0.6)
            survivors = await state.claim_sends("survivor", 5, 30)
            assert [i.msg_id for i in survivors] == ["m2"]  # only the one never in flight
            doubt = await state.accepted("m1")
            assert doubt is not None and doubt.state == "in_doubt"
            assert doubt.doubt_until is not None and "victim" in (doubt.reason or "")
            assert (await state.depths()).sends_in_doubt == 1
            assert await drain_callbacks(state) == []  # no DLR yet: Meta may have taken it
            await asyncio.sleep(0.8)
            assert await state.claim_sends("survivor", 5, 30) == []
            callbacks = await drain_callbacks(state)
            assert [c.msg_id for c in callbacks] == ["m1"]
            status = callbacks[0].payload["statuses"][0]
            assert status["status"] == "failed" and status["msgId"] == "m1"
            assert status["error"]["code"] == CRASH_CODE
            title = status["error"]["title"]
            assert "victim" in title and "never sent twice" in title
            assert "no status for it within 0.5 s" in title
            # Meta's answer recorded late by the dead replica (or a status past the window):
            # the map is kept, marked late, and the send stays failed (one outcome)
            assert await state.complete_send(item1.id, "wamid.LATE") is False
            assert await state.lookup_msg_id("wamid.LATE") == "m1"
            assert await state.lookup_wamid("wamid.LATE") == Mapped("m1", late=True)
            failed = await state.accepted("m1")
            assert failed is not None and failed.state == "failed" and failed.code == 1009
            cluster = await state.cluster_status()
            assert cluster.failed == 1 and cluster.sent == 0
            assert cluster.depths.sends_in_doubt == 0
            assert item2.msg_id == "m2"

    run(body())


def test_a_status_naming_a_send_in_doubt_settles_it_as_sent(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            await state.enqueue_send("m1", "template", {})
            (item,) = await state.claim_sends("victim", 5, 0.3)
            await state.mark_in_flight(item.id)
            await asyncio.sleep(0.6)
            assert await state.claim_sends("survivor", 5, 30) == []
            doubt = await state.accepted("m1")
            assert doubt is not None and doubt.state == "in_doubt" and doubt.id == item.id
            # Meta's status named msgId m1 (biz_opaque_callback_data): it took the send
            assert await state.complete_send(doubt.id, "wamid.M1") is True
            assert await state.lookup_wamid("wamid.M1") == Mapped("m1", late=False)
            sent = await state.accepted("m1")
            assert sent is not None and (sent.state, sent.wamid) == ("sent", "wamid.M1")
            await asyncio.sleep(0.3)
            assert await state.claim_sends("survivor", 5, 30) == []
            assert await drain_callbacks(state) == []  # no failed DLR, ever
            cluster = await state.cluster_status()
            assert (cluster.sent, cluster.failed, cluster.depths.sends_in_doubt) == (1, 0, 0)
            assert await state.accepted("m2") is None
            assert await state.lookup_wamid("wamid.NONE") is None

    run(body())


def test_migration_2_upgrades_a_version_1_state_keeping_its_rows(
        state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctwa.bridge.state import postgres, sqlite

    module = sqlite if state_url.startswith("sqlite://") else postgres
    first = module.MIGRATIONS[:1]

    async def old() -> None:  # the schema ctwa before the in-doubt rule made, two sends
        async with opened(state_url) as state:
            await state.enqueue_send("m1", "template", {})
            await state.enqueue_send("m2", "template", {})

    with monkeypatch.context() as patch:
        patch.setattr(module, "MIGRATIONS", first)
        patch.setattr(module, "VERSION", 1)
        run(old())
    sent = ("UPDATE bridge_sends SET state = 'sent', wamid = 'wamid.OLD' WHERE msg_id = 'm1'",
            "INSERT INTO bridge_wamids (wamid, msg_id, created_at) VALUES ('wamid.OLD', 'm1', 0)")
    if module is sqlite:
        import sqlite3

        with sqlite3.connect(sqlite.sqlite_path(state_url)) as conn:
            for statement in sent:
                conn.execute(statement)
    else:
        import psycopg

        with psycopg.connect(state_url, autocommit=True) as conn:
            for statement in sent:
                conn.execute(statement)

    async def upgraded() -> None:
        state = await open_state(state_url)
        try:
            assert await state.schema_version() == 1
            done = await state.migrate()
            assert (done.before, done.after) == (1, 2)
            assert await state.lookup_wamid("wamid.OLD") == Mapped("m1", late=False)
            assert [i.msg_id for i in await state.claim_sends("r", 5, 30)] == ["m2"]
            m1 = await state.accepted("m1")
            assert m1 is not None and m1.state == "sent" and m1.doubt_until is None
        finally:
            await state.close()

    run(upgraded())


def test_complete_fail_and_retry(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            for m in ("ok", "bad", "later"):
                await state.enqueue_send(m, "template", {})
            items = {i.msg_id: i for i in await state.claim_sends("r", 5, 30)}
            for item in items.values():
                await state.mark_in_flight(item.id)
            assert await state.complete_send(items["ok"].id, "wamid.OK") is True
            dlr = {"payloadVersion": "0.1", "statuses": [{
                "msgId": "bad", "status": "failed", "timestamp": "1700000000000",
                "error": {"code": 1001, "title": "Invalid template parameters"}}]}
            await state.fail_send(items["bad"].id, 1001, "bad parameter", dlr)
            await state.fail_send(items["bad"].id, 1001, "again", dlr)  # no second DLR
            await state.retry_send(items["later"].id, time.time() + 0.5)
            assert await state.lookup_msg_id("wamid.OK") == "ok"
            assert await state.lookup_msg_id("wamid.NONE") is None
            assert await state.claim_sends("r", 5, 30) == []  # not due yet
            callbacks = await drain_callbacks(state)
            assert [(c.msg_id, c.payload) for c in callbacks] == [("bad", dlr)]
            await asyncio.sleep(0.7)
            again = await state.claim_sends("r", 5, 30)
            assert [i.msg_id for i in again] == ["later"] and again[0].attempts == 1
            cluster = await state.cluster_status()
            assert (cluster.sent, cluster.failed) == (1, 1)
            assert cluster.depths.sends_claimed == 1

    run(body())


# --- the webhook inbox -----------------------------------------------------------------------


def test_webhooks_are_stored_claimed_and_finished_with_their_callbacks(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            raw = b'{"object": "whatsapp_business_account", "entry": [\xe2\x9c\x93]}'
            first = await state.store_webhook(raw)
            second = await state.store_webhook(b"{}")
            items = await state.claim_webhooks("r", 10, 30)
            assert [(i.id, i.raw_body) for i in items] == [(first, raw), (second, b"{}")]
            assert await state.claim_webhooks("r2", 10, 30) == []
            specs = [CallbackSpec("m1", "status", {"s": "sent"}, RANK["sent"]),
                     CallbackSpec("m1", "status", {"s": "sent"}, RANK["sent"]),  # redelivered
                     CallbackSpec("from:91", "inbound", {"text": "hi"}, RANK["inbound"])]
            assert await state.finish_webhook(first, specs) == 2
            assert await state.finish_webhook(first, specs) == 0  # once only
            await state.defer_webhook(second, time.time() + 0.4)
            assert await state.claim_webhooks("r", 10, 30) == []
            await asyncio.sleep(0.6)
            assert [i.id for i in await state.claim_webhooks("r", 10, 30)] == [second]
            callbacks = await drain_callbacks(state)
            assert sorted(c.route for c in callbacks) == ["inbound", "status"]
            assert (await state.depths()).webhooks_pending == 1

    run(body())


def test_expired_webhook_lease_lets_another_replica_take_it(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            wid = await state.store_webhook(b"{}")
            await state.claim_webhooks("dead", 10, 0.3)
            await asyncio.sleep(0.6)
            again = await state.claim_webhooks("alive", 10, 30)
            assert [(i.id, i.attempts) for i in again] == [(wid, 1)]

    run(body())


# --- the callback outbox ---------------------------------------------------------------------


def test_callbacks_of_one_message_go_in_order_whatever_order_they_came_in(
        state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            for status in ("read", "delivered", "sent"):
                await state.enqueue_callback("m1", "status", {"s": status}, RANK[status])
            await state.enqueue_callback("m2", "status", {"s": "sent"}, RANK["sent"])
            assert not await state.enqueue_callback("m1", "status", {"s": "sent"}, RANK["sent"])
            order = []
            while True:
                items = await state.claim_callbacks("r", 10, 30)
                if not items:
                    break
                assert len({i.msg_id for i in items}) == len(items)  # one per message at once
                assert await state.claim_callbacks("r", 10, 30) == []  # nothing else is next
                for item in items:
                    order.append((item.msg_id, item.payload["s"]))
                    await state.complete_callback(item.id)
            assert [s for m, s in order if m == "m1"] == ["sent", "delivered", "read"]
            assert ("m2", "sent") in order

    run(body())


def test_a_status_that_implies_an_earlier_one_waits_for_it_a_while(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            # Meta's "sent" webhook is stored, not processed yet (e.g. deferred: its wamid
            # was not mapped yet); "delivered" came in a later webhook, processed first
            state.order_settle = 0.3  # type: ignore[attr-defined]
            sent_hook = await state.store_webhook(b"sent")
            later = await state.store_webhook(b"delivered")
            await state.claim_webhooks("r", 10, 30)
            await state.finish_webhook(later, [CallbackSpec(
                "m1", "status", {"s": "delivered"}, RANK["delivered"])])
            assert await state.claim_callbacks("r", 10, 30) == []  # "sent" is on its way
            await state.finish_webhook(sent_hook, [CallbackSpec(
                "m1", "status", {"s": "sent"}, RANK["sent"])])
            got = await drain_callbacks(state)
            assert [c.payload["s"] for c in got] == ["sent", "delivered"]
            # Meta never sent "sent" for m2 (a failure): once every earlier webhook is done
            # and a retried webhook had time to come, "failed" goes
            await state.enqueue_callback("m2", "status", {"s": "failed"}, RANK["failed"])
            assert await state.claim_callbacks("r", 10, 30) == []
            await asyncio.sleep(0.5)
            assert [c.payload["s"] for c in await drain_callbacks(state)] == ["failed"]
            # an earlier webhook that never gets done (a stuck one) holds it at most the hold
            state.order_hold = 0.5  # type: ignore[attr-defined]
            await state.store_webhook(b"stuck")
            await state.enqueue_callback("m3", "status", {"s": "read"}, RANK["read"])
            await asyncio.sleep(0.35)
            assert await state.claim_callbacks("r", 10, 30) == []  # settled, but not done
            await asyncio.sleep(0.4)
            assert [c.payload["s"] for c in await drain_callbacks(state)] == ["read"]

    run(body())


def test_a_callback_being_retried_holds_back_the_next_one(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            await state.enqueue_callback("m1", "status", {"s": "sent"}, RANK["sent"])
            await state.enqueue_callback("m1", "status", {"s": "delivered"}, RANK["delivered"])
            (sent,) = await state.claim_callbacks("r", 10, 30)
            assert await state.claim_callbacks("r", 10, 30) == []  # sent is out: wait
            await state.retry_callback(sent.id, time.time() + 0.4, "CleverTap answered 503")
            assert await state.claim_callbacks("r", 10, 30) == []  # not delivered before it
            await asyncio.sleep(0.6)
            (again,) = await state.claim_callbacks("r", 10, 30)
            assert again.id == sent.id and again.attempts == 1
            assert again.last_error == "CleverTap answered 503"
            await state.complete_callback(again.id)
            assert [c.payload["s"] for c in await drain_callbacks(state)] == ["delivered"]

    run(body())


def test_hasten_makes_a_routes_retries_due_now_keeping_order(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            await state.enqueue_callback("m1", "status", {"s": "sent"}, RANK["sent"])
            await state.enqueue_callback("m1", "status", {"s": "delivered"},
                                         RANK["delivered"])
            await state.enqueue_callback("in:w1", "inbound", {"s": "reply"}, RANK["inbound"])
            claimed = await state.claim_callbacks("r", 10, 30)
            assert sorted(c.payload["s"] for c in claimed) == ["reply", "sent"]
            for item in claimed:  # CleverTap down: both wait out a long backoff
                await state.retry_callback(item.id, time.time() + 300, "HTTP 503")
            assert await state.claim_callbacks("r", 10, 30) == []
            assert await state.hasten_callbacks("status") == 1  # the one retried only
            (again,) = await state.claim_callbacks("r", 10, 30)
            assert again.payload["s"] == "sent" and again.attempts == 1
            assert await state.claim_callbacks("r", 10, 30) == []  # delivered after sent
            await state.complete_callback(again.id)
            assert [c.payload["s"] for c in await drain_callbacks(state)] == ["delivered"]
            assert await state.hasten_callbacks("status") == 0
            assert await state.hasten_callbacks("inbound") == 1
            assert [c.payload["s"] for c in await drain_callbacks(state)] == ["reply"]

    run(body())


def test_clicks_are_not_deduplicated_when_asked(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            state.order_hold = state.order_settle = 0.0  # type: ignore[attr-defined]
            for _ in range(2):
                assert await state.enqueue_callback("m1", "status", {"s": "clicked"},
                                                    RANK["clicked"], dedupe=False)
            assert len(await drain_callbacks(state)) == 2

    run(body())


def test_callback_order_holds_across_replicas_delivering_at_once(state_url: str) -> None:
    """Several replicas claim and deliver concurrently; statuses arrive shuffled; each
    message's statuses still reach CleverTap once each and in order."""
    statuses = ("sent", "delivered", "read")

    async def body() -> None:
        async with opened(state_url) as a, opened(state_url) as b:
            arrivals = [(f"m{n}", s) for n in range(60) for s in statuses]
            random.Random(7).shuffle(arrivals)
            delivered: list[tuple[str, str]] = []
            done = asyncio.Event()

            async def producer() -> None:
                # Meta's webhooks land on both replicas in any order; each is processed
                # (some late, as when deferred) into its callback
                hooks = []
                for i, (msg_id, status) in enumerate(arrivals):
                    state = a if i % 2 else b
                    hooks.append((state, await state.store_webhook(b"{}"), msg_id, status))
                random.Random(8).shuffle(hooks)
                for state, hook, msg_id, status in hooks:
                    await state.claim_webhooks("P", 1000, 30)
                    await state.finish_webhook(hook, [CallbackSpec(
                        msg_id, "status", {"s": status}, RANK[status])])
                    await asyncio.sleep(0)
                done.set()

            async def deliverer(state: BridgeState, name: str) -> None:
                while True:
                    items = await state.claim_callbacks(name, 5, 30)
                    if not items:
                        if done.is_set() and not (await state.depths()).callbacks_pending:
                            return
                        await asyncio.sleep(0.01)
                        continue
                    for item in items:
                        await asyncio.sleep(random.random() / 500)  # CleverTap's answer
                        delivered.append((item.msg_id, item.payload["s"]))
                        await state.complete_callback(item.id)

            await asyncio.gather(producer(), deliverer(a, "A1"), deliverer(a, "A2"),
                                 deliverer(b, "B1"), deliverer(b, "B2"))
            assert len(delivered) == len(arrivals) == len(set(delivered))
            for n in range(60):
                assert [s for m, s in delivered if m == f"m{n}"] == list(statuses)

    run(body())


# --- templates and clicks --------------------------------------------------------------------


def test_templates_replace_get_and_page_with_a_cursor(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            templates = [{"name": f"t{n:02d}", "language": lang, "status": "APPROVED"}
                         for n in range(7) for lang in ("en", "hi")]
            assert await state.replace_templates([*templates, {"name": "no language"}]) == 14
            assert await state.get_template("t03", "hi") == templates[7]
            assert await state.get_template("t03", "fr") is None
            names, after, pages = [], None, 0
            while True:
                page = await state.list_templates(5, after)
                pages += 1
                names += [(t["name"], t["language"]) for t in page.templates]
                if page.after is None:
                    break
                after = page.after
            assert pages == 3 and names == [(t["name"], t["language"]) for t in templates]
            assert await state.replace_templates(templates[:1]) == 1
            assert (await state.list_templates(10)).templates == templates[:1]
            with pytest.raises(InvalidCursor):
                await state.list_templates(5, "not-a-cursor")

    run(body())


def test_click_tokens(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            await state.put_click("tok1", "m1", "https://shop.example/track/1")
            click = await state.get_click("tok1")
            assert click is not None and click.msg_id == "m1"
            assert click.destination == "https://shop.example/track/1"
            assert await state.get_click("nope") is None

    run(body())


# --- the shared token bucket -----------------------------------------------------------------


def _max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_token_bucket_is_shared_by_several_clients(state_url: str) -> None:
    """Three clients (as three replicas would) with four senders each take one slot per
    message from one number's bucket: together they stay at the rate."""
    mps, per_sender = 40, 8

    async def body() -> list[float]:
        async with opened(state_url) as a, opened(state_url) as b, opened(state_url) as c:
            sent: list[float] = []

            async def sender(state: BridgeState) -> None:
                for _ in range(per_sender):
                    wait = await state.take_tokens("PN1", 1, mps)
                    await asyncio.sleep(wait)
                    sent.append(time.monotonic())

            await asyncio.gather(*(sender(s) for s in (a, b, c) for _ in range(4)))
            return sent

    sent = run(body())
    assert len(sent) == 12 * per_sender
    # 96 sends at 40/s take at least 95/40 s; timer jitter may bring one more into a window
    assert max(sent) - min(sent) >= (len(sent) - 1) / mps - 0.05
    assert _max_in_any_second(sent) <= mps + 1


def test_tokens_in_one_reservation_are_spaced_not_a_burst(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            assert await state.take_tokens("PN1", 10, 100) == pytest.approx(0, abs=0.02)
            after = await state.take_tokens("PN1", 1, 100)
            assert after == pytest.approx(0.1, abs=0.03)  # the 10 slots took 0.1 s
            assert await state.take_tokens("PN2", 1, 100) == pytest.approx(0, abs=0.02)

    run(body())


def test_slow_down_pushes_every_client_back(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as a, opened(state_url) as b:
            await a.take_tokens("PN1", 1, 50)
            await a.slow_down("PN1", 1.0)  # Meta answered 130429 to replica a
            wait = await b.take_tokens("PN1", 1, 50)
            assert 0.8 <= wait <= 1.1
            assert await b.take_tokens("PN2", 1, 50) == pytest.approx(0, abs=0.05)

    run(body())


# --- the cluster view and wake-ups -----------------------------------------------------------


def test_cluster_status_shows_replicas_depths_and_ages(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as state:
            one, two = new_replica_id("8780"), new_replica_id("8781")
            assert one != two and "8780" in one
            await state.heartbeat(one, {"listen": "127.0.0.1:8780"})
            await state.heartbeat(two, {"listen": "127.0.0.1:8781"})
            await state.enqueue_send("m1", "template", {})
            await state.enqueue_send("m2", "template", {})
            await state.claim_sends(one, 1, 30)
            await state.enqueue_callback("m0", "status", {}, RANK["sent"])
            await asyncio.sleep(0.2)
            status = await state.cluster_status()
            assert [r.name for r in status.replicas] == sorted([one, two])
            assert status.replicas[0].info["listen"].startswith("127.0.0.1:878")
            assert all(r.age < 5 for r in status.replicas)
            assert status.depths.sends_queued == 1 and status.depths.sends_claimed == 1
            assert status.depths.callbacks_pending == 1
            assert status.oldest_send_age is not None and status.oldest_send_age >= 0.15
            assert status.callback_lag is not None and status.callback_lag >= 0.15
            assert status.schema_version == 2 and status.backend in ("sqlite", "postgresql")

    run(body())


def test_an_idle_worker_wakes_when_work_arrives(state_url: str) -> None:
    async def body() -> None:
        async with opened(state_url) as producer:
            # on PostgreSQL another connection (another replica) is woken, through NOTIFY
            consumer = producer if producer.backend == "sqlite" else await open_state(state_url)
            try:
                await consumer.wait_for_work("sends", 0.3)  # starts listening; may time out
                started = time.monotonic()
                waiter = asyncio.create_task(consumer.wait_for_work("sends", 20))
                await asyncio.sleep(0.3)
                assert not waiter.done()
                await producer.enqueue_send("m1", "template", {})
                await asyncio.wait_for(waiter, 10)
                assert time.monotonic() - started < 15  # woken, not timed out
                assert [i.msg_id for i in await consumer.claim_sends("r", 5, 30)] == ["m1"]
            finally:
                if consumer is not producer:
                    await consumer.close()

    run(body())


def test_pacer_keeps_replicas_under_mps_even_when_one_falls_behind(state_url: str) -> None:
    """Two replicas (two threads, each its own loop and connection) send through Pacers on
    one number; one stalls its loop now and then (a busy machine). Its late slots are
    forfeited, not sent at once, so together they never exceed mps in any second, and the
    one on time is not held back by the other's stalls."""
    import threading

    from ctwa.bridge.state.pacing import Pacer

    mps, seconds = 60, 3.0
    sent: dict[str, list[float]] = {"steady": [], "stalling": []}
    forfeited: dict[str, int] = {}

    def replica(name: str, stalls: bool) -> None:
        async def body() -> None:
            async with opened(state_url) as state:
                pacer = Pacer(state, "PN1", mps)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    await pacer.turn()
                    sent[name].append(time.monotonic())
                    if stalls and len(sent[name]) % 10 == 0:
                        time.sleep(0.15)  # the loop is blocked: its next slots pass
                forfeited[name] = pacer.forfeited

        run(body())

    threads = [threading.Thread(target=replica, args=("steady", False)),
               threading.Thread(target=replica, args=("stalling", True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = sent["steady"] + sent["stalling"]
    assert _max_in_any_second(everything) <= mps
    assert forfeited["stalling"] > 0
    assert len(everything) >= mps * seconds * 0.6  # on time, slots are used


def test_raw_slots_sent_late_go_over_mps(state_url: str) -> None:
    """Why the Pacer forfeits: the same two replicas sending every reserved slot, late or
    not, exceed mps when one catches up after a stall."""
    import threading

    mps = 60
    sent: list[float] = []

    def replica(stalls: bool) -> None:
        async def body() -> None:
            async with opened(state_url) as state:
                for batch in range(12):
                    wait = await state.take_tokens("PN1", 15, mps)
                    start = time.monotonic() + wait
                    if stalls and batch == 3:
                        time.sleep(0.6)
                    for k in range(15):
                        delay = start + k / mps - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        sent.append(time.monotonic())

        run(body())

    threads = [threading.Thread(target=replica, args=(s,)) for s in (False, True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert _max_in_any_second(sent) > mps


def test_the_crash_rules_dlr_carries_epoch_seconds() -> None:
    from ctwa.bridge.state.base import crash_dlr

    dlr = crash_dlr("1|2|3|4|0", "the bridge stopped while this send was in flight",
                    now=1_764_600_000.7)
    assert dlr["statuses"][0]["timestamp"] == "1764600000"

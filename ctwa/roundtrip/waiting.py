"""Waiting for the callbacks a send caused: a listener to receive them (the one already
running on ``--listen``, or one started for the wait), and the store polled until every
message reached the awaited status or the time is up."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ctwa.infra.errors import InputError
from ctwa.roundtrip.analyze import UNTIL, RoundTrip, analyze
from ctwa.store.db import Store

DEFAULT_LISTEN = "127.0.0.1:8787"
POLL_SECONDS = 0.2
#: Once every message reached the awaited status, how long to keep listening for what comes
#: after it (a duplicate, a reply, a status after the last one) before judging.
SETTLE_SECONDS = 1.0


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets), or just a port."""
    text = value.strip()
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdecimal() or not 0 < int(port) < 65536:
        raise InputError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8787")
    return host, int(port)


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class ListenerInfo:
    url: str
    started_here: bool


#: The path of the sandbox's mock BSP endpoint under the sandbox's base URL.
SANDBOX_BSP_PATH = "/bsp/messages"


def sandbox_callbacks(endpoint: str | None, store: Path) -> str | None:
    """When ``endpoint`` is a ctwa sandbox's mock BSP: the URL of the sandbox's own CleverTap
    callback routes, where its DLRs and replies go (and which keep them in this store);
    None for any other endpoint. Only a URL ending in the sandbox's path is asked."""
    if not endpoint or not endpoint.rstrip("/").endswith(SANDBOX_BSP_PATH):
        return None
    import httpx

    from ctwa.http import make_client, send

    root = endpoint.rstrip("/").removesuffix(SANDBOX_BSP_PATH)
    base = root + "/clevertap"
    try:
        with make_client(timeout=2, origin=base) as client:
            bsp = send(client, "GET", f"{root}/bsp/stats").response.json()
            to = bsp.get("callbacks_to") if isinstance(bsp, dict) else None
            if not isinstance(to, dict) or to.get("status") != f"{base}/status":
                return None  # it calls back elsewhere (a listener on --listen), or nowhere
            answer = send(client, "GET", f"{base}/stats").response.json()
    except (httpx.HTTPError, ValueError, Exception):
        return None
    if not isinstance(answer, dict) or answer.get("listener") != "ctwa":
        return None
    if answer.get("store") is None:
        raise InputError(f"the sandbox at {base} keeps no callbacks (--no-store), so the wait "
                         "would see none", hint="restart the sandbox without --no-store")
    if Path(answer["store"]).resolve() != store.resolve():
        raise InputError(f"the sandbox at {base} keeps its callbacks in another store "
                         f"({answer['store']})", hint=f"pass --store {answer['store']}")
    return base


@contextlib.contextmanager
def listener_for(listen: str, store: Path, say: Callable[[str], None],
                 endpoint: str | None = None) -> Iterator[ListenerInfo]:
    """The listener the callbacks reach: the sandbox's own when ``endpoint`` is a ctwa
    sandbox (its mock BSP calls back there), the ctwa listener already on ``listen`` when it
    records into this store, or one started here for the duration of the block."""
    sandbox = sandbox_callbacks(endpoint, store)
    if sandbox is not None:
        say(f"callbacks come from ctwa's mock BSP, which sends them to its own {sandbox}/status "
            f"and {sandbox}/inbound; those keep them in {store}, where the wait reads them")
        yield ListenerInfo(sandbox, started_here=False)
        return
    host, port = parse_listen(listen)
    url = f"http://{host}:{port}"
    if _listening(host, port):
        _check_running(url, store)
        yield ListenerInfo(url, started_here=False)
        return
    from ctwa.callbacks.listener import Listener
    from ctwa.infra.threadserver import ThreadServer
    from ctwa.store.writer import BatchWriter

    writer = BatchWriter(store)
    try:
        with ThreadServer(Listener(store=writer).app(), host, port):
            say(f"listening for callbacks on {url}/status and {url}/inbound for this wait "
                "(the BSP's callback URLs must point here)")
            yield ListenerInfo(url, started_here=True)
    finally:
        writer.close()


def _check_running(url: str, store: Path) -> None:
    import httpx

    from ctwa.http import make_client, send

    try:
        with make_client(timeout=3, origin=url) as client:
            answer = send(client, "GET", f"{url}/stats").response.json()
    except (httpx.HTTPError, ValueError, Exception):
        answer = None
    if not isinstance(answer, dict) or answer.get("listener") != "ctwa":
        raise InputError(f"something that is not a ctwa listener is on {url}",
                         hint="stop it, or give --listen another HOST:PORT")
    if answer.get("store") is None:
        raise InputError(f"the ctwa listener on {url} does not record callbacks (--no-store)",
                         hint="restart it without --no-store")
    if Path(answer["store"]).resolve() != store.resolve():
        raise InputError(f"the ctwa listener on {url} records into another store "
                         f"({answer['store']})", hint=f"run both with --store {store}")


def wait_for(store: Store, until: str, timeout: float, *, msg_ids: list[str] | None = None,
             prefix: str | None = None, expected: int = 0,
             on_progress: Callable[[int, int, float], None] | None = None,
             stop: Callable[[], bool] | None = None) -> bool:
    """Poll until ``expected`` messages (given by msgId, or by the run's prefix) reached the
    awaited status or failed; False when the time ran out (or ``stop()`` said so)."""
    statuses = UNTIL[until]
    began = time.monotonic()
    while True:
        done = (store.count_reached(msg_ids, statuses) if msg_ids is not None
                else store.count_reached_prefix(prefix or "", statuses))
        waited = time.monotonic() - began
        if on_progress is not None:
            on_progress(done, expected, waited)
        if done >= expected:
            time.sleep(SETTLE_SECONDS)
            return True
        if waited >= timeout or (stop is not None and stop()):
            return False
        time.sleep(POLL_SECONDS)


def round_trip(store: Store, sent_at: dict[str, float], until: str, start: float, end: float,
               prefix: str | None = None, kinds: dict[str, str] | None = None,
               where: str | None = None) -> RoundTrip:
    """The round trip of these messages, with what else arrived meanwhile (orphans, replies
    without context) that was about no message the store knows."""
    if prefix is not None:
        ours = store.callbacks_with_prefix(prefix)
    else:
        ours = [row for msg_id in sent_at for row in store.callbacks_for(msg_id)]
        ours.sort(key=lambda row: (row["at"], row["id"]))
    # messages sent but not awaited (certify's error checks): whether their kind gets
    # callbacks tells a BSP that drops some kinds
    for msg_id in [m for m in kinds or {} if m not in sent_at][:100]:
        ours += store.callbacks_for(msg_id)
    mine = {row["id"] for row in ours}
    window = [row for row in store.callbacks_between(start, end) if row["id"] not in mine]
    prefixes = tuple(store.known_prefixes())
    candidates = [row["msg_id"] for row in window if row["msg_id"]]
    known = store.sent_among(candidates)
    others = [row for row in window if row["msg_id"] is None or (
        row["msg_id"] not in known and not (prefixes and row["msg_id"].startswith(prefixes)))]
    return analyze(sent_at, ours, until, others, kinds=kinds, where=where)

"""Pacing one number's sends across replicas: slots from the shared bucket, each used on time
or not at all.

``take_tokens`` hands out slots ``1/mps`` apart on the database's clock, shared by every
replica. A replica that falls behind its slots (a busy loop, a slow state call, a pause of the
machine) must not send its late slots at once: by then the other replicas are using the slots
of *now*, and together they would go over ``mps`` (two replicas each catching up at ``mps``
make ``2 x mps``). :class:`Pacer` therefore

* reserves a short run of slots at a time (about 50 ms worth),
* maps them onto this process's clock from the midpoint of the reservation's round trip
  (``skew`` is the misplacement allowed for; a run whose round trip was so slow that it could
  be misplaced by more, a round trip over ``2 x skew``, is dropped: the budget below counts
  on no run being further off),
* lets a caller send only within ``grace`` after its slot; a slot missed by more is
  forfeited (counted in ``forfeited``), and the caller takes the next one,
* runs the bucket a little under ``mps`` so that what ``grace`` and ``skew`` allow still
  fits: sends in any one second stay at or under ``mps``, whatever the number of replicas.

``pause(seconds)`` is for Meta's rate-limit answer: it slows the shared bucket for every
replica (``slow_down``) and drops this replica's reserved slots (another replica's
already-reserved run, at most ~50 ms of slots, still goes).
"""

from __future__ import annotations

import asyncio
import collections
import math
import time

from ctwa.bridge.state.base import BridgeState

#: A slot may be used up to this long after its time; later, it is forfeited.
GRACE = 0.02
#: How far a run of slots may be misplaced on this clock (half the reservation's round trip);
#: a run whose reservation took longer than twice this is not used. (It was 0.02 in the
#: budget while runs off by up to 0.1 were used, which the budget did not cover.)
SKEW = 0.04
#: How many seconds of slots one reservation takes.
RUN = 0.05


class Pacer:
    def __init__(self, state: BridgeState, number_id: str, mps: float, *,
                 grace: float = GRACE, skew: float = SKEW, run: float = RUN) -> None:
        if mps <= 0:
            raise ValueError("mps must be > 0")
        self.state, self.number_id, self.mps = state, number_id, mps
        self.grace, self.skew = grace, skew
        # sends in a one-second window come from slots due within (1 + grace + 2 skew) s
        self.rate = max(mps - 1.0, mps * 0.5) / (1.0 + grace + 2 * skew)
        self.run = max(1, math.ceil(self.rate * run))
        self.forfeited = 0
        self.sent = 0
        self._slots: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def _reserve(self) -> None:
        before = time.monotonic()
        wait = await self.state.take_tokens(self.number_id, self.run, self.rate)
        after = time.monotonic()
        if (after - before) / 2 > self.skew:
            # too slow a round trip to know where the slots are on this clock: give them up
            # (they pass unused, which only ever sends less)
            self.forfeited += self.run
            return
        start = (before + after) / 2 + wait
        self._slots.extend(start + k / self.rate for k in range(self.run))

    async def turn(self) -> None:
        """Return when the caller may send one message, now."""
        async with self._lock:
            while True:
                if not self._slots:
                    await self._reserve()
                    continue
                due = self._slots.popleft()
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = time.monotonic()
                if now > due + self.grace:
                    self.forfeited += 1
                    continue
                self.sent += 1
                return

    async def pause(self, seconds: float) -> None:
        """Meta said: too fast. Every replica waits ``seconds``; this one drops its slots."""
        self._slots.clear()
        await self.state.slow_down(self.number_id, seconds)

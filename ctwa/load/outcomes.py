"""Each message's outcome in a load run, merged from the workers into one index order: what
the store keeps so the round trip and ``ctwa trace`` can tell each message's story."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcomes:
    started_wall: float  # the earliest worker's start line, wall-clock seconds
    offsets: array  # ms from started_wall, per message index
    latencies: array  # us
    verdicts: bytearray  # ctwa.store.records.VERDICTS

    def __len__(self) -> int:
        return len(self.verdicts)

    def accepted_count(self) -> int:
        """Messages the endpoint accepted, in time or late."""
        from ctwa.load.run import V_ACCEPTED, V_TOO_SLOW

        return self.verdicts.count(V_ACCEPTED) + self.verdicts.count(V_TOO_SLOW)

    def accepted_at(self, msg_id: Any) -> dict[str, float]:
        """Each message the endpoint accepted (in time or late), by msgId: when it was
        written, wall-clock seconds."""
        from ctwa.load.run import V_ACCEPTED, V_TOO_SLOW

        return {msg_id(i): self.started_wall + self.offsets[i] / 1000
                for i, verdict in enumerate(self.verdicts) if verdict in (V_ACCEPTED, V_TOO_SLOW)}


def merge_outcomes(parts: list[Any], workers: int) -> Outcomes | None:
    """Worker w's local message j is message j * workers + w."""
    kept = [(w, part) for w, part in enumerate(parts) if part.verdicts]
    if not kept:
        return None
    start = min(part.started_wall for _, part in kept)
    size = max((len(part.verdicts) - 1) * workers + w + 1 for w, part in kept)
    offsets, latencies = array("I", bytes(4 * size)), array("I", bytes(4 * size))
    verdicts = bytearray(size)
    for w, part in kept:
        shift = int((part.started_wall - start) * 1000)
        local_offsets, local_latencies = array("I"), array("I")
        local_offsets.frombytes(part.offsets)
        local_latencies.frombytes(part.latencies)
        verdicts[w::workers] = part.verdicts + bytes(len(verdicts[w::workers]) -
                                                     len(part.verdicts))
        for j, offset in enumerate(local_offsets):
            offsets[j * workers + w] = offset + shift
        latencies[w::workers] = local_latencies + array(
            "I", bytes(4 * (len(latencies[w::workers]) - len(local_latencies))))
    return Outcomes(start, offsets, latencies, verdicts)

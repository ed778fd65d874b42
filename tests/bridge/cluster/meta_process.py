"""The sandbox's Meta in a process of its own, so that its clock (when it accepted each send)
is not skewed by the test process's own load (load generator, CleverTap, proxy share one GIL).

    python -m tests.bridge.cluster.meta_process '{"webhook_url": ..., ...}'

prints one JSON line (``urls``, ``credentials``) when serving, and serves until stdin closes.
Its counters are at ``urls["meta_stats"]``. With ``"accept_times": FILE`` among the options it
writes, when stdin closes, one ``TIME KEY`` line per accepted send: the ``time.monotonic()``
it was accepted at and its key (the msgId the bridge puts in ``biz_opaque_callback_data``).
The clock is the machine's, the same in every process, so the bridge's send trace
(``CTWA_BRIDGE_SEND_TRACE``) compares with it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings


def main() -> None:
    options = json.loads(sys.argv[1])
    accept_times = options.pop("accept_times", None)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    meta = MetaSettings(**options)
    with RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
        print(json.dumps({"urls": box.urls(), "credentials": box.credentials()}), flush=True)
        sys.stdin.read()
        if accept_times:
            records = sorted(box.meta.state.sent.values(), key=lambda r: r.at)
            Path(accept_times).write_text("".join(f"{r.at:.6f} {r.key}\n" for r in records),
                                          encoding="utf-8")


if __name__ == "__main__":
    main()

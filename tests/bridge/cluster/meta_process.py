"""The sandbox's Meta in a process of its own, so that its clock (when it accepted each send)
is not skewed by the test process's own load (load generator, CleverTap, proxy share one GIL).

    python -m tests.bridge.cluster.meta_process '{"webhook_url": ..., ...}'

prints one JSON line (``urls``, ``credentials``) when serving, and serves until stdin closes.
Its counters are at ``urls["meta_stats"]``."""

from __future__ import annotations

import json
import sys

from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings


def main() -> None:
    options = json.loads(sys.argv[1])
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    meta = MetaSettings(**options)
    with RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
        print(json.dumps({"urls": box.urls(), "credentials": box.credentials()}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()

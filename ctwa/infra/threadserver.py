"""An ASGI app served by uvicorn on a background thread, for a command that needs a server
only while it runs (a listener for the callbacks a send is waiting for)."""

from __future__ import annotations

import threading
import time
from typing import Any


class ThreadServer:
    """``with ThreadServer(app, host, port) as port:`` serves until the block ends."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        # asyncio's loop: uvloop in a non-main thread crashed at interpreter exit (the sandbox)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ctwa-server",
                                       daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

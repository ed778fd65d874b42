"""An ASGI app served by uvicorn on a background thread, for a command that needs a server
only while it runs (a listener for the callbacks a send is waiting for)."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal


class ThreadServer:
    """``with ThreadServer(app, host, port) as port:`` serves until the block ends."""

    def __init__(self, app: Any, host: str, port: int,
                 lifespan: Literal["on", "off"] = "off", **options: Any) -> None:
        import uvicorn

        # asyncio's loop, not uvloop: uvloop run in a non-main thread crashed the process at
        # exit about once in 25 Ctrl-Cs (SIGSEGV while the interpreter shut down)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan=lifespan, loop="asyncio",
                                **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ctwa-server",
                                       daemon=True)

    def __enter__(self) -> int:
        return self.start()[1]

    def start(self) -> tuple[str, int]:
        """Serve, and wait until the server listens; (host, port) it got."""
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return str(host), int(port)

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

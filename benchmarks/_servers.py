"""Start benchmark servers in their own processes, so they do not share the client's GIL."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ctwa.infra.ports import free_port

__all__ = ["free_port", "serve"]


@contextmanager
def serve(app_expression: str, imports: str) -> Iterator[str]:
    """Run ``uvicorn`` on ``app_expression`` in a subprocess; yield its base URL."""
    port = free_port()
    code = (f"{imports}\nimport uvicorn\n"
            f"uvicorn.run({app_expression}, host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("benchmark server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""`ctwa callback listen` already running in another terminal, for the round-trip tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings


@contextmanager
def listener_in_another_terminal(port: int, bsp: BspSettings) -> Iterator[RunningSandbox]:
    """A callback listener recording into the store on 127.0.0.1:``port``, and a sandbox
    whose mock BSP (``bsp``, its callback URLs on that port) does not record itself; the
    store's writer is closed after both stop."""
    from ctwa.callbacks.listener import Listener
    from ctwa.infra.threadserver import ThreadServer
    from ctwa.store.writer import BatchWriter

    writer = BatchWriter()
    try:
        with ThreadServer(Listener(store=writer).app(), "127.0.0.1", port), \
                RunningSandbox(SandboxSettings(port=0, bsp=bsp, store_callbacks=False)) as box:
            yield box
    finally:
        writer.close()

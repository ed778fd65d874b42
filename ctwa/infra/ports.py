"""Ports for ctwa's local servers (the listener, the sandbox)."""

from __future__ import annotations

import errno
import socket

from ctwa.infra.errors import InputError


def check_port_free(host: str, port: int) -> None:
    """Fail with a clear line before a server starts on a port it cannot have."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"{host}:{port} is already in use",
                                 hint="pick another with --port (0 takes a free one)") from exc
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}",
                             hint="check --host and --port") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server started next (tests, the demo)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

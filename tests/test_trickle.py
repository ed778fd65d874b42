"""--timeout bounds the whole exchange: a server that trickles its answer a byte every 0.3 s
(so no single read ever times out) cannot hold a send or an import past it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ctwa.infra.errors import ExitCode


class Trickler:
    """A TCP server on 127.0.0.1 that answers every request one byte at a time, slowly."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: yes\r\n" * 1000:
                    if self.stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(0.3)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def trickler():
    server = Trickler()
    yield server
    server.close()


def test_a_send_is_bounded_by_its_timeout(cli, trickler) -> None:
    started = time.monotonic()
    result = cli("send-template", "--sample", "text", "--to", "919000000001", "--waba",
                 "919000000002", "--endpoint", f"http://127.0.0.1:{trickler.port}/x",
                 "--timeout", "2s")
    assert time.monotonic() - started < 6
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "the exchange took over 2 s in all" in result.stderr


def test_an_import_is_bounded_by_its_timeout(cli, trickler, tmp_path) -> None:
    started = time.monotonic()
    result = cli("import-templates", "--url", f"http://127.0.0.1:{trickler.port}/t",
                 "--timeout", "2s", "--library", str(tmp_path))
    assert time.monotonic() - started < 20  # 2 s per attempt, 5 attempts at most
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "in all" in result.stderr

"""Every answer ctwa reads is capped (issue 25.8): a server on 127.0.0.1 that streams an
answer without end (or declares 3 GB) is refused in one line once the cap is passed, instead
of being held in memory (a 3 GB answer took send-template to 7.4 GB)."""

from __future__ import annotations

import csv
import socket
import threading
from pathlib import Path

import pytest

from ctwa.infra.errors import ExitCode

#: What the hostile server streams at most (far past every cap; without one, ctwa read it
#: all, then judged it).
STREAMED = 200 * 1024 * 1024
#: What may sit in the two kernels' socket buffers beyond what ctwa read.
BUFFERS = 16 * 1024 * 1024


class HostileServer:
    """HTTP/1.1 on a raw socket, so the bytes it manages to write are the bytes the client
    took: ``/endless`` answers chunked without end, ``/declared`` declares 3 GB and sends it.
    A write fails as soon as the client closes; ``written`` keeps the last answer's count."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.written = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()
        self.thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn:
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                line = head.split(b"\r\n", 1)[0].decode()
                self.written = 0
                block = b'{"status": "success", "pad": "' + b"x" * (1 << 20)
                if "/declared" in line:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (3 * 1024 ** 3))
                    frame = lambda b: b  # noqa: E731
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                    frame = lambda b: b"%x\r\n%s\r\n" % (len(b), b)  # noqa: E731
                while self.written < STREAMED:
                    conn.sendall(frame(block))
                    self.written += len(block)
            except OSError:  # the client closed: what it took is counted
                return


@pytest.fixture(scope="module")
def hostile():
    with HostileServer() as server:
        yield server


@pytest.mark.parametrize("path", ["endless", "declared"])
def test_send_template_refuses_an_answer_past_its_cap(cli, hostile, path) -> None:
    result = cli("send-template", "--sample", "text", "--to", "919876543210",
                 "--endpoint", f"{hostile.url}/{path}")
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "more than 64 KiB" in result.output and "Traceback" not in result.output
    assert hostile.written < 64 * 1024 + BUFFERS  # it stopped reading at the cap


def test_import_templates_refuses_a_page_past_its_cap(cli, hostile, tmp_path) -> None:
    result = cli("import-templates", "--url", f"{hostile.url}/endless", "--token", "t",
                 "--library", str(tmp_path / "lib"))
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "more than 32 MiB" in result.output and "Traceback" not in result.output
    assert hostile.written < 32 * 1024 * 1024 + BUFFERS


def test_upload_users_refuses_an_answer_past_its_cap(cli, hostile, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "Phone"])
        writer.writerow(["u1", "+14155550001"])
    result = cli("upload-users", str(path), "--base-url", f"{hostile.url}/endless",
                 "--account-id", "A", "--passcode", "pc-CANARY-55e0")
    assert result.exit_code != ExitCode.OK and result.exit_code != ExitCode.INTERNAL
    assert "more than 16 MiB" in path.with_name("users.rejects.csv").read_text()
    assert "Traceback" not in result.output
    assert hostile.written < 16 * 1024 * 1024 + BUFFERS

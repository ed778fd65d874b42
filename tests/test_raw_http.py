"""The load-mode HTTP client against real servers: keep-alive, chunked and closing answers,
timeouts, refused connections, TLS, and header injection."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ctwa.http.raw import HttpError, Pool, Target, request_head
from ctwa.infra.errors import InputError
from tests.conftest import LiveServer

SEEN: list[dict] = []


async def echo(request: Request) -> Response:
    body = await request.body()
    SEEN.append({"headers": dict(request.headers), "body": body})
    mode = request.path_params["mode"]
    if mode == "chunked":
        async def parts():
            yield b'{"status":'
            yield b'"success"}'
        return StreamingResponse(parts(), media_type="application/json")
    if mode == "close":
        return JSONResponse({"status": "success"}, headers={"Connection": "close"})
    if mode == "slow":
        await asyncio.sleep(1)
    return Response(b'{"status":"success"}', media_type="application/json")


@pytest.fixture(scope="module")
def server():
    app = Starlette(routes=[Route("/{mode}", echo, methods=["POST"])])
    with LiveServer(app) as live:
        yield live


def run(coroutine):
    return asyncio.run(coroutine)


async def post_many(url: str, bodies: list[bytes], size: int = 2, timeout: float = 5.0,
                    **kw) -> list:
    pool = Pool(url, {"Content-Type": "application/json", "X-Test": "1"}, size=size,
                timeout=timeout, **kw)
    try:
        return await asyncio.gather(*(pool.post(b) for b in bodies), return_exceptions=True)
    finally:
        pool.close()


def test_keep_alive_reuses_a_few_connections(server) -> None:
    SEEN.clear()
    answers = run(post_many(f"{server.url}/ok?x=1", [b'{"n":%d}' % i for i in range(50)]))
    assert answers == [(200, b'{"status":"success"}')] * 50
    assert sorted(s["body"] for s in SEEN) == sorted(b'{"n":%d}' % i for i in range(50))
    assert SEEN[0]["headers"]["x-test"] == "1" and SEEN[0]["headers"]["content-length"]


def test_chunked_and_closing_answers(server) -> None:
    assert run(post_many(f"{server.url}/chunked", [b"{}"] * 5)) == [
        (200, b'{"status":"success"}')] * 5
    closing = run(post_many(f"{server.url}/close", [b"{}"] * 6, size=1))
    assert all(answer[0] == 200 for answer in closing)


def test_timeout_and_refused() -> None:
    async def slow_then_fail(url: str):
        return await post_many(url, [b"{}"], timeout=0.2)

    with LiveServer(Starlette(routes=[Route("/{mode}", echo, methods=["POST"])])) as live:
        (answer,) = run(slow_then_fail(f"{live.url}/slow"))
    assert isinstance(answer, HttpError) and "no answer within 0.2 s" in str(answer)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (refused,) = run(post_many(f"http://127.0.0.1:{port}/", [b"{}"]))
    assert isinstance(refused, HttpError) and "could not connect" in str(refused)


def test_tls_verifies_certificates(tmp_path) -> None:
    trustme = pytest.importorskip("trustme")

    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    app = Starlette(routes=[Route("/{mode}", echo, methods=["POST"])])
    with LiveServer(app, ssl_keyfile=str(key_file), ssl_certfile=str(cert_file)) as live:
        url = live.url.replace("http://", "https://") + "/ok"
        (untrusted,) = run(post_many(url, [b"{}"]))
        assert isinstance(untrusted, HttpError) and "certificate" in str(untrusted).lower()
        context = ssl.create_default_context()
        authority.configure_trust(context)
        assert run(post_many(url, [b"{}"], ssl_context=context)) == [
            (200, b'{"status":"success"}')]


def test_targets_and_heads() -> None:
    assert Target.parse("https://bsp.example/api/ct?x=1") == Target(
        "bsp.example", 443, True, "/api/ct?x=1", "bsp.example")
    assert Target.parse("http://127.0.0.1:8080").host_header == "127.0.0.1:8080"
    with pytest.raises(InputError):
        Target.parse("ftp://x/")
    with pytest.raises(InputError, match="line break"):
        request_head(Target.parse("http://x/"), {"X-Evil": "a\r\nInjected: 1"})


class _RawServer:
    """A bare asyncio HTTP server on 127.0.0.1 in a thread, answering with ``answer`` bytes
    and closing the connection after each answer when ``close_after`` (without saying so)."""

    def __init__(self, answer: bytes, close_after: bool) -> None:
        import threading

        self.answer, self.close_after = answer, close_after
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    writer.write(self.answer)
                    await writer.drain()
                    if self.close_after:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = self.loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> _RawServer:
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _load(url: str, count: int = 300, concurrency: int = 10):
    from ctwa.load.engine import run_load
    from ctwa.load.plan import LoadPlan

    body = {"payloadVersion": 0.1, "to": "919000000001", "wabaNumber": "919000000002",
            "msgId": "x", "isTemplate": False, "type": "text", "text": {"body": "hi"}}
    return run_load(LoadPlan(url, {"Content-Type": "application/json"}, body,
                             ("919000000001",), count, None, None, concurrency, 1, 1.0, 5.0))


def test_a_server_that_closes_after_each_answer_is_not_blamed() -> None:
    ok = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n' \
         b'{"status":"success"}'
    with _RawServer(ok, close_after=True) as server:
        report = _load(f"http://127.0.0.1:{server.port}/")
    assert report.sent == 300 and report.accepted == 300, report.error_samples
    assert report.connection_errors == 0


def test_huge_answers_are_cut_and_counted() -> None:
    big = b"x" * (1 << 20)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    with _RawServer(answer, close_after=False) as server:
        report = _load(f"http://127.0.0.1:{server.port}/", count=40, concurrency=4)
    assert report.too_large == 40 and report.connection_errors == 0
    assert "answer(s) too large" in report.verdict.get("failures").reason


def test_a_concurrency_the_descriptor_limit_cannot_hold_is_refused() -> None:
    import os
    import resource
    import subprocess
    import sys

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    done = subprocess.run([sys.executable, "-m", "ctwa", "send-freeform", "--text", "hi",
                           "--waba", "919000000002", "--to", "919000000001", "--endpoint",
                           "http://127.0.0.1:9/x", "--count", "1000", "--concurrency", "500",
                           "--workers", "1"], capture_output=True, text=True,
                          preexec_fn=low_limit, env={**os.environ, "NO_COLOR": "1"},
                          timeout=60)
    assert done.returncode == 2
    assert "need more open files than this system allows (200)" in done.stderr

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

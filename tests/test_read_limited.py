"""ctwa.infra.asgi.read_limited: the one body reader of the bridge and the callback listener."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from ctwa.infra.asgi import BodyTooLarge, read_limited


def request(chunks: list[bytes], length: str | None = None) -> Request:
    headers = [] if length is None else [(b"content-length", length.encode())]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]

    async def receive() -> dict:
        return messages.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers},
                   receive)


def read(req: Request, limit: int) -> bytes:
    return asyncio.run(read_limited(req, limit))


def test_a_body_within_the_limit_is_read_whole() -> None:
    assert read(request([b"ab", b"cd"]), 4) == b"abcd"
    assert read(request([b"abcd"], "4"), 4) == b"abcd"


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(BodyTooLarge):
        read(request([], "5"), 4)
    with pytest.raises(BodyTooLarge):  # ten digits or more never fit, padded or not
        read(request([], "0000000001"), 1 << 20)
    with pytest.raises(BodyTooLarge):
        read(request([], "9" * 5000), 1 << 20)


def test_a_stream_past_the_limit_is_refused_as_it_passes() -> None:
    with pytest.raises(BodyTooLarge):
        read(request([b"abc", b"de"]), 4)

"""The one HTTP module: auth, user agent, retries, timing, error lines, masking in traces."""

from __future__ import annotations

import base64
import socket

import httpx
import pytest
import respx

from ctwa import __version__
from ctwa.http import (
    Auth,
    RetryPolicy,
    make_async_client,
    make_client,
    parse_header,
    send,
    send_async,
)
from ctwa.infra.errors import ExitCode, InputError, RemoteUnreachable

URL = "https://bsp.example/send"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02, total_time=5)


@pytest.fixture
def slept() -> list[float]:
    return []


def client(slept: list[float] | None = None, **kw) -> httpx.Client:
    sleeps = slept if slept is not None else []
    return make_client(sleep=sleeps.append, **kw)


@respx.mock
def test_basic_auth_and_user_agent() -> None:
    route = respx.post(URL).respond(200, json={"status": "success"})
    with client(auth=Auth("basic", "bob", "pw-CANARY-7f3a")) as c:
        send(c, "POST", URL, json={})
    request = route.calls.last.request
    expected = base64.b64encode(b"bob:pw-CANARY-7f3a").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["User-Agent"] == f"ctwa/{__version__}"


@respx.mock
@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (Auth("bearer", secret="tok-CANARY-91bd"), "Authorization", "Bearer tok-CANARY-91bd"),
        (Auth("header", secret="tok-CANARY-91bd", header_name="Token"), "Token",
         "tok-CANARY-91bd"),
    ],
)
def test_token_auth_kinds(auth: Auth, header: str, value: str) -> None:
    route = respx.post(URL).respond(200)
    with client(auth=auth) as c:
        send(c, "POST", URL)
    assert route.calls.last.request.headers[header] == value


def test_auth_needs_its_parts() -> None:
    with pytest.raises(InputError, match="username"):
        Auth("basic", secret="x")
    with pytest.raises(InputError, match="header name"):
        Auth("header", secret="x")


@respx.mock
def test_no_retry_unless_asked(slept) -> None:
    route = respx.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    with client(slept) as c:
        exchange = send(c, "POST", URL)
    assert exchange.response.status_code == 503 and route.call_count == 1 and slept == []


@respx.mock
def test_retries_429_then_succeeds(slept) -> None:
    route = respx.post(URL).mock(side_effect=[httpx.Response(429), httpx.Response(502),
                                              httpx.Response(200)])
    with client(slept, retry=FAST) as c:
        exchange = send(c, "POST", URL)
    assert exchange.response.status_code == 200
    assert route.call_count == 3 and exchange.attempts == 3 and len(slept) == 2


@respx.mock
def test_retry_after_is_honoured(slept) -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "2"}),
                                      httpx.Response(200)])
    with client(slept, retry=FAST) as c:
        send(c, "POST", URL)
    assert slept == [2.0]


@respx.mock
def test_retry_after_longer_than_the_time_budget_gives_up(slept) -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(503, headers={"Retry-After": "60"}),
                                      httpx.Response(200)])
    with client(slept, retry=FAST) as c:
        exchange = send(c, "POST", URL)
    assert exchange.response.status_code == 503 and slept == []


@respx.mock
def test_attempts_are_bounded(slept) -> None:
    route = respx.post(URL).respond(504)
    with client(slept, retry=FAST) as c:
        exchange = send(c, "POST", URL)
    assert exchange.response.status_code == 504 and route.call_count == 4 and len(slept) == 3


@respx.mock
def test_500_is_not_retried_by_default(slept) -> None:
    route = respx.post(URL).respond(500)
    with client(slept, retry=FAST) as c:
        send(c, "POST", URL)
    assert route.call_count == 1


@respx.mock
def test_connect_errors_are_retried_then_reported_with_attempts(slept) -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    with client(slept, retry=FAST) as c, pytest.raises(RemoteUnreachable) as info:
        send(c, "POST", URL)
    assert str(info.value) == (
        "could not connect to https://bsp.example/send: connection refused "
        "(gave up after 4 attempts)")
    assert info.value.exit_code == ExitCode.UNREACHABLE


@respx.mock
def test_read_timeout_on_post_is_not_repeated(slept) -> None:
    route = respx.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    with client(slept, retry=FAST, timeout=2) as c, pytest.raises(RemoteUnreachable) as info:
        send(c, "POST", URL)
    assert route.call_count == 1
    assert str(info.value) == "no answer from https://bsp.example/send: timed out after 2 s"


@respx.mock
def test_read_errors_are_retried_when_the_caller_says_it_is_safe(slept) -> None:
    route = respx.get(URL).mock(side_effect=[httpx.ReadTimeout("t"), httpx.Response(200)])
    policy = RetryPolicy(attempts=3, base_delay=0.01, retry_read_errors=True)
    with client(slept, retry=policy) as c:
        assert send(c, "GET", URL).response.status_code == 200
    assert route.call_count == 2


@respx.mock
@pytest.mark.parametrize(
    ("error", "line"),
    [
        (httpx.ConnectError("[Errno -2] Name or service not known"),
         "could not connect to https://bsp.example/send: cannot resolve host 'bsp.example' (DNS)"),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
         "could not connect to https://bsp.example/send: TLS failed: [SSL: "
         "CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        (httpx.ConnectTimeout("timed out"),
         "could not connect to https://bsp.example/send: timed out after 10 s"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."),
         "https://bsp.example/send broke the connection or sent a malformed HTTP answer: "
         "Server disconnected without sending a response."),
    ],
)
def test_errors_become_one_clear_line(error: Exception, line: str) -> None:
    respx.post(URL).mock(side_effect=error)
    with client() as c, pytest.raises(RemoteUnreachable) as info:
        send(c, "POST", URL)
    assert str(info.value) == line


def test_refused_connection_on_a_real_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/send"
    with client() as c, pytest.raises(RemoteUnreachable) as info:
        send(c, "POST", url)
    assert str(info.value) == f"could not connect to {url}: connection refused"


def test_bad_url_is_an_input_error() -> None:
    with client() as c, pytest.raises(InputError):
        send(c, "POST", "ftp://example.com/x")


@respx.mock
def test_password_in_url_is_masked_in_errors() -> None:
    url = "https://bob:pw-CANARY-7f3a@bsp.example/send"
    respx.post("https://bsp.example/send").mock(side_effect=httpx.ConnectTimeout("t"))
    with client() as c, pytest.raises(RemoteUnreachable) as info:
        send(c, "POST", url)
    assert "pw-CANARY-7f3a" not in str(info.value) and "bob:****@" in str(info.value)


@respx.mock
def test_verbose_trace_masks_every_secret() -> None:
    respx.post(URL).respond(401, json={"error": "bad token tok-CANARY-91bd"})
    lines: list[str] = []
    with client(auth=Auth("header", secret="tok-CANARY-91bd", header_name="Token"),
                trace=lines.append) as c:
        send(c, "POST", URL, json={"to": "91"})
    text = "\n".join(lines)
    assert "> POST https://bsp.example/send" in text and "< HTTP 401" in text
    assert "> Token: ****" in text and '{"to":"91"}' in text.replace(" ", "")
    assert "tok-CANARY-91bd" not in text


@respx.mock
async def _async_roundtrip() -> int:
    respx.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    async with make_async_client(retry=FAST) as c:
        exchange = await send_async(c, "POST", URL)
    return exchange.attempts


def test_async_client_retries_too() -> None:
    import asyncio

    assert asyncio.run(_async_roundtrip()) == 2


def test_latency_is_measured() -> None:
    with respx.mock:
        respx.post(URL).respond(200)
        with client() as c:
            exchange = send(c, "POST", URL)
    assert 0 <= exchange.elapsed < 5


@pytest.mark.parametrize("text", ["Token abc", "", ": x", "Bad Name: x"])
def test_bad_header_options(text: str) -> None:
    with pytest.raises(InputError, match="Name: value"):
        parse_header(text)


def test_header_option() -> None:
    assert parse_header("Token:  abc: def ") == ("Token", "abc: def")

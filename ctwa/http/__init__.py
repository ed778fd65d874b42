"""The one HTTP module: every request ctwa makes is built here (retries in ``retry``, the
load-mode client in ``raw``).

It owns what must be the same everywhere: timeouts, Basic / bearer / custom-header auth, the
``User-Agent``, connection limits sized for campaign-like concurrency, latency measurement,
an opt-in retry policy, one-line error messages, and secret masking in verbose traces. Callers
ask for a client and send; they never construct ``httpx`` objects themselves.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ctwa import __version__
from ctwa.http.origin import CredentialBinding, origin_of, same_origin
from ctwa.http.retry import AsyncRetryTransport, RetryPolicy, RetryTransport
from ctwa.infra.deadline import Late, call_within
from ctwa.infra.errors import InputError, RemoteUnreachable
from ctwa.infra.masking import (
    redact_header_value,
    redact_url,
    register_basic_auth,
    register_header,
    register_secret,
    register_secret_header,
    register_url,
)
from ctwa.infra.safetext import safe_text

__all__ = ["MAX_ANSWER", "MAX_BSP_ANSWER", "MAX_UPLOAD_ANSWER", "MAX_VENDOR_ANSWER",
           "AnswerTooLarge", "Auth", "CredentialBinding", "Exchange", "RetryPolicy", "load_headers",
           "make_async_client", "make_client", "origin_of", "parse_header", "run_on_fast_loop",
           "same_origin", "send", "send_async", "translate_error"]

USER_AGENT = f"ctwa/{__version__}"

#: The most ctwa reads of one answer, by kind (README, "Bounded work on hostile input"): a
#: BSP's answer is a small JSON document (load mode reads the same 64 KiB, ``raw.MAX_ANSWER``);
#: a vendor's template page holds up to a few hundred templates; CleverTap's upload answer may
#: echo every refused record of a 1000-record batch; anything else (a callback URL's answer,
#: a listener's stats) is small. Past its cap an answer is refused in one line, never read.
MAX_BSP_ANSWER = 64 * 1024
MAX_VENDOR_ANSWER = 32 * 1024 * 1024
MAX_UPLOAD_ANSWER = 16 * 1024 * 1024
MAX_ANSWER = 1024 * 1024
#: Campaigns hit an endpoint 1500 at a time; leave headroom above that.
MAX_CONNECTIONS = 1600
DEFAULT_TIMEOUT = 10.0

AuthKind = Literal["basic", "bearer", "header", "none"]
Trace = Callable[[str], None]


@dataclass(frozen=True)
class Auth:
    """How to authenticate one service; ``secret`` is the password, token or header value."""

    kind: AuthKind = "none"
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    header_name: str | None = None

    def __post_init__(self) -> None:
        if self.secret and any(c in self.secret for c in "\r\n\0"):  # never shown
            raise InputError("the secret holds a line break (a pasted line ending?)",
                             hint="set it again without it")
        if self.kind == "basic":
            if not self.username:
                raise InputError("basic auth needs a username", hint="pass --username")
            register_basic_auth(self.username, self.secret or "")
        elif self.kind == "header":
            if not self.header_name:
                raise InputError(
                    "header auth needs a header name", hint="pass --header-name, e.g. Token"
                )
            register_secret_header(self.header_name)
        register_secret(self.secret)

    def apply(self, headers: dict[str, str]) -> dict[str, str]:
        """Return ``headers`` with this auth's header added."""
        if self.kind == "none" or not self.secret:
            return headers
        out = dict(headers)
        if self.kind == "basic":
            pair = f"{self.username}:{self.secret}".encode()
            out["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif self.kind == "bearer":
            out["Authorization"] = f"Bearer {self.secret}"
        else:
            out[self.header_name or "Authorization"] = self.secret
        return out


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` from the command line into a pair, or a clear error."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise InputError(f"bad header {name.strip()[:40]!r}...", hint="write it as 'Name: value'")
    if any(c in value for c in "\r\n\0"):  # the value is never shown: it may be a secret
        raise InputError(f"the value of header {name.strip()!r} holds a line break",
                         hint="check it for a pasted line ending")
    return name.strip(), value.strip()


# --- clients ---------------------------------------------------------------------------------


def _body_preview(content: bytes, limit: int = 2000) -> str:
    text = content[:limit * 4].decode("utf-8", errors="replace")
    if len(text) > limit:
        text = text[:limit] + f"... ({len(content)} bytes)"
    return safe_text(text)


def _header_lines(headers: httpx.Headers) -> list[str]:
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]
    return [safe_text(f"{name}: {redact_header_value(name, value)}", keep_lines=False)
            for name, value in pairs]



def describe_request(request: httpx.Request) -> str:
    """A masked, multi-line picture of a request for ``--verbose``."""
    lines = [f"> {request.method} {redact_url(str(request.url))}"]
    lines += [f"> {line}" for line in _header_lines(request.headers)]
    try:
        content = request.content
    except httpx.RequestNotRead:  # a redirect's request streams its (empty) body
        content = b""
    if content:
        lines.append(_body_preview(content))
    return "\n".join(lines)


def describe_response(response: httpx.Response) -> str:
    """A masked, multi-line picture of a response for ``--verbose``."""
    lines = [f"< HTTP {response.status_code} "
             f"{safe_text(response.reason_phrase, keep_lines=False, limit=200)}"]
    lines += [f"< {line}" for line in _header_lines(response.headers)]
    if response.content:
        lines.append(_body_preview(response.content))
    return "\n".join(lines)


def _hooks(binding: CredentialBinding, trace: Trace | None) -> dict[str, list[Callable[..., Any]]]:
    """Request hooks run on every hop (redirects included): credentials first, then the trace."""

    def on_request(request: httpx.Request) -> None:
        binding.apply(request)
        if trace is not None:
            trace(describe_request(request))

    def on_response(response: httpx.Response) -> None:
        _read_capped(response, response.request.extensions.get("ctwa_max_answer",
                                                                MAX_ANSWER))
        if trace is not None:
            trace(describe_response(response))

    hooks: dict[str, list[Callable[..., Any]]] = {"request": [on_request]}
    if trace is not None:
        hooks["response"] = [on_response]
    return hooks


def _async_hooks(binding: CredentialBinding,
                 trace: Trace | None) -> dict[str, list[Callable[..., Any]]]:
    async def on_request(request: httpx.Request) -> None:
        binding.apply(request)
        if trace is not None:
            trace(describe_request(request))

    async def on_response(response: httpx.Response) -> None:
        await _aread_capped(response, response.request.extensions.get("ctwa_max_answer",
                                                                       MAX_ANSWER))
        if trace is not None:
            trace(describe_response(response))

    hooks: dict[str, list[Callable[..., Any]]] = {"request": [on_request]}
    if trace is not None:
        hooks["response"] = [on_response]
    return hooks


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )


def _headers(auth: Auth | None, headers: Iterable[tuple[str, str]] | None) -> dict[str, str]:
    base = {"User-Agent": USER_AGENT}
    for name, value in headers or ():
        base[name] = value
    return (auth or Auth()).apply(base)


def credentials(auth: Auth | None, headers: Iterable[tuple[str, str]] | None,
                origin: str | None = None) -> CredentialBinding:
    """The auth header and every header the user gave for a service, bound to its origin.

    Extra headers count as credentials: a user who adds ``--header 'X-Api-Key: ...'`` gave it
    for that service, and ctwa cannot tell which of them are secret.
    """
    for name, value in headers or ():
        register_header(name, value)
    register_url(origin)
    given = (auth or Auth()).apply(dict(headers or ()))
    return CredentialBinding(given, origin_of(origin) if origin else None)


def exchange_limit(timeout: float, retry: RetryPolicy | None) -> float:
    """--timeout bounds a whole exchange: each attempt at most ``timeout``, all of them (and
    their backoff) at most the retry policy's own budget on top of one."""
    if retry is None:
        return timeout
    return min(timeout * retry.attempts, timeout + retry.total_time)


def make_client(
    *,
    auth: Auth | None = None,
    headers: Iterable[tuple[str, str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    trace: Trace | None = None,
    follow_redirects: bool = False,
    max_connections: int = 100,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    origin: str | None = None,
) -> httpx.Client:
    """A configured sync client. ``retry`` is off unless the caller knows a repeat is safe.

    ``auth`` and ``headers`` go only to ``origin`` (default: the first request's origin).
    """
    inner = transport or httpx.HTTPTransport(limits=_limits(max_connections))
    if retry is not None:
        inner = RetryTransport(inner, retry, sleep=sleep)
    client = httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeout),
        transport=inner,
        follow_redirects=follow_redirects,
        event_hooks=_hooks(credentials(auth, headers, origin), trace),
    )
    client.ctwa_exchange_limit = exchange_limit(timeout, retry)  # type: ignore[attr-defined]
    client.ctwa_abandoned = threading.Event()  # type: ignore[attr-defined]
    return client


def abandon(client: httpx.Client) -> None:
    """Stop waiting for this client's exchanges in flight (Ctrl-C): each fails at once with
    RemoteUnreachable in the thread that sent it, so that thread ends (and the process can)
    even against a server that accepted and never answers."""
    event = getattr(client, "ctwa_abandoned", None)
    if event is not None:
        event.set()


def make_async_client(
    *,
    auth: Auth | None = None,
    headers: Iterable[tuple[str, str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    trace: Trace | None = None,
    follow_redirects: bool = False,
    max_connections: int = MAX_CONNECTIONS,
    transport: httpx.AsyncBaseTransport | None = None,
    origin: str | None = None,
) -> httpx.AsyncClient:
    """A configured async client, sized for campaign-like concurrency by default; credentials
    bound to ``origin`` as in :func:`make_client`."""
    inner = transport or httpx.AsyncHTTPTransport(limits=_limits(max_connections))
    if retry is not None:
        inner = AsyncRetryTransport(inner, retry)
    client = httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeout),
        transport=inner,
        follow_redirects=follow_redirects,
        event_hooks=_async_hooks(credentials(auth, headers, origin), trace),
    )
    client.ctwa_exchange_limit = exchange_limit(timeout, retry)  # type: ignore[attr-defined]
    return client


# --- sending and timing ----------------------------------------------------------------------


@dataclass
class Exchange:
    """One request and its answer, with the wall time it took and how many attempts."""

    request: httpx.Request
    response: httpx.Response
    elapsed: float
    attempts: int = 1


def _exchange(response: httpx.Response, started: float) -> Exchange:
    attempts = int(response.request.extensions.get("ctwa_attempts", 1))
    return Exchange(response.request, response, time.perf_counter() - started, attempts)


def _whole_exchange_limit(client: httpx.Client | httpx.AsyncClient) -> float | None:
    """How long one exchange may take in all: httpx's timeouts bound each read, so a server
    trickling a byte every half second would hold ctwa for minutes."""
    return getattr(client, "ctwa_exchange_limit", None)


def _too_slow(url: str, limit: float) -> RemoteUnreachable:
    return RemoteUnreachable(f"no answer from {redact_url(url)}: the exchange took over "
                             f"{limit:g} s in all (the server answers too slowly)")


class AnswerTooLarge(RemoteUnreachable):
    """The answer is larger than ctwa reads of its kind: no usable answer."""


def _too_large(response: httpx.Response, cap: int) -> AnswerTooLarge:
    size = f"{cap // (1024 * 1024)} MiB" if cap >= 1024 * 1024 else f"{cap // 1024} KiB"
    return AnswerTooLarge(f"{redact_url(str(response.request.url))} answered HTTP "
                          f"{response.status_code} with more than {size}, more than ctwa "
                          "reads of such an answer; it was not read",
                          hint="check that the URL is the right endpoint")


def _declared_over(response: httpx.Response, cap: int) -> bool:
    declared = response.headers.get("content-length", "").strip()
    return declared.isdecimal() and len(declared) < 20 and int(declared) > cap


def _read_capped(response: httpx.Response, cap: int) -> None:
    """Read a streamed answer's body, at most ``cap`` bytes once decoded (a gzip bomb counts
    as what it inflates to), or refuse it: httpx's ``read()`` would hold the whole of a 3 GB
    answer in memory."""
    if hasattr(response, "_content"):
        return
    if _declared_over(response, cap):
        response.close()
        raise _too_large(response, cap)
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            response.close()
            raise _too_large(response, cap)
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what httpx's own read() sets
    response.close()


async def _aread_capped(response: httpx.Response, cap: int) -> None:
    if hasattr(response, "_content"):
        return
    if _declared_over(response, cap):
        await response.aclose()
        raise _too_large(response, cap)
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            await response.aclose()
            raise _too_large(response, cap)
        chunks.append(chunk)
    response._content = b"".join(chunks)
    await response.aclose()


def _capped_request(client: httpx.Client, method: str, url: str, cap: int,
                    kwargs: dict[str, Any]) -> httpx.Response:
    options = {k: kwargs.pop(k) for k in ("auth", "follow_redirects") if k in kwargs}
    request = client.build_request(method, url, **kwargs)
    request.extensions["ctwa_max_answer"] = cap
    response = client.send(request, stream=True, **options)
    try:
        _read_capped(response, cap)
    finally:
        response.close()
    return response


def send(client: httpx.Client, method: str, url: str, *, max_answer: int = MAX_ANSWER,
         **kwargs: Any) -> Exchange:
    """Send one request, timing it; transport failures become :class:`RemoteUnreachable`,
    an answer over ``max_answer`` bytes :class:`AnswerTooLarge` (nothing past the cap is read).

    The whole exchange (retries included) is bounded: past the client's limit the client is
    closed under the request, which then fails at once, and the error says so."""
    register_url(url)
    started = time.perf_counter()
    limit = _whole_exchange_limit(client)
    if limit is None:
        try:
            response = _capped_request(client, method, url, max_answer, kwargs)
        except httpx.HTTPError as exc:
            raise translate_error(exc, url, client.timeout.read) from exc
        return _exchange(response, started)
    abandoned: threading.Event | None = getattr(client, "ctwa_abandoned", None)
    if abandoned is not None and abandoned.is_set():
        raise RemoteUnreachable(f"not sent to {redact_url(url)}: the run was stopped")
    try:
        response = call_within(lambda: _capped_request(client, method, url, max_answer,
                                                       kwargs), limit, name="ctwa-exchange",
                               cancel=abandoned)
    except Late as late:
        if abandoned is not None and abandoned.is_set():
            raise RemoteUnreachable(f"no answer from {redact_url(url)} before the run was "
                                    "stopped") from None
        client.close()  # the blocked read fails now; this client is done for
        late.worker.join(5)
        raise _too_slow(url, limit) from None
    except httpx.HTTPError as exc:
        raise translate_error(exc, url, client.timeout.read) from exc
    return _exchange(response, started)


async def _capped_request_async(client: httpx.AsyncClient, method: str, url: str, cap: int,
                                kwargs: dict[str, Any]) -> httpx.Response:
    options = {k: kwargs.pop(k) for k in ("auth", "follow_redirects") if k in kwargs}
    request = client.build_request(method, url, **kwargs)
    request.extensions["ctwa_max_answer"] = cap
    response = await client.send(request, stream=True, **options)
    try:
        await _aread_capped(response, cap)
    finally:
        await response.aclose()
    return response


async def send_async(client: httpx.AsyncClient, method: str, url: str, *,
                     max_answer: int = MAX_ANSWER, **kwargs: Any) -> Exchange:
    """The async twin of :func:`send`."""
    register_url(url)
    started = time.perf_counter()
    limit = _whole_exchange_limit(client)
    try:
        response = await asyncio.wait_for(
            _capped_request_async(client, method, url, max_answer, kwargs), limit)
    except asyncio.TimeoutError:
        raise _too_slow(url, limit or 0.0) from None
    except httpx.HTTPError as exc:
        raise translate_error(exc, url, client.timeout.read) from exc
    return _exchange(response, started)


def _attempts_of(exc: Exception) -> int:
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is set
        return 1
    return int(request.extensions.get("ctwa_attempts", 1))


_DNS_MARKERS = ("name or service not known", "nodename nor servname", "getaddrinfo",
                "temporary failure in name resolution", "no address associated", "name resolution")


def translate_error(exc: Exception, url: str, timeout: float | None = None) -> Exception:
    """One clear line for an httpx failure, naming the URL (password masked) and the cause."""
    where = redact_url(url)
    attempts = ""
    tries = _attempts_of(exc)
    if tries > 1:
        attempts = f" (gave up after {tries} attempts)"
    detail = safe_text(str(exc), keep_lines=False, limit=500) or type(exc).__name__
    lowered = detail.lower()
    after = f" after {timeout:g} s" if timeout else ""
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return InputError(f"{where!r} is not a URL ctwa can send to",
                          hint="give an http:// or https:// URL, e.g. https://bsp.example/wa")
    if isinstance(exc, httpx.ConnectTimeout):
        message = f"could not connect to {where}: timed out{after}"
    elif isinstance(exc, httpx.TimeoutException):
        message = f"no answer from {where}: timed out{after}"
    elif isinstance(exc, httpx.ConnectError):
        if any(marker in lowered for marker in _DNS_MARKERS):
            host = httpx.URL(url).host if url else "the host"
            message = f"could not connect to {where}: cannot resolve host {host!r} (DNS)"
        elif "refused" in lowered:
            message = f"could not connect to {where}: connection refused"
        elif "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            message = f"could not connect to {where}: TLS failed: {detail}"
        else:
            message = f"could not connect to {where}: {detail}"
    elif isinstance(exc, httpx.RemoteProtocolError):
        message = f"{where} broke the connection or sent a malformed HTTP answer: {detail}"
    elif isinstance(exc, httpx.TooManyRedirects):
        message = f"{where}: too many redirects"
    else:
        message = f"request to {where} failed: {detail}"
    return RemoteUnreachable(message + attempts)


# --- load mode -------------------------------------------------------------------------------
#
# httpx's pool scans every connection per request, which caps a 1500-connection client near
# 40 requests/s on this machine (shared/BENCHMARKS.md). Load mode and the sandbox's callback
# bursts therefore use the keep-alive client in ctwa.http.raw, with the same headers, auth and
# user agent as every other ctwa request.


def load_headers(auth: Auth | None, headers: Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """The headers every load-mode request carries (auth, user agent, extra headers)."""
    for name, value in headers or ():
        register_header(name, value)
    return {**_headers(auth, headers), "Content-Type": "application/json"}


def run_on_fast_loop(coroutine: Any) -> tuple[Any, str]:
    """Run a coroutine on uvloop when it is installed (Linux, macOS), else asyncio's loop;
    return its result and the loop's name."""
    import sys

    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine), "uvloop"
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coroutine), "uvloop"
    finally:
        loop.close()

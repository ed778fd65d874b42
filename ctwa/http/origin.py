"""Credentials are bound to the origin (scheme, host, port) they were given for.

A vendor's page may point ``paging.next`` at Meta's own host, and a server may redirect to
another one; neither may receive the token, password, passcode or custom header meant for the
first. httpx strips ``Authorization`` on a cross-origin redirect but keeps every other header,
so the rule is enforced here, on every request hop, for every kind of credential: each request
gets the credential headers when it goes to the bound origin, and loses them otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

__all__ = ["CredentialBinding", "Origin", "origin_of", "same_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str | httpx.URL) -> Origin:
    """``(scheme, host, port)`` with the default port filled in, so ``:443`` equals nothing."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    scheme = parsed.scheme.lower()
    port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
    return scheme, parsed.host.lower(), port


def same_origin(a: str | httpx.URL, b: str | httpx.URL) -> bool:
    return origin_of(a) == origin_of(b)


@dataclass
class CredentialBinding:
    """The credential headers of one service and the origin they belong to.

    ``origin`` may be left unset: it is then bound to the first request's origin, which is the
    URL the caller was given for the service (every caller sends there first).
    """

    headers: Mapping[str, str]
    origin: Origin | None = None
    _names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._names = frozenset(name.lower() for name in self.headers)

    def apply(self, request: httpx.Request) -> None:
        """Add the credentials to a request for the bound origin; strip them from any other."""
        if not self.headers:
            return
        target = origin_of(request.url)
        if self.origin is None:
            self.origin = target
        if target == self.origin:
            for name, value in self.headers.items():
                request.headers[name] = value
            return
        for name in list(request.headers.keys()):
            if name.lower() in self._names or name.lower() == "authorization":
                del request.headers[name]

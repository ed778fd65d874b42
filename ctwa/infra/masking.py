"""Keep secrets out of everything ctwa prints.

Two layers: structural redaction of the places secrets live (auth headers, passwords in URLs),
and a registry of every secret value ctwa has resolved in this process, scrubbed from any text
before it is shown (error messages, verbose logs, JSON output). The second layer catches what
the first cannot know about, such as a server echoing a token back in an error body.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

MASK = "****"

#: Headers whose values are secrets whatever the request.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-clevertap-passcode", "token", "x-api-key",
     "api-key", "cookie", "set-cookie"}
)

_MIN_SECRET_LEN = 3  # masking one- or two-character strings would shred ordinary text
#: Credentials ctwa publishes itself, never registered: the sandbox's mock BSP password
#: (``ctwa``/``sandbox``, printed in `ctwa sandbox`'s banner and README's sandbox table;
#: ctwa.sandbox.bsp.BspSettings). It guards nothing, and it is an ordinary word besides: the
#: profile name the sandbox's own `profile add` line gives, the command's name, a word in
#: ctwa's messages; masking it printed "profile ****". A length rule would not do instead:
#: real passwords of seven letters exist, and "sandbox" is unsafe because it is public, not
#: because it is short. The sandbox's other defaults (sandbox-passcode, sandbox-vendor-token,
#: sandbox-meta-token...) are long, unique strings no ordinary text holds, so masking them
#: costs nothing and they stay masked. A real BSP password "sandbox" goes unmasked: it is in
#: ctwa's README, so no secret either.
PUBLIC_CREDENTIALS = frozenset({"sandbox"})
_lock = threading.Lock()
_secrets: set[str] = set()
#: One pattern for every registered value, longest first; rebuilt after a registration.
_pattern: re.Pattern[str] | None = None
_pattern_stale = False
_extra_headers: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`scrub` removes it from any later text, in the
    forms it takes on the way: as is, JSON-escaped, and percent-encoded (in URLs, forms)."""
    if not value or len(value) < _MIN_SECRET_LEN or value in PUBLIC_CREDENTIALS:
        return
    import json
    from urllib.parse import quote, quote_plus

    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             quote(value, safe=""), quote_plus(value)}
    global _pattern_stale
    with _lock:
        new = {f for f in forms if len(f) >= _MIN_SECRET_LEN} - _secrets
        if new:
            _secrets.update(new)
            _pattern_stale = True


def register_basic_auth(username: str, password: str) -> None:
    """Register a password and the Basic credential built from it (it shows up base64-encoded)."""
    if password in PUBLIC_CREDENTIALS:
        return  # and so is its Basic credential (the Authorization header is masked anyway)
    register_secret(password)
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    register_secret(token)


def register_url(url: str | None) -> None:
    """Register the credentials a URL carries: the password of ``scheme://user:pw@host`` (as
    written and percent-decoded), the Basic credential built from it (httpx sends the userinfo
    as ``Authorization: Basic base64(user:pw)``), and the values of secret query parameters
    (``access_token=``, ``sig=``...), so that they are masked wherever they show up later."""
    if not url or ("@" not in url and "=" not in url):
        return
    from urllib.parse import parse_qsl, unquote

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL (a bad port...): the caller says so
        return
    if password is not None:
        username = parts.username or ""
        register_secret(password)
        register_basic_auth(unquote(username), unquote(password))
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name.lower() in _SECRET_QUERY_NAMES:
            register_secret(value)


#: Headers that carry no secret: their values stay readable. CleverTap's account id names the
#: account (it is in every dashboard URL and in the commands ctwa prints to resume an upload);
#: its passcode is the secret, registered apart.
PLAIN_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "cache-control", "connection",
     "content-language", "content-type", "user-agent", "x-request-id", "x-correlation-id",
     "x-clevertap-account-id"})


def register_header(name: str, value: str) -> None:
    """A header the user gave (``--header 'Name: value'``): ctwa cannot tell which are secret,
    so each value is registered, but for the few well-known headers that never carry one."""
    if name.lower() in PLAIN_HEADERS:
        return
    register_secret_header(name)
    register_secret(value)
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() in {"bearer", "basic", "token", "digest"}:
        register_secret(rest.strip())


def register_secret_header(name: str) -> None:
    """Treat a custom auth header (e.g. a BSP's ``Token``) as secret in every redaction."""
    with _lock:
        _extra_headers.add(name.lower())


def forget_all() -> None:
    """Clear the registry; tests use it to keep cases independent."""
    global _pattern, _pattern_stale
    with _lock:
        _secrets.clear()
        _pattern, _pattern_stale = None, False
        _extra_headers.clear()


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or lowered in _extra_headers


def scrub(text: str) -> str:
    """Replace every registered secret value in ``text`` with the mask, then passwords in
    URLs and secret query values. Works on one value (a message, a URL, a field), so it is
    run on each string of a document rather than on its serialised text."""
    pattern = _secret_pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "@" in text:
        text = _URL_PASSWORD.sub(r"\1" + MASK + "@", text)
    if "=" in text:
        text = _SECRET_QUERY.sub(r"\1" + MASK, text)
    return text


def needs_scrub(text: str) -> bool:
    """Whether :func:`scrub` would change anything in ``text`` (a fast test for a whole
    serialised document: when nothing in it is a secret, its values need no masking)."""
    pattern = _secret_pattern()
    return bool((pattern is not None and pattern.search(text))
                or ("@" in text and _URL_PASSWORD.search(text))
                or ("=" in text and _SECRET_QUERY.search(text)))


def _secret_pattern() -> re.Pattern[str] | None:
    """The registered values as one alternation, longest first (so a secret that holds
    another is masked whole), compiled once per change of the registry."""
    global _pattern, _pattern_stale
    if not _pattern_stale:
        return _pattern
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(map(re.escape, values))) if values else None
        _pattern_stale = False
        return _pattern


_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"\\]*:)[^/\s@\"\\]+@")
#: Query parameters that carry credentials in real URLs: Meta's paging links carry the
#: ``access_token``, signed links a ``signature``/``sig``, some APIs an ``api_key``.
_SECRET_QUERY_NAMES = ("access_token", "token", "api_key", "apikey", "key", "passcode",
                       "password", "secret", "sig", "signature", "client_secret")
#: Works on values (a URL, a message), never on serialised JSON: the value stops at a
#: backslash too, so even a JSON text it is run on keeps its escapes (issue 28).
_SECRET_QUERY = re.compile(
    r"([?&](?:" + "|".join(_SECRET_QUERY_NAMES) + r")=)[^&#\s\"'()\\<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Drop the password from ``scheme://user:password@host`` forms."""
    parts = urlsplit(url)
    if parts.password is None:
        return scrub(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:{MASK}@{host}"
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def redact_header_value(name: str, value: str) -> str:
    """A header's value fit to print: secret ones masked, the scheme word of Authorization kept."""
    if is_secret_header(name):
        scheme, _, rest = value.partition(" ")
        return f"{scheme} {MASK}" if rest and name.lower() == "authorization" else MASK
    return scrub(value)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a plain dict with secret values masked."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name: redact_header_value(name, value) for name, value in items}


def mask_value(value: str | None) -> str:
    """How a secret is shown when its presence matters but its value must not leak."""
    return "(not set)" if not value else MASK

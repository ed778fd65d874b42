"""Media URLs as real templates carry them: Meta's signed CDN links expire, and Meta's upload
handles (``4::...``) are not URLs at all. Both look fine to a schema and fail in delivery."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit


def is_http_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def looks_like_upload_handle(value: str) -> bool:
    """Meta's resumable-upload handle (``4::aW1hZ2UvanBlZw==:ARb...``), as the creation API and
    some vendors return in ``header_handle``: meaningless outside Meta's own API."""
    return value.strip().startswith(("4::", "2::", "1::")) or (
        "::" in value and not is_http_url(value))


def signed_url_expiry(url: str) -> datetime | None:
    """When a signed Meta CDN link stops working: its ``oe`` query parameter, hex epoch
    seconds (``oe=6630F1B2``). None when the URL carries no such signature."""
    try:
        query = dict(parse_qsl(urlsplit(url).query))
    except ValueError:
        return None
    raw = query.get("oe")
    if not raw or len(raw) > 12:
        return None
    try:
        seconds = int(raw, 16)
    except ValueError:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def expired_note(url: str, now: float | None = None) -> str | None:
    """A warning when a signed link's expiry has passed, naming the date; else None."""
    expiry = signed_url_expiry(url)
    if expiry is None or expiry.timestamp() > (time.time() if now is None else now):
        return None
    return (f"the signed link expired on {expiry:%Y-%m-%d %H:%M} UTC (its oe= parameter): "
            "WhatsApp cannot fetch it")

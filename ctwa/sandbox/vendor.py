"""A mock vendor template endpoint: Meta-format templates with cursor paging, as the spec shows.

``GET /templates?limit=N[&after=CURSOR]`` answers ``{"data": [...], "paging": {"cursors":
{"before", "after"}, "next"}}``; ``next`` is present while more pages exist.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_LIMIT = 500


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "offset" and number.isdecimal() else None


def vendor_app(templates: Sequence[dict[str, Any]], token: str | None = None,
               path: str = "/templates") -> Starlette:
    """Serve ``templates``; with ``token``, require ``Authorization: Bearer <token>``."""

    async def page(request: Request) -> JSONResponse:
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": {"message": "invalid token"}}, status_code=401)
        try:
            limit = min(max(int(request.query_params.get("limit", "50")), 1), MAX_LIMIT)
        except ValueError:
            return JSONResponse({"error": {"message": "limit must be a number"}},
                                status_code=400)
        after = request.query_params.get("after")
        start = 0 if after is None else _offset(after)
        if start is None:
            return JSONResponse({"error": {"message": "bad cursor"}}, status_code=400)
        chunk = list(templates[start:start + limit])
        end = start + len(chunk)
        paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
        if end < len(templates):
            paging["next"] = str(request.url.include_query_params(limit=limit,
                                                                  after=_cursor(end)))
        return JSONResponse({"data": chunk, "paging": paging})

    return Starlette(routes=[Route(path, page, methods=["GET"])])


def generated_templates(count: int, language: str = "en") -> list[dict[str, Any]]:
    """Varied but valid Meta templates, for tests and benchmarks."""
    out = []
    for i in range(count):
        components: list[dict[str, Any]] = [
            {"type": "BODY", "text": f"Hi {{{{1}}}}, order {i} ships {{{{2}}}}.",
             "example": {"body_text": [["Ann", "today"]]}}]
        if i % 3 == 0:
            components.insert(0, {"type": "HEADER", "format": "IMAGE",
                                  "example": {"header_handle": [f"https://cdn.example/{i}.png"]}})
        if i % 2 == 0:
            components.append({"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Track", "url": "https://t.example/{{1}}",
                 "example": [f"https://t.example/{i}"]},
                {"type": "QUICK_REPLY", "text": "Stop"}]})
        out.append({"name": f"template_{i:05d}", "language": language, "status": "APPROVED",
                    "category": "UTILITY", "id": str(10_000_000 + i),
                    "parameter_format": "POSITIONAL", "components": components})
    return out

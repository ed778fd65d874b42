"""Credentials stay with the origin they were given for: paging.next on another host (Meta's
Graph API links passed through by a vendor), and redirects to another host, for every auth kind.
Two real servers on 127.0.0.1, on different ports: the second must never see a credential."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ctwa.http import Auth, make_client, origin_of, same_origin, send
from tests.conftest import CANARIES, LiveServer

TOKEN = CANARIES[3]
CREDENTIAL_HEADERS = ("authorization", "token", "x-api-key", "x-clevertap-passcode")


def meta_template(name: str) -> dict[str, Any]:
    return {"name": name, "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "id": "1234567890", "parameter_format": "POSITIONAL",
            "components": [{"type": "BODY", "text": f"{name}: hello {{{{1}}}}",
                            "example": {"body_text": [["Asha"]]}}]}


class Recorder:
    """An app that keeps the headers of every request it gets."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def credentials(self) -> list[str]:
        return [f"{k}: {v}" for headers in self.seen for k, v in headers.items()
                if k in CREDENTIAL_HEADERS]


def other_host_app(recorder: Recorder) -> Starlette:
    async def anything(request: Request) -> Response:
        recorder.seen.append(dict(request.headers))
        return JSONResponse({"data": [meta_template("from_the_other_host")]})

    return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])


def vendor_app(recorder: Recorder, other: str) -> Starlette:
    """Pages as a vendor that passes Meta's paging through: next on graph.facebook.com's
    stand-in (``other``), with the cursor both in ``cursors.after`` and in the next URL."""

    async def templates(request: Request) -> Response:
        recorder.seen.append(dict(request.headers))
        after = request.query_params.get("after")
        if after is None:
            return JSONResponse({"data": [meta_template("page_one")], "paging": {
                "cursors": {"before": "QVFIUb", "after": "QVFIUa1"},
                "next": f"{other}/v21.0/1029384756/message_templates?limit=50&after=QVFIUa1"}})
        if after == "QVFIUa1":
            return JSONResponse({"data": [meta_template("page_two")], "paging": {
                "next": f"{other}/v21.0/1029384756/message_templates?limit=50&after=QVFIUa2"}})
        return JSONResponse({"data": []})

    async def moved(request: Request) -> Response:
        recorder.seen.append(dict(request.headers))
        return RedirectResponse(f"{other}/elsewhere", status_code=302)

    async def same_host_move(request: Request) -> Response:
        recorder.seen.append(dict(request.headers))
        return RedirectResponse("/templates", status_code=302)

    return Starlette(routes=[Route("/templates", templates), Route("/moved", moved),
                             Route("/same", same_host_move)])


@pytest.fixture
def servers():
    vendor_seen, other_seen = Recorder(), Recorder()
    with LiveServer(other_host_app(other_seen)) as other, \
            LiveServer(vendor_app(vendor_seen, other.url)) as vendor:
        yield vendor, vendor_seen, other, other_seen


def test_import_never_sends_the_token_to_a_next_url_on_another_host(cli, servers, tmp_path):
    vendor, vendor_seen, _other, other_seen = servers
    result = cli("import-templates", "--url", f"{vendor.url}/templates", "--token", TOKEN,
                 "--library", str(tmp_path / "lib"))
    assert result.exit_code == 0, result.output
    assert other_seen.seen == []  # not even without credentials: the cursor form is used
    assert len(vendor_seen.credentials()) == 3  # three pages, all from --url
    assert result.stderr.count("is not followed") == 1  # said once, not per page
    listed = cli("--json", "templates", "list", "--library", str(tmp_path / "lib"))
    assert "page_two" in listed.stdout and "from_the_other_host" not in listed.stdout


@pytest.mark.parametrize("auth", [
    Auth("basic", "acme", CANARIES[0]),
    Auth("bearer", secret=CANARIES[1]),
    Auth("header", secret=CANARIES[1], header_name="Token"),
])
def test_redirect_to_another_origin_carries_no_credential(servers, auth) -> None:
    vendor, vendor_seen, _other, other_seen = servers
    with make_client(auth=auth, headers=[("X-Api-Key", CANARIES[2])], follow_redirects=True,
                     origin=vendor.url) as client:
        exchange = send(client, "GET", f"{vendor.url}/moved")
    assert exchange.response.status_code == 200
    assert len(vendor_seen.credentials()) == 2  # the auth header and the extra header
    assert len(other_seen.seen) == 1 and other_seen.credentials() == []


def test_a_same_origin_redirect_keeps_the_credentials(servers) -> None:
    vendor, vendor_seen, _, _ = servers
    auth = Auth("header", secret=CANARIES[1], header_name="Token")
    with make_client(auth=auth, follow_redirects=True, origin=vendor.url) as client:
        send(client, "GET", f"{vendor.url}/same")
    assert len(vendor_seen.seen) == 2 and len(vendor_seen.credentials()) == 2


def test_a_client_bound_to_one_origin_sends_nothing_to_another(servers) -> None:
    vendor, _, other, other_seen = servers
    with make_client(auth=Auth("bearer", secret=CANARIES[1]), origin=vendor.url) as client:
        send(client, "GET", f"{other.url}/x")
    assert other_seen.seen and other_seen.credentials() == []


def test_without_an_origin_the_first_request_binds_it(servers) -> None:
    vendor, vendor_seen, other, other_seen = servers
    with make_client(auth=Auth("bearer", secret=CANARIES[1])) as client:
        send(client, "GET", f"{vendor.url}/templates")
        send(client, "GET", f"{other.url}/x")
    assert vendor_seen.credentials() and other_seen.credentials() == []


@pytest.mark.parametrize(("a", "b", "same"), [
    ("https://a.example/x", "https://a.example:443/y", True),
    ("http://a.example/x", "https://a.example/x", False),
    ("https://A.example/x", "https://a.example/x", True),
    ("https://a.example:8443/x", "https://a.example/x", False),
    ("https://vendor.example/t", "https://graph.facebook.com/v21.0/1/message_templates", False),
])
def test_origins(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same
    assert (origin_of(a) == origin_of(b)) is same

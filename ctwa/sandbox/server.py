"""The sandbox: mock BSP, mock vendor and mock CleverTap in one starlette app on 127.0.0.1.

    /bsp/messages          the BSP messaging endpoint (Basic auth)
    /vendor/templates      the vendor's template import endpoint (Bearer token, cursor paging)
    /clevertap/1/upload    CleverTap's profile upload API (account id + passcode)
    /clevertap/status      CleverTap's DLR callback URL  } backed by `callback listen`'s
    /clevertap/inbound     CleverTap's inbound URL       } checks; GET /clevertap/stats
    GET /bsp/stats, GET /clevertap/uploads: what the mock BSP and upload API have seen
    /meta/{version}/...    a strict mock of Meta's WhatsApp Cloud API (ctwa.sandbox.meta):
                           messages, message_templates, media; signed webhooks; GET /meta/stats
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from ctwa.callbacks.listener import Listener
from ctwa.infra.errors import InputError
from ctwa.sandbox.bsp import BspSettings, MockBsp
from ctwa.sandbox.clevertap import MockCleverTap
from ctwa.sandbox.meta import MetaSettings, MockMeta
from ctwa.sandbox.vendor import vendor_app
from ctwa.wire.cloudapi import GRAPH_VERSION


@dataclass
class SandboxSettings:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    bsp: BspSettings = field(default_factory=BspSettings)
    vendor_token: str = "sandbox-vendor-token"
    templates: Path | None = None
    account_id: str = "SANDBOX-ACCOUNT"
    passcode: str = "sandbox-passcode"
    upload_concurrency: int = 15
    strict_callbacks: bool = False
    store_callbacks: bool = True  # the callbacks its CleverTap receives go to the store
    store_path: Path | None = None  # which store (default: the one ctwa uses)
    meta: MetaSettings = field(default_factory=MetaSettings)


def load_templates(folder: Path | None) -> list[dict[str, Any]]:
    """The Meta-format templates the mock vendor serves: a folder of JSON files."""
    from ctwa.infra.resources import examples_dir

    source = folder or examples_dir() / "templates"
    if not source.is_dir():
        raise InputError(f"{source}: no such folder of templates")
    templates: list[dict[str, Any]] = []
    for path in sorted(source.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a JSON template ({exc})") from exc
        templates += data["data"] if isinstance(data, dict) and "data" in data else [data]
    return templates


class Sandbox:
    """The composed app and its parts, whose state tests and the demo read."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.templates = load_templates(settings.templates)
        self.bsp = MockBsp(settings.bsp)
        self.meta = MockMeta(settings.meta, self.templates)
        self.clevertap = MockCleverTap({settings.account_id: settings.passcode},
                                       concurrency=settings.upload_concurrency)
        self.listener = Listener(strict=settings.strict_callbacks)
        if settings.store_callbacks:
            from ctwa.store.writer import BatchWriter

            self.listener.store = BatchWriter(settings.store_path)
        self.disconnects = self.listener.disconnects  # one count for the whole sandbox
        self.bsp.disconnects = self.disconnects
        self.base_url = ""

    def app(self) -> Starlette:
        quiet = self.disconnects.handlers()
        clevertap = Starlette(routes=[*self.clevertap.app().routes,
                                      *self.listener.app().routes], exception_handlers=quiet)
        vendor = vendor_app(self.templates, self.settings.vendor_token)
        vendor.exception_handlers.update(quiet)
        return Starlette(routes=[
            Mount("/bsp", routes=self.bsp.routes()),
            Mount("/vendor", app=vendor),
            Mount("/clevertap", app=clevertap),
            Mount("/meta", routes=self.meta.routes()),
        ], lifespan=self._lifespan, exception_handlers=quiet)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.meta.loop = asyncio.get_running_loop()  # for its Python API from other threads
        yield
        await self.bsp.close()  # stop pending DLR tasks, close their client
        await self.meta.close()  # and the mock Cloud API's webhooks and user

    def urls(self) -> dict[str, str]:
        base = self.base_url
        return {"bsp_endpoint": f"{base}/bsp/messages",
                "vendor_templates": f"{base}/vendor/templates",
                "clevertap_api": f"{base}/clevertap",
                "status_callback": f"{base}/clevertap/status",
                "inbound_callback": f"{base}/clevertap/inbound",
                "callback_stats": f"{base}/clevertap/stats",
                "bsp_stats": f"{base}/bsp/stats",
                "upload_stats": f"{base}/clevertap/uploads",
                "meta_graph": f"{base}/meta/{GRAPH_VERSION}",
                "meta_stats": f"{base}/meta/stats"}

    def credentials(self) -> dict[str, str]:
        bsp = self.settings.bsp
        return {"bsp_username": bsp.username or "", "bsp_password": bsp.password or "",
                "vendor_token": self.settings.vendor_token,
                "account_id": self.settings.account_id, "passcode": self.settings.passcode,
                "meta_token": self.settings.meta.token,
                "meta_app_secret": self.settings.meta.app_secret,
                "meta_phone_number_id": self.settings.meta.phone_number_id,
                "meta_waba_id": self.settings.meta.waba_id}


class RunningSandbox:
    """The sandbox on a uvicorn server in a background thread (the demo, tests)."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        from ctwa.infra.threadserver import ThreadServer

        self.sandbox = Sandbox(settings or SandboxSettings())
        self.server = ThreadServer(self.sandbox.app(), self.sandbox.settings.host,
                                   self.sandbox.settings.port, lifespan="on")
        self.thread = self.server.thread

    def __enter__(self) -> Sandbox:
        host, port = self.server.start()
        self.sandbox.base_url = f"http://{host}:{port}"
        bsp = self.sandbox.settings.bsp
        bsp.status_url = bsp.status_url or f"{self.sandbox.base_url}/clevertap/status"
        bsp.inbound_url = bsp.inbound_url or f"{self.sandbox.base_url}/clevertap/inbound"
        return self.sandbox

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()
        if self.sandbox.listener.store is not None:
            self.sandbox.listener.store.close()

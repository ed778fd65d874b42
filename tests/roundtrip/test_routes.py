"""Routes shown as the callbacks came (no doubled /clevertap/clevertap/ under the sandbox's
mount), and the wait says where callbacks really come from when the endpoint is a sandbox."""

from __future__ import annotations

import httpx

from ctwa.callbacks.listener import request_path
from ctwa.sandbox.bsp import BspSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings


def test_request_path_under_a_mount_is_never_doubled() -> None:
    assert request_path({"root_path": "/clevertap", "path": "/clevertap/status"}) == \
        "/clevertap/status"
    assert request_path({"root_path": "/clevertap", "path": "/status"}) == "/clevertap/status"
    assert request_path({"root_path": "", "path": "/status"}) == "/status"


def test_trace_and_await_show_the_sandboxs_routes_and_where_callbacks_come_from(cli) -> None:
    settings = SandboxSettings(port=0, bsp=BspSettings(latency=(0.0, 0.0),
                                                       dlr_delays=(0.01, 0.02, 0.03)))
    with RunningSandbox(settings) as box:
        creds = box.credentials()
        done = cli("send-template", "--sample", "lto", "--to", "919000000001", "--endpoint",
                   box.urls()["bsp_endpoint"], "--username", creds["bsp_username"],
                   "--password", creds["bsp_password"], "--await-callbacks",
                   "--callback-timeout", "10s")
        assert done.exit_code == 0, done.stderr
        base = box.urls()["clevertap_api"]
        assert "callbacks come from ctwa's mock BSP, which sends them to its own " \
            f"{base}/status and {base}/inbound" in done.stderr
        assert "must point here" not in done.stderr and "listening for" not in done.stderr
        traced = cli("trace", "--last")
        assert httpx.get(box.urls()["callback_stats"]).json()["valid"] >= 2
    assert traced.exit_code == 0, traced.stderr
    shown = done.stdout + traced.stdout
    assert "/clevertap/status" in shown and "/clevertap/clevertap" not in shown

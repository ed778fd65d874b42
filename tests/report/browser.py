"""Headless Chromium for report tests and screenshots: the DOM after scripts ran, a
screenshot, and every network request the page tried, caught by a proxy of our own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
#: Hosts Chromium itself calls whatever page it shows (not fonts or CDNs a page could use).
BROWSER_SERVICES = frozenset({
    "clients2.google.com", "update.googleapis.com", "accounts.google.com",
    "optimizationguide-pa.googleapis.com", "content-autofill.googleapis.com",
    "safebrowsingohttpgateway.googleapis.com", "android.clients.google.com",
    "redirector.gvt1.com", "edgedl.me.gvt1.com", "www.google.com"})


def chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class CountingProxy:
    """A TCP listener standing in for a proxy: every connection is a request the page made."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.requests.append(conn.recv(4096))
                except OSError:
                    self.requests.append(b"?")

    def page_requests(self) -> list[str]:
        """What the page asked for: the hosts of every request, without the browser's own
        calls home (update, time, account services), which no page can cause."""
        hosts = []
        for request in self.requests:
            line = request.split(b"\r\n", 1)[0].decode("latin-1")
            target = line.split(" ")[1] if " " in line else line
            host = target.split("://")[-1].split("/")[0].split(":")[0]
            if host not in BROWSER_SERVICES:
                hosts.append(line)
        return hosts

    def close(self) -> None:
        self.sock.close()


def _flags(proxy: CountingProxy, profile: Path) -> list[str]:
    return ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", "--disable-default-apps", "--no-pings",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,"
            "MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
            f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{proxy.port}",
            "--proxy-bypass-list=<-loopback>"]


def dump_dom(page: Path, proxy: CountingProxy, profile: Path) -> str:
    """The DOM after the page's scripts ran."""
    done = subprocess.run([chromium() or "chromium", *_flags(proxy, profile),
                           "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(profile)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, target: Path, proxy: CountingProxy, profile: Path,
               size: str = "1000,2400") -> None:
    done = subprocess.run([chromium() or "chromium", *_flags(proxy, profile),
                           f"--window-size={size}", f"--screenshot={target}", page.as_uri()],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(profile)})
    assert done.returncode == 0 and target.exists(), done.stderr[-2000:]

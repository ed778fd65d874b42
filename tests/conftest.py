"""Test isolation: every test gets its own config and data dirs, no colour, a fixed width,
an in-memory keyring, no proxies, and a clean secret registry."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _guard_the_session() -> Path:
    """Before anything else is imported (ctwa, keyring, platformdirs, a test module's
    module-scoped sandbox): HOME, every XDG_* directory and ctwa's own CTWA_* directories
    point into one temporary folder, so no test, fixture or subprocess of the suite can read
    or write the user's real config, keyring files, store or template library."""
    root = Path(tempfile.mkdtemp(prefix="ctwa-tests-"))
    for name in list(os.environ):
        # CTWA_TEST_* configure the suite itself (a PostgreSQL to use, the cluster tests' size)
        if name.startswith(("CTWA_", "XDG_")) and not name.startswith("CTWA_TEST_"):
            del os.environ[name]
    for name, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "home/.config"),
                      ("XDG_DATA_HOME", "home/.local/share"), ("XDG_CACHE_HOME", "home/.cache"),
                      ("XDG_STATE_HOME", "home/.local/state"), ("XDG_RUNTIME_DIR", "run"),
                      ("CTWA_CONFIG_DIR", "ctwa/config"), ("CTWA_DATA_DIR", "ctwa/data")):
        (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ[name] = str(root / sub)
    os.environ["CTWA_STORE"] = str(root / "ctwa" / "data" / "store.sqlite3")
    return root


SESSION_ROOT = _guard_the_session()


def pytest_unconfigure(config) -> None:
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)


import keyring  # noqa: E402  (after the guard, on purpose)
import pytest  # noqa: E402
from keyring.backend import KeyringBackend  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from ctwa.infra import masking  # noqa: E402
from ctwa.infra.threadserver import ThreadServer  # noqa: E402

#: Secrets used by tests; no output of any test may contain one of them.
CANARIES = ("pw-CANARY-7f3a", "tok-CANARY-91bd", "pc-CANARY-55e0", "imp-CANARY-0c11")


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if (service, username) not in self.store:
            raise PasswordDeleteError("not found")
        del self.store[(service, username)]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    for name in list(os.environ):
        if name.startswith("CTWA_") or name.lower() in ("http_proxy", "https_proxy",
                                                        "all_proxy", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CTWA_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CTWA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "dumb")
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    masking.forget_all()
    from ctwa.infra import secrets

    secrets._HUNG.clear()  # a keyring that hung in one test is asked again in the next
    yield backend
    keyring.set_keyring(previous)
    masking.forget_all()


@pytest.fixture
def memory_keyring(isolated: MemoryKeyring) -> MemoryKeyring:
    return isolated


class Runner:
    """Invokes the CLI like a user would and checks that no test secret leaked into output."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None):
        from ctwa.cli.app import app

        result = self.runner.invoke(app, list(args), input=input, env=env,
                                    prog_name="ctwa")
        for canary in CANARIES:
            assert canary not in result.stdout, f"secret leaked to stdout: {args}"
            assert canary not in result.stderr, f"secret leaked to stderr: {args}"
        return result


@pytest.fixture
def cli() -> Runner:
    return Runner()


SPEC_SAMPLES = Path(__file__).parent / "spec_samples"
EXAMPLES = Path(__file__).parent.parent / "examples"


class LiveServer(ThreadServer):
    """A real uvicorn server on 127.0.0.1 in a background thread, for end-to-end tests
    (``options`` go to uvicorn: TLS files)."""

    def __init__(self, app, **options) -> None:
        super().__init__(app, "127.0.0.1", 0, **options)
        self.url = ""

    def __enter__(self) -> LiveServer:
        host, port = self.start()
        self.url = f"http://{host}:{port}"
        return self


@pytest.fixture
def listener():
    """A real callback listener on 127.0.0.1, with ``url`` and what it ``received``."""
    from ctwa.callbacks.listener import Listener

    received: list = []
    listen = Listener(on_receive=received.append)
    with LiveServer(listen.app()) as server:
        listen.url = server.url  # type: ignore[attr-defined]
        listen.received = received  # type: ignore[attr-defined]
        yield listen

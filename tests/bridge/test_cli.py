"""``ctwa bridge``, ``bridge migrate`` and ``bridge status`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from ctwa.infra.errors import ExitCode
from tests.bridge.conftest import Harness

SECRETS = {"CTWA_BRIDGE_PASSWORD": "pw-CANARY-7f3a", "CTWA_META_TOKEN": "tok-CANARY-91bd",
           "CTWA_META_APP_SECRET": "app-secret", "CTWA_META_VERIFY_TOKEN": "verify"}
OPTIONS = ("--phone-number-id", "1", "--waba-id", "2", "--status-url", "http://127.0.0.1:9/s",
           "--inbound-url", "http://127.0.0.1:9/i", "--username", "clevertap")


def test_missing_settings_and_secrets_are_one_line_exit_4(cli, tmp_path: Path) -> None:
    missing = cli("bridge", "--state", str(tmp_path / "b.sqlite3"))
    assert missing.exit_code == ExitCode.CONFIG
    assert "--phone-number-id, --waba-id, --status-url, --inbound-url, --username" in \
        missing.stderr and "Traceback" not in missing.stderr
    no_secret = cli("bridge", *OPTIONS, "--state", str(tmp_path / "b.sqlite3"))
    assert no_secret.exit_code == ExitCode.CONFIG
    assert "CTWA_BRIDGE_PASSWORD, CTWA_META_TOKEN" in no_secret.stderr


def test_the_config_file_holds_no_secret_and_no_unknown_key(cli, tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("meta_token: abc\n")
    refused = cli("bridge", "--config", str(config), env=SECRETS)
    assert refused.exit_code == ExitCode.USAGE and "secrets do not go in" in refused.stderr
    config.write_text("phone_numbr_id: 1\n")
    unknown = cli("bridge", "--config", str(config), env=SECRETS)
    assert unknown.exit_code == ExitCode.USAGE and "unknown setting 'phone_numbr_id'" in \
        unknown.stderr
    config.write_text("mps: fast\n")
    bad = cli("bridge", "--config", str(config), env=SECRETS)
    assert bad.exit_code == ExitCode.USAGE and "mps" in bad.stderr


def test_a_config_value_of_the_wrong_kind_is_one_line_naming_file_and_key(
        cli, tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("mps: fast\n")
    bad = cli("bridge", "--config", str(config), env=SECRETS)
    assert bad.exit_code == ExitCode.USAGE
    assert f"{config}: mps: 'fast' is not a number" in bad.stderr
    assert "mps: 80" in bad.stderr and "could not convert" not in bad.stderr
    for bare in ("10", "1.5", "'10'"):
        config.write_text(f"meta_timeout: {bare}\n")
        unitless = cli("bridge", "--config", str(config), env=SECRETS)
        assert unitless.exit_code == ExitCode.USAGE, bare
        assert f"{config}: meta_timeout:" in unitless.stderr and "has no unit" in \
            unitless.stderr and "meta_timeout: " in unitless.stderr.split("has no unit")[1]
    config.write_text("meta_timeout: 10s\nunmapped_wait: 500ms\n")
    from ctwa.bridge.config import load_config

    settings = load_config(config, {})
    assert settings.meta_timeout == 10.0 and settings.unmapped_wait == 0.5


def test_bad_options_are_one_line(cli, tmp_path: Path) -> None:
    listen = cli("bridge", *OPTIONS, "--listen", "nowhere", env=SECRETS)
    assert listen.exit_code == ExitCode.USAGE and "HOST:PORT" in listen.stderr
    url = cli("bridge", *OPTIONS[:4], "--status-url", "ftp://x", *OPTIONS[6:], env=SECRETS)
    assert url.exit_code == ExitCode.USAGE and "--status-url" in url.stderr


def test_migrate_then_status_of_an_empty_state(cli, tmp_path: Path) -> None:
    state = str(tmp_path / "b.sqlite3")
    first = cli("--json", "bridge", "migrate", "--state", state)
    assert first.exit_code == 0, first.stderr
    done = json.loads(first.stdout)
    assert done["before"] == 0 and done["after"] >= 1 and done["backend"] == "sqlite"
    again = cli("bridge", "migrate", "--state", state)
    assert again.exit_code == 0 and "up to date" in again.stderr + again.stdout
    status = cli("bridge", "status", "--state", state)
    assert status.exit_code == 0 and "replicas: none seen" in status.stdout


def test_migrate_without_state_uses_the_data_directory(cli) -> None:
    done = cli("--json", "bridge", "migrate")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["state"].endswith("bridge.sqlite3")


def test_status_shows_a_running_bridge(cli, harness: Harness) -> None:
    harness.post({"payloadVersion": 0.1, "to": "919876543210", "wabaNumber": "1",
                  "msgId": "1|2|3|4", "isTemplate": False, "type": "text",
                  "text": {"body": "hi"}})
    from tests.bridge.conftest import wait_until

    wait_until(lambda: harness.meta.requests, what="Meta's request")
    state = harness.running.settings.state
    shown = json.loads(cli("--json", "bridge", "status", "--state", state).stdout)
    assert len(shown["replicas"]) == 1 and shown["backend"] == "sqlite"
    assert shown["sent"] == 1
    human = cli("bridge", "status", "--state", state)
    assert "alive" in human.stdout and "1 sent to Meta (their DLRs may still fail), 0 " \
        "failed before reaching Meta" in human.stdout


def test_status_of_a_missing_state_file_creates_nothing(cli, tmp_path: Path) -> None:
    for state in (tmp_path / "missing.sqlite3", tmp_path / "nodir" / "b.sqlite3"):
        for url in (str(state), f"sqlite://{state}"):
            done = cli("bridge", "status", "--state", url)
            assert done.exit_code == ExitCode.CONFIG, done.stdout + done.stderr
            assert f"no bridge state at {state} (the file does not exist)" in done.stderr
            assert f"ctwa bridge migrate --state {url}" in done.stderr
            assert done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr
            assert not state.exists()
    assert sorted(tmp_path.iterdir()) == []
    default = cli("bridge", "status")  # the data directory's bridge.sqlite3, not made either
    assert default.exit_code == ExitCode.CONFIG and "bridge.sqlite3" in default.stderr
    from ctwa.cli.bridge import default_state

    assert not Path(default_state()).exists()


def test_status_of_a_postgresql_without_the_schema_creates_nothing(cli) -> None:
    import psycopg

    from tests.bridge.state import pg

    url, schema = pg.fresh_schema_url()
    try:
        done = cli("bridge", "status", "--state", url)
        assert done.exit_code == ExitCode.CONFIG, done.stdout + done.stderr
        assert "is not migrated" in done.stderr and "ctwa bridge migrate" in done.stderr
        with psycopg.connect(pg.server_url(), autocommit=True) as conn:
            tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                  "table_schema = %s", (schema,)).fetchone()
        assert tables == (0,)
    finally:
        pg.drop_schema(schema)


def test_an_unreachable_postgresql_is_exit_4(cli) -> None:
    done = cli("bridge", "status", "--state", "postgresql://ctwa:pw-CANARY-7f3a@127.0.0.1:9/x")
    assert done.exit_code == ExitCode.CONFIG, done.stderr
    assert done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr


def test_an_option_beats_the_config_file_which_beats_the_default(tmp_path: Path) -> None:
    from ctwa.bridge.config import DEFAULT_GRAPH_URL, load_config

    config = tmp_path / "bridge.yaml"
    config.write_text("mps: 200\nusername: from-file\nmedia_link_ttl: 2d\nmeta_timeout: "
                      "1500ms\nclicks:\n  order_update: https://shop.example/{value}\n")
    settings = load_config(config, {"mps": 1000.0, "username": None})
    assert settings.mps == 1000.0 and settings.username == "from-file"
    assert settings.graph_url == DEFAULT_GRAPH_URL
    assert settings.media_link_ttl == 2 * 86400 and settings.meta_timeout == 1.5
    assert settings.clicks == {"order_update": "https://shop.example/{value}"}


def test_secrets_come_from_the_keyring_when_the_environment_has_none(memory_keyring) -> None:
    from ctwa.bridge.config import load_secrets

    memory_keyring.set_password("ctwa", "bridge:CTWA_META_TOKEN", "tok-from-keyring")
    assert load_secrets().meta_token == "tok-from-keyring"


def test_the_advice_after_a_run_is_runnable_and_holds_no_password() -> None:
    from ctwa.cli.bridge import advice_state

    assert advice_state("/data/bridge.sqlite3") == ("/data/bridge.sqlite3", None)
    command, note = advice_state("postgresql://ctwa:pw-CANARY-7f3a@db.example:5433/bridge")
    assert command == "postgresql://ctwa@db.example:5433/bridge"
    assert note is not None and "PGPASSWORD" in note


def test_help_shows_defaults_and_duration_metavars_as_the_conventions_say(cli) -> None:
    import re

    shown = cli("bridge", "--help", env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    text = " ".join(shown.stdout.split())
    assert "(default " not in text and "default: (" not in text
    for default in ("[default: 80]", "[default: 127.0.0.1:8780]",
                    "[default: https://graph.facebook.com/v23.0]",
                    "[default: bridge.sqlite3 in the data directory]"):
        assert default in text, default
    sandbox = " ".join(cli("sandbox", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--latency DURATION" in sandbox and "--meta-latency DURATION" in sandbox
    assert not re.search(r"--[a-z-]+ [A-Z_]*LATENCY\b", sandbox)


def _run_until_sigterm(tmp_path: Path, *extra: str) -> tuple[int, str]:
    """A real ``ctwa bridge`` process, stopped with SIGTERM once it is up: its exit code and
    its stderr."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ctwa.infra.ports import free_port

    log = tmp_path / "bridge.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ctwa", "bridge", *OPTIONS, "--graph-url", "http://127.0.0.1:9",
         "--listen", f"127.0.0.1:{free_port()}", "--state", str(tmp_path / "b.sqlite3"),
         *extra], env={**os.environ, **SECRETS}, stdout=subprocess.PIPE, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 20
        while "Meta webhook" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    return process.returncode, log.read_text()


def test_sigterm_stops_the_bridge_with_its_summary_as_ctrl_c_does(tmp_path: Path) -> None:
    code, text = _run_until_sigterm(tmp_path)
    assert "stopped after" in text and "see it with: ctwa bridge status" in text, text
    assert code == 0 and "Traceback" not in text
    # no --public-url: the banner says where its URLs come from, and one line warns
    assert "(the listen address; no --public-url)" in text
    warning = [line for line in text.splitlines() if "no --public-url:" in line]
    assert len(warning) == 1 and "give --public-url" in warning[0], text


def test_the_banner_says_its_urls_are_the_public_url(tmp_path: Path) -> None:
    code, text = _run_until_sigterm(tmp_path, "--public-url", "https://wa.example.com")
    assert code == 0, text
    assert "CleverTap endpoint  https://wa.example.com/messages" in text
    assert "(as CleverTap and Meta reach it, --public-url)" in text
    assert "no --public-url" not in text

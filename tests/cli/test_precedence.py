"""One precedence rule for every setting of every command: command-line option > environment
variable > profile > default; and an option beats a profile value of another name that
decides the same thing, saying (with -v) which profile value it overrode.

The profile points at a port nothing listens on; the options at a live sandbox: a command
that used the profile's value would fail to connect (exit 3)."""

from __future__ import annotations

import json

import httpx
import pytest

from ctwa.infra.ports import free_port
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from tests.conftest import EXAMPLES

DEAD = f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def box():
    with RunningSandbox(SandboxSettings(port=0, store_callbacks=False)) as sandbox:
        yield sandbox


@pytest.fixture
def profile(cli):
    done = cli("profile", "add", "p", "--endpoint", f"{DEAD}/bsp", "--auth", "bearer",
               "--waba", "919999999001", "--account-id", "PROFILE-ACCOUNT",
               "--base-url", f"{DEAD}/clevertap", "--region", "sg1",
               "--status-url", f"{DEAD}/status", "--inbound-url", f"{DEAD}/inbound",
               "--import-url", f"{DEAD}/vendor", "--track-clicks", "profile.example", "--use")
    assert done.exit_code == 0, done.stderr
    return "p"


def test_upload_region_option_beats_the_profiles_base_url_and_says_so(cli, profile,
                                                                      tmp_path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("identity,Phone\nu1,+14155550101\n")
    done = cli("-v", "upload-users", str(users), "--region", "in1", "--account-id",
               "W9R-XXX-XXXX", "--dry-run")
    assert done.exit_code == 0, done.stderr
    assert "would go to https://in1.api.clevertap.com/1/upload" in done.stderr
    assert DEAD not in done.stderr.replace("(" + DEAD, "")  # only in the override note
    assert f"--region in1 overrides the profile's base_url ({DEAD}/clevertap)" in done.stderr
    assert "--account-id W9R-XXX-XXXX overrides the profile's account_id" in done.stderr
    quiet = cli("upload-users", str(users), "--region", "in1", "--dry-run")
    assert "overrides the profile's" not in quiet.stderr  # the note is for -v


def test_upload_base_url_option_beats_the_profile_and_uploads_there(cli, profile, box,
                                                                    tmp_path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("identity,Phone\nu1,+14155550101\n")
    creds = box.credentials()
    done = cli("upload-users", str(users), "--base-url", box.urls()["clevertap_api"],
               "--account-id", creds["account_id"], env={"CTWA_PASSCODE": creds["passcode"]})
    assert done.exit_code == 0, done.stderr
    assert "uploaded" in done.stdout


def test_account_id_option_over_environment_over_profile(cli, profile, tmp_path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("identity,Phone\nu1,+14155550101\n")

    def account(*args: str, env: dict[str, str] | None = None) -> str:
        done = cli("--json", "upload-users", str(users), "--dry-run", *args, env=env)
        return json.loads(done.stdout)["request"]["headers"]["X-CleverTap-Account-Id"]

    assert account() == "PROFILE-ACCOUNT"
    assert account(env={"CTWA_ACCOUNT_ID": "ENV-ACCOUNT"}) == "ENV-ACCOUNT"
    assert account("--account-id", "FLAG-ACCOUNT",
                   env={"CTWA_ACCOUNT_ID": "ENV-ACCOUNT"}) == "FLAG-ACCOUNT"


def test_profile_option_over_environment(cli, profile) -> None:
    assert cli("profile", "add", "other", "--waba", "919999999002").exit_code == 0
    shown = cli("--json", "send-template", "--sample", "lto", "--dry-run", "-p", "other",
                env={"CTWA_PROFILE": "p"})
    assert json.loads(shown.stdout)["wabaNumber"] == "919999999002"
    env_only = cli("--json", "send-template", "--sample", "lto", "--dry-run",
                   env={"CTWA_PROFILE": "other"})
    assert json.loads(env_only.stdout)["wabaNumber"] == "919999999002"
    current = cli("--json", "send-template", "--sample", "lto", "--dry-run")
    assert json.loads(current.stdout)["wabaNumber"] == "919999999001"


def test_store_option_over_environment(cli, tmp_path) -> None:
    done = cli("--json", "store", "info", "--store", str(tmp_path / "flag.sqlite3"),
               env={"CTWA_STORE": str(tmp_path / "env.sqlite3")})
    assert "flag.sqlite3" in done.stdout and "env.sqlite3" not in done.stdout


@pytest.mark.parametrize("command", [
    ["send-template", "--sample", "lto", "--to", "919000000001"],
    ["send-freeform", "--text", "hi", "--to", "919000000001"],
    ["validate-endpoint"],
])
def test_send_commands_endpoint_and_waba_options_beat_the_profile(cli, profile, box,
                                                                  command) -> None:
    creds = box.credentials()
    done = cli("-v", *command, "--endpoint", box.urls()["bsp_endpoint"], "--username",
               creds["bsp_username"], "--password", creds["bsp_password"],
               "--waba", "919999999555")
    assert done.exit_code == 0, done.stderr
    assert f"--endpoint {box.urls()['bsp_endpoint']} overrides the profile's endpoint " \
        f"({DEAD}/bsp)" in done.stderr
    assert "overrides the profile's auth (bearer): auth basic is used" in done.stderr
    last = httpx.get(box.urls()["bsp_stats"]).json()["last_payload"]
    assert "919999999555" in json.dumps(last)


def test_import_templates_url_option_beats_the_profile(cli, profile, box, tmp_path) -> None:
    done = cli("-v", "import-templates", "--url", box.urls()["vendor_templates"], "--token",
               box.credentials()["vendor_token"], "--library", str(tmp_path / "lib"))
    assert done.exit_code == 0, done.stderr
    assert "overrides the profile's import_url" in done.stderr


def test_callback_replay_url_options_beat_the_profile(cli, profile, box) -> None:
    done = cli("callback", "replay", str(EXAMPLES / "callbacks" / "lifecycle.yaml"),
               "--no-delay", "--status-url", box.urls()["status_callback"],
               "--inbound-url", box.urls()["inbound_callback"])
    assert done.exit_code == 0, done.stderr


def test_certify_options_beat_the_profile(cli, profile, monkeypatch, tmp_path) -> None:
    import ctwa.cli.certify

    seen = {}
    monkeypatch.setattr(ctwa.cli.certify, "_run",
                        lambda out, options, *rest: seen.update(o=options))
    done = cli("-v", "certify", "--to", "919000000001", "--endpoint", "http://127.0.0.1:1/bsp",
               "--username", "u", "--password", "pw-CANARY-7f3a", "--waba", "919999999777",
               "--report-dir", str(tmp_path / "evidence"), "--no-interactive")
    assert done.exit_code == 0, done.stderr
    options = seen["o"]
    assert options.endpoint.url == "http://127.0.0.1:1/bsp"
    assert options.endpoint.auth.kind == "basic" and options.waba == "919999999777"
    assert f"overrides the profile's endpoint ({DEAD}/bsp)" in done.stderr

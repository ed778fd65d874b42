"""send-template, send-freeform and validate-endpoint through Typer's runner."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from ctwa.infra.errors import ExitCode
from ctwa.send.samples import SAMPLE_NAMES, load_sample
from tests.conftest import EXAMPLES, SPEC_SAMPLES

URL = "https://bsp.example/clevertap"
OK = {"status": "success"}
CONN = ("--endpoint", URL)


def sent(route) -> dict:
    return json.loads(route.calls.last.request.content)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_dry_run_sample_prints_the_canonical_payload(cli, name: str) -> None:
    result = cli("send-template", "--sample", name, "--to", "+919000000001", "--waba",
                 "919000000000", "--msg-id", "7|7|7|7|7", "--dry-run")
    assert result.exit_code == 0, result.stderr
    expected = load_sample(name) | {"to": "+919000000001", "wabaNumber": "919000000000",
                                    "msgId": "7|7|7|7|7"}
    assert json.loads(result.stdout) == expected


def test_template_file_with_params_and_flags(cli) -> None:
    with respx.mock:
        route = respx.post(URL).respond(200, json=OK)
        result = cli("send-template", "--template-file", str(EXAMPLES / "templates" / "lto.json"),
                     "--params", str(EXAMPLES / "params" / "lto.yaml"), "--var", "Asha",
                     "--to", "919000000001", "--waba", "919000000000", *CONN)
    assert result.exit_code == 0, result.stderr
    body = sent(route)
    assert body["components"][1]["body"]["text"] == "Hey Asha, Welcome to CleverTap."
    assert body["template"] == {"namespace": "Test_template", "languageCode": "en"}
    msg_id = body["msgId"].split("|")
    assert len(msg_id) == 5 and msg_id[3] == "1"
    assert "accepted" in result.stdout


def test_each_send_gets_a_fresh_msg_id(cli) -> None:
    ids = set()
    for _ in range(3):
        result = cli("send-template", "--sample", "text", "--dry-run")
        ids.add(json.loads(result.stdout)["msgId"])
    assert len(ids) == 3


def test_missing_parameters_exit_2_naming_each(cli) -> None:
    result = cli("send-template", "--template-file", str(EXAMPLES / "templates" / "lto.json"),
                 "--to", "919000000001", "--waba", "919000009190", "--dry-run")
    assert result.exit_code == ExitCode.USAGE
    assert "body {{1}}" in result.stderr and "button 1 URL suffix" in result.stderr
    assert "Traceback" not in result.stderr


def test_examples_flag_fills_from_the_template(cli) -> None:
    result = cli("send-template", "--template-file", str(EXAMPLES / "templates" / "lto.json"),
                 "--examples", "--to", "919000000001", "--waba", "919000009190", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["components"][3]["parameters"][0]["coupon_code"] == (
        "SAMPLECODE")


def test_unsupported_template_is_refused(cli, tmp_path) -> None:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps({"name": "signup", "language": "en", "components": [
        {"type": "BODY", "text": "Join"},
        {"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Sign up"}]}]}))
    result = cli("send-template", "--template-file", str(path), "--to", "919000000001",
                 "--waba", "919000009190", "--dry-run")
    assert result.exit_code == ExitCode.USAGE
    assert "CleverTap cannot send: button 0: FLOW" in result.stderr


def test_template_from_the_library(cli) -> None:
    from ctwa.templates.library import Entry, TemplateLibrary, default_root

    library = TemplateLibrary(default_root(None))
    template = json.loads((EXAMPLES / "templates" / "text.json").read_text())
    path = library.put(template)
    library.save_index({"k": Entry(template["name"], template["language"], path.name)})
    result = cli("send-template", "--template", "Sample_Template", "--var", "Ann", "--to",
                 "919000000001", "--waba", "919000009190", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["components"][0]["body"]["text"] == "Hey Ann, This is Body"
    missing = cli("send-template", "--template", "nope", "--to", "919000000001", "--dry-run")
    assert missing.exit_code == ExitCode.USAGE and "no template 'nope'" in missing.stderr


def test_exactly_one_source(cli) -> None:
    result = cli("send-template", "--sample", "text", "--template", "x", "--dry-run")
    assert result.exit_code == ExitCode.USAGE and "exactly one" in result.stderr


@respx.mock
def test_failure_answer_exits_1_with_the_code_meaning(cli) -> None:
    respx.post(URL).respond(200, json={"status": "failure",
                                       "error": {"code": 2002, "message": "bad number"}})
    result = cli("send-template", "--sample", "text", *CONN)
    assert result.exit_code == ExitCode.FAILED
    assert "refused: failure 2002: invalid phone number - bad number" in result.stderr


@respx.mock
def test_json_output_is_one_document(cli) -> None:
    respx.post(URL).respond(429, json={"message": "Too many requests to process"})
    result = cli("--json", "send-template", "--sample", "lto", *CONN)
    assert result.exit_code == ExitCode.FAILED
    data = json.loads(result.stdout)
    assert data["verdict"]["outcome"] == "http-error"
    assert data["response"]["status"] == 429
    assert data["request"]["body"]["template"]["namespace"] == "Test_template"


def test_unreachable_exits_3(cli) -> None:
    with respx.mock:
        respx.post(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
        result = cli("--json", "validate-endpoint", *CONN)
    assert result.exit_code == ExitCode.UNREACHABLE
    assert json.loads(result.stdout)["verdict"]["outcome"] == "unreachable"


@respx.mock
def test_credentials_from_flags_env_and_profile_are_sent_and_masked(cli) -> None:
    route = respx.post(URL).respond(200, json=OK)
    result = cli("-v", "validate-endpoint", *CONN, "--username", "bob",
                 env={"CTWA_PASSWORD": "pw-CANARY-7f3a"})
    assert result.exit_code == 0, result.stderr
    assert route.calls.last.request.headers["Authorization"].startswith("Basic ")
    assert "Basic ****" in result.stderr

    cli("profile", "add", "haptik", "--endpoint", URL, "--auth", "header", "--header-name",
        "Token", "--waba", "919000000000")
    cli("profile", "set-secret", "haptik", "token", "--stdin", input="tok-CANARY-91bd\n")
    result = cli("-v", "send-template", "--sample", "text")
    assert result.exit_code == 0, result.stderr
    assert route.calls.last.request.headers["Token"] == "tok-CANARY-91bd"
    assert sent(route)["wabaNumber"] == "919000000000"
    assert "Token: ****" in result.stderr


def test_missing_secret_exits_4(cli) -> None:
    result = cli("validate-endpoint", *CONN, "--auth", "bearer")
    assert result.exit_code == ExitCode.CONFIG
    assert "export CTWA_TOKEN=" in result.stderr


def test_profile_credentials_never_go_to_another_url(cli) -> None:
    cli("profile", "add", "acme", "--endpoint", "https://real.example/x", "--auth", "bearer")
    cli("profile", "set-secret", "acme", "token", "--stdin", input="tok-CANARY-91bd\n")
    with respx.mock:
        route = respx.post(URL).respond(200, json=OK)
        cli("validate-endpoint", *CONN)
    assert "Authorization" not in route.calls.last.request.headers


def test_no_endpoint_exits_4(cli) -> None:
    result = cli("validate-endpoint")
    assert result.exit_code == ExitCode.CONFIG and "--endpoint" in result.stderr


@respx.mock
def test_validate_endpoint_sends_the_inner_object_or_the_wrapped_form(cli) -> None:
    route = respx.post(URL).respond(200, json=OK)
    cli("validate-endpoint", *CONN)
    assert sent(route)["template"]["namespace"] == "whatsapp:hsm:technology:generic:verify"
    assert sent(route)["msgId"] == "0|0|0|0"
    cli("validate-endpoint", "--wrapped", *CONN)
    assert set(sent(route)) == {"body"}


@pytest.mark.parametrize(("args", "expected"), [
    (("--type", "text", "--text", "Hi!"), {"type": "text", "text": {"body": "Hi!"}}),
    (("--type", "image", "--media-url", "https://x/i.png", "--caption", "c"),
     {"type": "image", "image": {"mediaURL": "https://x/i.png", "caption": "c"}}),
    (("--type", "audio", "--media-url", "https://x/a.mp3"),
     {"type": "audio", "audio": {"mediaURL": "https://x/a.mp3"}}),
    (("--type", "video", "--media-url", "https://x/v.mp4"),
     {"type": "video", "video": {"mediaURL": "https://x/v.mp4"}}),
    (("--type", "file", "--media-url", "https://x/d.pdf", "--caption", "c", "--filename", "d.pdf"),
     {"type": "file", "file": {"mediaURL": "https://x/d.pdf", "caption": "c",
                               "filename": "d.pdf"}}),
])
def test_freeform_types(cli, args, expected) -> None:
    result = cli("send-freeform", *args, "--to", "919000000001", "--waba", "919000009190",
                 "--msg-id", "1|2|3|4", "--dry-run")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body == {"payloadVersion": 0.1, "to": "919000000001", "wabaNumber": "919000009190",
                    "msgId": "1|2|3|4", "isTemplate": False, **expected}


@pytest.mark.parametrize(("args", "words"), [
    (("--type", "audio", "--media-url", "u", "--caption", "c"), "does not carry --caption"),
    (("--type", "image",), "needs --media-url"),
    (("--type", "text",), "needs --text"),
    (("--type", "sticker",), "not a freeform type"),
])
def test_freeform_refuses_what_a_type_does_not_carry(cli, args, words) -> None:
    result = cli("send-freeform", *args, "--to", "919000000001", "--waba", "919000009190",
                 "--dry-run")
    assert result.exit_code == ExitCode.USAGE and words in result.stderr


def test_bad_recipient(cli) -> None:
    result = cli("send-freeform", "--text", "x", "--to", "nobody", "--waba", "1", "--dry-run")
    assert result.exit_code == ExitCode.USAGE and "not a phone number" in result.stderr


@respx.mock
def test_payload_file_is_linted_first(cli) -> None:
    route = respx.post(URL).respond(200, json=OK)
    broken = str(SPEC_SAMPLES / "template-media.json")  # duplicate button index
    result = cli("send-template", "--payload", broken, *CONN)
    assert result.exit_code == ExitCode.USAGE and "used twice" in result.stderr
    assert route.call_count == 0
    result = cli("send-template", "--payload", broken, "--no-lint", *CONN)
    assert result.exit_code == 0 and route.call_count == 1
    assert sent(route) == json.loads((SPEC_SAMPLES / "template-media.json").read_text())


@respx.mock
def test_payload_file_variants_are_sent_as_given_with_warnings(cli) -> None:
    route = respx.post(URL).respond(200, json=OK)
    result = cli("send-template", "--payload", str(SPEC_SAMPLES / "freeform-audio.json"),
                 "--to", "919000000001", *CONN)
    assert result.exit_code == 0
    assert "msg_id" in sent(route) and sent(route)["to"] == "919000000001"
    assert "variant spelling" in result.stderr


def test_usage_conflicts_come_before_missing_secrets(cli) -> None:
    result = cli("send-template", "--sample", "text", "--to", "919000000001", "--waba",
                 "919000009190", "--endpoint", URL, "--auth", "bearer", "--count", "5",
                 "--duration", "5s")
    assert result.exit_code == ExitCode.USAGE and "--count or --duration" in result.stderr
    lonely = cli("send-template", "--sample", "text", "--to", "919000000001", "--endpoint",
                 URL, "--auth", "bearer", "--rate", "5")
    assert lonely.exit_code == ExitCode.USAGE and "load-mode options" in lonely.stderr


def test_did_you_mean_for_samples_and_waba_checked_like_to(cli) -> None:
    result = cli("send-template", "--sample", "mult-button", "--to", "919000000001",
                 "--dry-run")
    assert result.exit_code == ExitCode.USAGE and "did you mean 'multi-button'" in result.stderr
    waba = cli("send-template", "--sample", "text", "--to", "919000000001", "--waba", "abc",
               "--dry-run")
    assert waba.exit_code == ExitCode.USAGE and "--waba 'abc' is not a phone number" in \
        waba.stderr


def test_unused_values_are_reported(cli) -> None:
    result = cli("send-template", "--template-file", str(EXAMPLES / "templates" /
                                                          "order-update.json"),
                 "--var", "John", "--var", "12345", "--var", "extra", "--var", "nobody=x",
                 "--button", "0=track/1", "--button", "3=y", "--to", "919000000001", "--waba",
                 "919000009190", "--dry-run")
    assert result.exit_code == 0, result.stderr
    for words in ("--var 3 is not used", "--var nobody is not used",
                  "--button 3 is not a dynamic URL button"):
        assert words in result.stderr

"""Meta's WhatsApp Cloud API webhooks where CleverTap's callbacks are expected: recognised and
explained by lint, the listener (every route alike) and replay; translated by
`ctwa callback convert` into callbacks that lint clean and replay as they are."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from ctwa.callbacks.convert import Converter
from ctwa.infra.errors import ExitCode
from ctwa.wire.lint import lint_document
from ctwa.wire.webhook import META_ERROR_CODES, is_meta_webhook

FIXTURES = Path(__file__).parent / "fixtures"
WEBHOOKS = ("cloudapi_statuses.json", "cloudapi_messages.json", "cloudapi_value.json")
#: Pydantic's and Python's own wording, which must never reach a user.
INTERNALS = ("discriminator", "Input should", "validation error", "Traceback", "model_type",
             "union_tag", "Value error")


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def bare_statuses() -> dict:
    return {"statuses": load("cloudapi_value.json")["statuses"]}


def bare_messages() -> dict:
    value = load("cloudapi_messages.json")["entry"][0]["changes"][0]["value"]
    return {"messages": value["messages"]}


@pytest.mark.parametrize("doc", [load(n) for n in WEBHOOKS] + [bare_statuses(),
                                                               bare_messages()])
def test_every_shape_is_judged_as_metas_format_when_detected(doc) -> None:
    assert is_meta_webhook(doc)
    for kind in (None, "meta-webhook"):
        result = lint_document(doc, kind)
        assert result.kind == "meta-webhook" and result.ok, result.problems


@pytest.mark.parametrize("doc", [load(n) for n in WEBHOOKS] + [bare_statuses(),
                                                               bare_messages()])
def test_every_shape_is_explained_where_a_callback_is_expected(doc) -> None:
    assert is_meta_webhook(doc)
    for kind in ("status", "inbound"):
        result = lint_document(doc, kind)
        assert result.kind == "meta-webhook" and not result.ok
        first = result.problems[0]
        assert "Meta's WhatsApp Cloud API webhook format, not CleverTap's" in first.message
        assert "ctwa callback convert" in (first.hint or "")
        text = json.dumps([p.as_dict() for p in result.problems])
        assert not any(word in text for word in INTERNALS)


def test_the_differences_are_named() -> None:
    problems = lint_document(load("cloudapi_statuses.json"), "status").problems
    messages = " | ".join(p.message for p in problems)
    assert "provider's message id (a wamid), not the msgId CleverTap sent" in messages
    assert "error code 131026 is not a CleverTap code" in messages
    assert "CleverTap has no status 'played'" in messages
    assert "display_phone_number` is CleverTap's `wabaNumber`" in messages
    failed = next(p for p in problems if "131026" in p.message)
    assert "code: 1007" in (failed.hint or "")
    assert not any("remove" in (p.hint or "") and "entry" in p.path for p in problems)
    inbound = " | ".join(p.message for p in lint_document(load("cloudapi_messages.json"),
                                                          "inbound").problems)
    assert "media id" in inbound and '"document" is "file"' in inbound


def test_ctwa_lint_names_the_format(cli) -> None:
    result = cli("lint", "--kind", "status", str(FIXTURES / "cloudapi_statuses.json"))
    assert result.exit_code == ExitCode.FAILED
    output = result.stdout + result.stderr
    assert "(meta-webhook)" in output and "not CleverTap's callback format" in output
    assert not any(word in output for word in INTERNALS)


def test_ctwa_lint_passes_a_correct_webhook_and_says_how_to_go_on(cli) -> None:
    result = cli("lint", str(FIXTURES / "cloudapi_statuses.json"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "ok    " in result.stdout and "(meta-webhook)" in result.stdout
    assert "ctwa callback convert" in result.stderr


BROKEN_WEBHOOKS = [
    ({"object": "page", "entry": []}, ["$.object", "$.entry"]),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
      "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                "statuses": [{"id": "wamid.1", "status": "bogus", "timestamp": 1750263770,
                              "recipient_id": "1650"},
                             {"id": "wamid.2", "status": "failed", "timestamp": "1",
                              "recipient_id": "1650"}]}}]}]},
     ["$.entry[0].id", "$.entry[0].changes[0].value.metadata.display_phone_number",
      "$.entry[0].changes[0].value.statuses[0].timestamp",
      "$.entry[0].changes[0].value.statuses[0].status",
      "$.entry[0].changes[0].value.statuses[1].errors"]),
    ({"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1",
      "phone_number_id": "2"}, "messages": [{"from": "1650", "id": "wamid.3",
                                             "timestamp": "1", "type": "image"}]},
     ["$.messages[0].image"]),
]


@pytest.mark.parametrize(("doc", "paths"), BROKEN_WEBHOOKS)
def test_a_malformed_webhook_is_an_error_at_its_path(doc, paths) -> None:
    result = lint_document(doc)
    assert result.kind == "meta-webhook" and not result.ok
    assert [p.path for p in result.errors] == paths
    text = json.dumps([p.as_dict() for p in result.problems])
    assert not any(word in text for word in INTERNALS)


def test_what_a_webhook_lacks_is_named_missing() -> None:
    result = lint_document({"entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1",
                                                      "phone_number_id": "2"},
        "statuses": [{"id": "wamid.1", "timestamp": "1", "recipient_id": "1650"}]}}]}]})
    said = {p.path: p.message for p in result.errors}
    assert said == {"$.object": "missing `object`",
                    "$.entry[0].changes[0].value.statuses[0].status": "missing `status`"}


def test_other_webhook_fields_are_not_read_as_messages() -> None:
    update = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "message_template_status_update",
        "value": {"event": "APPROVED", "message_template_id": 1, "message_template_name": "x",
                  "message_template_language": "en_US", "reason": "NONE"}}]}]}
    result = lint_document(update)
    assert result.kind == "meta-webhook" and result.ok, result.problems


def test_kind_meta_webhook_on_a_clevertap_callback_says_it_is_none(cli, tmp_path) -> None:
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"payloadVersion": "0.1", "statuses": [
        {"msgId": "i|1|2|3|0", "status": "sent", "timestamp": "1750263770"}]}))
    result = cli("lint", "--kind", "meta-webhook", str(ours))
    assert result.exit_code == ExitCode.FAILED
    assert "not a Meta WhatsApp Cloud API webhook" in result.stdout


def test_callbacks_with_pydantic_union_errors_read_plainly() -> None:
    result = lint_document({"payloadVersion": "0.1", "statuses": [
        {"msgId": "i|1|2|3|0", "status": "bogus"}, {"msgId": "i|1|2|3|0"}]})
    text = json.dumps([p.as_dict() for p in result.problems])
    assert "`status` \\\"bogus\\\" is not one this format knows" in text
    assert "missing `status`" in text
    assert not any(word in text for word in INTERNALS)


@pytest.mark.parametrize("name", WEBHOOKS)
def test_the_listener_answers_alike_on_every_route(listener, name) -> None:
    body = (FIXTURES / name).read_bytes()
    answers = [httpx.post(f"{listener.url}{route}", content=body)
               for route in ("/status", "/inbound", "/")]
    assert {a.status_code for a in answers} == {200}
    documents = [a.json() for a in answers]
    assert documents[0] == documents[1] == documents[2]
    assert "Meta's WhatsApp Cloud API webhook" in documents[0]["problems"][0]["message"]
    stats = httpx.get(f"{listener.url}/stats").json()
    assert stats["invalid"] == 3 and stats["valid"] == 0


def convert_all(msgid_map: dict[str, str] | None = None):
    converter = Converter(msgid_map or {})
    converter.convert(load("cloudapi_statuses.json"), "statuses")
    converter.convert(load("cloudapi_messages.json"), "messages")
    return converter.result


def test_statuses_convert_with_codes_mapped_and_played_left_out() -> None:
    result = convert_all()
    (status,) = [c for c in result.callbacks if c.to == "status"]
    entries = status.body["statuses"]
    assert [e["status"] for e in entries] == ["sent", "delivered", "read", "failed", "failed"]
    assert entries[3]["error"] == {"code": 1007, "title": "User device can't receive the message"}
    assert entries[4]["error"]["code"] == 1009
    assert any("135999 is not in ctwa's table; sent as 1009" in w for w in result.warnings)
    assert any("status 'played' has no CleverTap callback" in s for s in result.skipped)
    assert all(e["msgId"].startswith("unmapped|") and len(e["msgId"]) <= 60 for e in entries)


def test_messages_convert_and_unrepresentable_kinds_are_named() -> None:
    result = convert_all()
    inbound = [c.body for c in result.callbacks if c.to == "inbound"]
    assert [b["type"] for b in inbound] == ["text", "image", "file", "audio", "video",
                                            "location", "text"]
    text, image, document, audio, video, location, button = inbound
    assert text["context"]["id"].startswith("unmapped|") and text["wabaNumber"] == "15550783881"
    assert image["image"]["mediaURL"].startswith("https://media.invalid/")
    assert document["document"] == {"mediaURL": document["document"]["mediaURL"],
                                     "mimeType": "application/pdf", "caption": "Receipt",
                                     "filename": "receipt.pdf"}
    assert "caption" not in audio["audio"]
    assert video["video"]["mediaURL"].startswith("https://lookaside.fbsbx.com/")
    assert location["location"]["latitude"] == "37.483307"
    assert button["text"]["body"] == "Unsubscribe from Promos"
    skipped = " | ".join(result.skipped)
    for kind in ("a reaction", "a contacts", "an interactive"):
        assert f"{kind} message has no CleverTap inbound form" in skipped
    assert "messages: $.entry[0].changes[0].value.messages[7]: a reaction" in skipped


def test_a_msgid_map_fills_msgids_and_reply_contexts(tmp_path, cli) -> None:
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RjZBQkQyRTJEMjlCMDNDRQA="
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"provider_id,msgId\n{wamid},i|123|456|1|0\n")
    result = cli("--json", "callback", "convert", str(FIXTURES / "cloudapi_statuses.json"),
                 str(FIXTURES / "cloudapi_messages.json"), "--msgid-map", str(mapping))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    first = data["callbacks"][0]["body"]["statuses"][0]
    assert first["msgId"] == "i|123|456|1|0"
    replies = [c["body"] for c in data["callbacks"] if c["to"] == "inbound"
               and "context" in c["body"]]
    assert {r["context"]["id"] for r in replies} == {"i|123|456|1|0"}
    assert data["placeholders"] == 2  # the two failed messages, not in the map
    assert "placeholders" in result.stderr and "--msgid-map" in result.stderr


def test_the_output_lints_clean_and_replays_as_it_is(cli, tmp_path, listener) -> None:
    out = tmp_path / "callbacks.yaml"
    converted = cli("callback", "convert", *(str(FIXTURES / n) for n in WEBHOOKS), "-o",
                    str(out))
    assert converted.exit_code == 0, converted.stderr
    linted = cli("--json", "lint", str(out))
    report = json.loads(linted.stdout)
    assert linted.exit_code == 0 and all(not d["problems"] for d in report["documents"])
    replayed = cli("callback", "replay", str(out), "--status-url", f"{listener.url}/status",
                   "--inbound-url", f"{listener.url}/inbound", "--no-delay")
    assert replayed.exit_code == 0, replayed.stderr
    stats = httpx.get(f"{listener.url}/stats").json()
    documents = list(yaml.safe_load_all(out.read_text()))
    assert stats["valid"] == len(documents) and stats["invalid"] == 0
    # recorded text is literal: a reference in a user's message is never expanded
    texts = [r.result.value.text.body for r in listener.received
             if r.kind == "inbound" and r.result.value.type == "text"]
    assert "Does it come in another color? {{ env.CTWA_PASSCODE }}" in texts


def test_replay_refuses_a_meta_webhook_with_the_way_out(cli) -> None:
    result = cli("callback", "replay", str(FIXTURES / "cloudapi_statuses.json"),
                 "--status-url", "http://127.0.0.1:9/status", "--inbound-url",
                 "http://127.0.0.1:9/inbound")
    assert result.exit_code == ExitCode.USAGE
    assert "Meta's WhatsApp Cloud API webhook format" in result.stderr
    assert "ctwa callback convert" in result.stderr


def test_a_raw_fixture_event_in_metas_shape_is_explained(cli, tmp_path) -> None:
    fixture = tmp_path / "f.yaml"
    fixture.write_text("events:\n  - raw: " + json.dumps(load("cloudapi_value.json"))
                       + "\n    to: status\n")
    result = cli("callback", "replay", str(fixture), "--status-url", "http://127.0.0.1:9/s",
                 "--inbound-url", "http://127.0.0.1:9/i")
    assert result.exit_code == ExitCode.USAGE
    assert "Meta's WhatsApp Cloud API webhook format" in result.stderr


def test_convert_refuses_what_is_not_a_meta_webhook(cli, tmp_path) -> None:
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"payloadVersion": "0.1", "statuses": [
        {"msgId": "i|1|2|3|0", "status": "sent", "timestamp": "1750263770"}]}))
    result = cli("callback", "convert", str(ours))
    assert result.exit_code == ExitCode.USAGE
    assert "already a CleverTap status callback" in result.stderr


def test_the_error_table_maps_only_to_clevertap_codes() -> None:
    assert set(META_ERROR_CODES.values()) <= set(range(1000, 1011))


def readme_block(heading: str) -> list[str]:
    """The ``ctwa`` commands of the first sh block after ``heading`` in the README, with
    line continuations joined."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = text[text.index(heading):].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines()
            if line.strip().startswith("ctwa ")]


def test_the_readmes_webhook_commands_run(cli, listener, tmp_path, monkeypatch) -> None:
    import shlex

    monkeypatch.chdir(Path(__file__).parents[2])
    commands = readme_block("### Meta's webhooks and CleverTap's callbacks")
    assert len(commands) == 3
    for command in commands:
        command = command.split("#")[0].replace("http://127.0.0.1:8787", listener.url)
        command, _, target = command.partition(">")
        args = [a.replace("callbacks.yaml", str(tmp_path / "callbacks.yaml"))
                for a in shlex.split(command)[1:]]
        result = cli(*args)
        assert result.exit_code == 0, (command, result.stderr)
        if target.strip():
            (tmp_path / target.strip()).write_text(result.stdout)
    stats = httpx.get(f"{listener.url}/stats").json()
    assert stats["valid"] == 1 and stats["invalid"] == 0 and stats["failed"] == {"1007": 1,
                                                                                   "1009": 1}

"""The mock Cloud API's templates endpoint, media, and the simulated user (replies, taps)."""

from __future__ import annotations

import httpx
import pytest

from ctwa.callbacks.convert import Converter
from ctwa.sandbox.meta import REPLY_KINDS, MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from ctwa.wire.cloudapi import MediaInfo
from ctwa.wire.meta import MetaTemplatePage
from tests.sandbox.templates import TEMPLATES, order_update, write_templates

FAST = (0.01, 0.02, 0.03)


@pytest.fixture(scope="module")
def box():
    with RunningSandbox(SandboxSettings(store_callbacks=False)) as sandbox:
        yield sandbox


def get(box, path: str, token: str | None = None, **params) -> httpx.Response:
    token = token or box.settings.meta.token
    return httpx.get(f"{box.urls()['meta_graph']}/{path}", params=params,
                     headers={"Authorization": f"Bearer {token}"})


def test_templates_page_with_metas_cursors(box) -> None:
    waba = box.settings.meta.waba_id
    seen: list[str] = []
    page = get(box, f"{waba}/message_templates", limit=3)
    while True:
        assert page.status_code == 200
        parsed = MetaTemplatePage.model_validate(page.json())
        seen += [t.name for t in parsed.data]
        assert parsed.paging and parsed.paging.cursors and parsed.paging.cursors.after
        if not parsed.paging.next:
            break
        assert "limit=3" in parsed.paging.next and "after=" in parsed.paging.next
        page = httpx.get(parsed.paging.next,
                         headers={"Authorization": f"Bearer {box.settings.meta.token}"})
    names = [t["name"] for t in box.templates]  # the sandbox's own Meta-format templates
    assert seen == names and len(seen) > 3
    before = MetaTemplatePage.model_validate(page.json()).paging.cursors.before  # type: ignore[union-attr]
    back = get(box, f"{waba}/message_templates", limit=3, before=before).json()
    last = (len(names) - 1) // 3 * 3  # where the last page starts
    assert [t["name"] for t in back["data"]] == names[last - 3:last]


def test_templates_filters_and_errors(box) -> None:
    waba = box.settings.meta.waba_id
    one = get(box, f"{waba}/message_templates", name=box.templates[0]["name"]).json()
    assert [t["name"] for t in one["data"]] == [box.templates[0]["name"]]
    assert get(box, f"{waba}/message_templates", token="x").status_code == 401
    assert get(box, f"{waba}/message_templates", limit=0).json()["error"]["code"] == 100
    assert get(box, f"{waba}/message_templates", after="%%%").json()["error"]["code"] == 100
    assert get(box, "123/message_templates").json()["error"]["error_subcode"] == 33


def test_media_by_id_then_downloaded_with_the_token(box) -> None:
    media_id = box.meta.add_media(b"%PDF-1.4 test", "application/pdf")
    info = MediaInfo.model_validate(get(box, media_id).json())
    assert (info.id, info.mime_type, info.file_size) == (media_id, "application/pdf", 13)
    assert info.url.startswith(f"{box.base_url}/meta/media-download/{media_id}")
    token = {"Authorization": f"Bearer {box.settings.meta.token}"}
    assert httpx.get(info.url).status_code == 401
    download = httpx.get(info.url, headers=token)
    assert download.content == b"%PDF-1.4 test"
    assert download.headers["content-type"] == "application/pdf"
    import hashlib

    assert info.sha256 == hashlib.sha256(download.content).hexdigest()
    assert get(box, "999999").json()["error"]["code"] == 100
    assert get(box, media_id, token="x").status_code == 401


def test_the_simulated_user_replies_with_every_kind_and_taps(tmp_path, receiver) -> None:
    templates = write_templates(tmp_path / "t", tap_base=receiver.url)
    meta = MetaSettings(webhook_url=f"{receiver.url}/webhook", mps=0, status_delays=FAST,
                        simulated_user=True, reply_delay=0.0,
                        tap_prefixes=(f"{receiver.url}/c/",))
    with RunningSandbox(SandboxSettings(templates=templates, store_callbacks=False,
                                        meta=meta)) as box:
        graph, token = box.urls()["meta_graph"], box.settings.meta.token
        headers = {"Authorization": f"Bearer {token}"}
        answers = [httpx.post(f"{graph}/{meta.phone_number_id}/messages", headers=headers,
                              json=order_update(suffix="tok-1")) for _ in range(2)]
        wamid = answers[0].json()["messages"][0]["id"]
        assert box.meta.wait_idle(10)
        messages = receiver.messages()
        # media ids the messages carry are served, with the token
        image = next(m for m in messages if m["type"] == "image")["image"]
        info = httpx.get(f"{graph}/{image['id']}", headers=headers).json()
        assert httpx.get(info["url"], headers=headers).content[:3] == b"\xff\xd8\xff"
    # one reply of each kind, to the first copy only (a person answers once)
    assert len(messages) == len(REPLY_KINDS)
    kinds = [m["type"] for m in messages]
    assert set(kinds) == {"text", "image", "document", "audio", "video", "location",
                          "contacts", "button", "interactive", "reaction"}
    for message in messages:
        assert message["from"] == "919000000001" and message["id"].startswith("wamid.")
        if message["type"] == "reaction":
            assert "context" not in message and message["reaction"]["message_id"] == wamid
        else:
            assert message["context"] == {"from": "919999999998", "id": wamid}
    interactive = sorted(m["interactive"]["type"] for m in messages if m["type"] == "interactive")
    assert interactive == ["button_reply", "list_reply"]
    assert next(m for m in messages if m["type"] == "button")["button"]["text"] == "Stop"
    value = next(c["value"] for d in receiver.documents() for e in d["entry"]
                 for c in e["changes"] if "messages" in c["value"])
    assert value["contacts"] == [{"profile": {"name": "Sandbox User"}, "wa_id": "919000000001"}]
    # the tap: a GET of the button's URL with the suffix sent, a phone's User-Agent
    assert receiver.clicks == [{"token": "tok-1", "agent": receiver.clicks[0]["agent"]}]
    assert "Mobile" in receiver.clicks[0]["agent"]
    assert box.meta.state.taps[0]["status"] == 302
    # and `callback convert` makes CleverTap inbound callbacks of those it can represent
    converter = Converter(msgid_map={wamid: "i|1|2|3|0"})
    for n, doc in enumerate(receiver.documents()):
        converter.convert(doc, f"webhook {n}")
    inbound = [c.body for c in converter.result.callbacks if c.to == "inbound"]
    assert {b["type"] for b in inbound} == {"text", "image", "file", "audio", "video",
                                            "location"}
    assert all(b["context"] == {"id": "i|1|2|3|0"} for b in inbound)


def test_urls_not_under_a_tap_prefix_are_not_opened(tmp_path, receiver) -> None:
    templates = write_templates(tmp_path / "t", tap_base=receiver.url)
    meta = MetaSettings(webhook_url=f"{receiver.url}/webhook", mps=0, status_delays=FAST,
                        simulated_user=True, reply_delay=0.0,
                        tap_prefixes=("https://elsewhere.example/",))
    with RunningSandbox(SandboxSettings(templates=templates, store_callbacks=False,
                                        meta=meta)) as box:
        httpx.post(f"{box.urls()['meta_graph']}/{meta.phone_number_id}/messages",
                   headers={"Authorization": f"Bearer {meta.token}"}, json=order_update())
        assert box.meta.wait_idle(10)
    assert receiver.clicks == [] and box.meta.state.taps == []
    assert len(receiver.messages()) == len(REPLY_KINDS)


def test_fixture_templates_cover_every_check() -> None:
    assert {t["status"] for t in TEMPLATES} == {"APPROVED", "PAUSED", "PENDING"}


def test_the_phone_number_answers_a_get(box) -> None:
    number = get(box, box.settings.meta.phone_number_id).json()
    assert number["display_phone_number"] == "919999999998"
    assert number["id"] == box.settings.meta.phone_number_id
    assert get(box, box.settings.meta.phone_number_id, token="x").json()["error"]["code"] == 190


def test_ctwa_callback_convert_and_lint_take_the_mocks_webhooks(tmp_path, receiver, cli) -> None:
    import json

    templates = write_templates(tmp_path / "t", tap_base=receiver.url)
    meta = MetaSettings(webhook_url=f"{receiver.url}/webhook", mps=0, status_delays=FAST,
                        simulated_user=True, reply_delay=0.0)
    with RunningSandbox(SandboxSettings(templates=templates, store_callbacks=False,
                                        meta=meta)) as box:
        answer = httpx.post(f"{box.urls()['meta_graph']}/{meta.phone_number_id}/messages",
                            headers={"Authorization": f"Bearer {meta.token}"},
                            json=order_update())
        assert box.meta.wait_idle(10)
    wamid = answer.json()["messages"][0]["id"]
    hooks = tmp_path / "webhooks.json"
    hooks.write_text(json.dumps(receiver.documents()))
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({wamid: "i|1|2|3|0"}))
    out = tmp_path / "callbacks.yaml"
    result = cli("callback", "convert", str(hooks), "--msgid-map", str(mapping), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert cli("lint", str(out)).exit_code == 0
    import yaml

    text = out.read_text()
    docs = list(yaml.safe_load_all(text))
    assert "unmapped|" not in text
    statuses = [s for d in docs if d and "statuses" in d for s in d["statuses"]]
    assert sorted(s["status"] for s in statuses) == ["delivered", "read", "sent"]
    assert {s["msgId"] for s in statuses} == {"i|1|2|3|0"}
    # 7 inbound: text, image, file, audio, video, location, the quick-reply button as text
    assert len([d for d in docs if d and "statuses" not in d]) == 7


def test_a_users_message_can_be_marked_read(box) -> None:
    number = "919000000077"
    post = httpx.post(f"{box.urls()['meta_graph']}/{box.settings.meta.phone_number_id}/messages",
                      json={"messaging_product": "whatsapp", "status": "read",
                            "message_id": "wamid.nope"},
                      headers={"Authorization": f"Bearer {box.settings.meta.token}"})
    assert post.json()["error"]["code"] == 100  # not a message this number received
    wamid = box.meta.inject(number, "text")
    done = httpx.post(f"{box.urls()['meta_graph']}/{box.settings.meta.phone_number_id}/messages",
                      json={"messaging_product": "whatsapp", "status": "read",
                            "message_id": wamid},
                      headers={"Authorization": f"Bearer {box.settings.meta.token}"})
    assert done.json() == {"success": True} and wamid in box.meta.state.marked_read


def test_paths_graph_does_not_have_answer_graphs_error(box) -> None:
    answer = httpx.post(f"{box.urls()['meta_graph']}/123/media", json={},
                        headers={"Authorization": f"Bearer {box.settings.meta.token}"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
    assert "Unsupported post request" in answer.json()["error"]["error_data"]["details"]

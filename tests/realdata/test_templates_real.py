"""Templates in the shapes real vendors return: Meta's GET pages and creation samples, and
360dialog's records. Each point of the real-data issue (approval, example values, OTP, copy
code label, offer placement, named parameters, list pages) on those fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import respx

from ctwa.infra.errors import ExitCode
from ctwa.send.build import MissingParameters, UnapprovedTemplate, build_template_payload
from ctwa.send.params import TemplateParams, parse_vars

FIXTURES = Path(__file__).parent / "fixtures"
VENDOR = "https://vendor.example/templates/import"
DRY = ("--to", "919876543210", "--waba", "919999999998", "--dry-run")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def meta(name: str) -> dict[str, Any]:
    return next(t for t in fixture("meta_get_page.json")["data"] if t["name"] == name)


def creation(name: str) -> dict[str, Any]:
    return next(t for t in fixture("meta_creation_templates.json") if t["name"] == name)


def build(template: dict[str, Any], params: TemplateParams | None = None, **kw: Any):
    return build_template_payload(template, params or TemplateParams(), to="919876543210",
                                  waba="919999999998", msg_id="i|1|2|3|0", **kw)


@pytest.fixture
def imported(cli, tmp_path) -> Path:
    """The Meta page imported through a vendor that passes Meta's paging through."""
    page = fixture("meta_get_page.json")
    library = tmp_path / "lib"
    with respx.mock:
        respx.get(VENDOR, params__eq={"limit": "50"}).respond(json=page)
        respx.get(VENDOR, params__eq={"limit": "50", "after": page["paging"]["cursors"][
            "after"]}).respond(json={"data": []})
        graph = respx.get(url__startswith="https://graph.facebook.com").respond(json=page)
        result = cli("import-templates", "--url", VENDOR, "--token", "imp-CANARY-0c11",
                     "--library", str(library))
        assert graph.call_count == 0
    assert result.exit_code == 0, result.stderr
    assert "graph.facebook.com" in result.stderr and "EAAJB3ZCZCm0PX" not in result.stderr
    assert "verification_code (en_US) cannot be sent through CleverTap: button 0: OTP" in \
        result.stderr
    return library


def listed(cli, library: Path, *args: str) -> list[dict[str, Any]]:
    result = cli("--json", "templates", "list", "--library", str(library), *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_only_approved_templates_are_sendable(cli, imported) -> None:
    everything = {t["name"]: t for t in listed(cli, imported)}
    assert everything["spring_clearance"]["can_send"] is False
    assert everything["winter_promo"]["can_send"] is False
    assert everything["verification_code"]["can_send"] is False  # OTP
    sendable = {t["name"] for t in listed(cli, imported, "--sendable")}
    assert sendable == {"seasonal_promotion", "order_delivery_update", "order_confirmation",
                        "limited_time_offer_caribbean_pkg_2023", "ramadan_greeting"}
    human = cli("templates", "list", "--library", str(imported))
    assert "no: REJECTED" in human.stdout and "no: PAUSED" in human.stdout
    assert "limited_time_offer_caribbean_pkg_2023" in human.stdout  # whole, piped


def test_list_filters(cli, imported) -> None:
    assert [t["name"] for t in listed(cli, imported, "--status", "rejected")] == [
        "spring_clearance"]
    assert [t["name"] for t in listed(cli, imported, "--language", "ar")] == [
        "ramadan_greeting"]
    assert [t["name"] for t in listed(cli, imported, "--name", "order_*")] == [
        "order_confirmation", "order_delivery_update"]
    empty = cli("templates", "list", "--library", str(imported), "--name", "nothing*")
    assert empty.exit_code == 0 and "no templates matching these filters" in empty.stderr


def test_send_refuses_an_unapproved_template_naming_its_status(cli, imported) -> None:
    refused = cli("send-template", "--template", "spring_clearance", "--var", "x", *DRY,
                  "--library", str(imported))
    assert refused.exit_code == ExitCode.USAGE
    assert "is REJECTED, not APPROVED" in refused.stderr and "--allow-unapproved" in \
        refused.stderr
    allowed = cli("send-template", "--template", "spring_clearance", "--var", "x", *DRY,
                  "--allow-unapproved", "--library", str(imported))
    assert allowed.exit_code == 0, allowed.stderr


@pytest.mark.parametrize(("name", "status"), [
    ("aggressive_offer", "REJECTED"), ("ticket_confirmed", "PENDING"),
    ("flash_deal", "PAUSED"), ("old_promo", "DISABLED"), ("second_chance", "IN_APPEAL")])
def test_360dialog_statuses_in_lower_case_are_refused(cli, name, status) -> None:
    result = cli("send-template", "--template-file", str(FIXTURES / "dialog360_templates.json"),
                 "--template", name, "--var", "x", *DRY)
    assert result.exit_code == ExitCode.USAGE and f"is {status}, not APPROVED" in result.stderr


def test_360dialog_approved_record_builds(cli) -> None:
    result = cli("send-template", "--template-file", str(FIXTURES / "dialog360_templates.json"),
                 "--template", "sale_start", "--var", "Ann", *DRY)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["template"]["namespace"] == "sale_start"


def test_a_list_page_given_as_a_template_file_says_how_to_pick(cli) -> None:
    result = cli("send-template", "--template-file", str(FIXTURES / "meta_get_page.json"),
                 *DRY)
    assert result.exit_code == ExitCode.USAGE
    assert "is a template list page holding 8 templates" in result.stderr
    assert "--template NAME" in result.stderr
    picked = cli("send-template", "--template-file", str(FIXTURES / "meta_get_page.json"),
                 "--template", "order_confirmation", "--var", "Jessica", "--var", "A1",
                 *DRY)
    assert picked.exit_code == 0, picked.stderr


def test_a_bare_array_of_templates_says_how_to_pick(cli) -> None:
    result = cli("send-template", "--template-file",
                 str(FIXTURES / "meta_creation_templates.json"), *DRY)
    assert result.exit_code == ExitCode.USAGE and "a list of templates holding 4" in \
        result.stderr


def test_an_upload_handle_is_refused_by_name_with_the_fix() -> None:
    with pytest.raises(MissingParameters) as caught:
        build(creation("seasonal_promotion_image"), use_examples=True)
    missing = caught.value.missing
    assert ("header media URL (--header-media URL): the template's example is a Meta upload "
            "handle (4::...), not a URL") in missing


def test_a_url_example_that_is_only_the_variable_part_is_the_suffix() -> None:
    """Meta's creation example gives `summer2023` for `https://www.luckyshrub.com/shop?promo=
    {{1}}`: the variable part alone, sent as the suffix (not refused, not doubled)."""
    params = TemplateParams(header_media="https://cdn.example/p.png")
    payload, _ = build(creation("seasonal_promotion_image"), params, use_examples=True)
    (url_button,) = [c for c in payload.to_wire()["components"] if c.get("type") == "button"]
    assert url_button["parameters"][0]["text"] == "summer2023"


def test_a_whole_url_example_with_another_prefix_is_refused_naming_both() -> None:
    template = json.loads(json.dumps(creation("seasonal_promotion_image")))
    for component in template["components"]:
        for button in component.get("buttons") or []:
            if button.get("type") == "URL":
                button["example"] = ["https://shop.example.com/promo/summer2023"]
    with pytest.raises(MissingParameters) as caught:
        build(template, TemplateParams(header_media="https://cdn.example/p.png"),
              use_examples=True)
    (button,) = [m for m in caught.value.missing if m.startswith("button 0")]
    assert "'https://shop.example.com/promo/summer2023' does not start with the URL" in button
    assert "'https://www.luckyshrub.com/shop?promo='" in button


#: Meta's carousel template documentation, as written there: each card's URL button example
#: is only the variable part (`BLUE_ELF` for `https://www.luckyshrub.com/rare-succulents/{{1}}`).
LUCKYSHRUB_CAROUSEL = {
    "name": "summer_succulents", "language": "en_US", "status": "APPROVED",
    "category": "MARKETING", "components": [
        {"type": "BODY", "text": "Rare succulents for sale! {{1}}, add these to your "
         "collection!", "example": {"body_text": [["Pablo"]]}},
        {"type": "CAROUSEL", "cards": [{"components": [
            {"type": "HEADER", "format": "IMAGE",
             "example": {"header_handle": [f"https://cdn.example.com/{plant}.png"]}},
            {"type": "BODY", "text": "Add a touch of elegance with {{1}}.",
             "example": {"body_text": [[plant]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Send me more like this!"},
                {"type": "URL", "text": "Shop", "url":
                 "https://www.luckyshrub.com/rare-succulents/{{1}}", "example": [code]}]}]}
            for plant, code in (("Blue Elf", "BLUE_ELF"), ("Buddha's Temple",
                                                         "BUDDHA"))]}]}


def test_carousel_card_url_examples_that_are_the_variable_part_build(cli, tmp_path) -> None:
    path = tmp_path / "carousel.json"
    path.write_text(json.dumps(LUCKYSHRUB_CAROUSEL))
    result = cli("send-template", "--template-file", str(path), "--examples", *DRY)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    cards = next(c for c in payload["components"] if c.get("type") == "carousel")["cards"]
    suffixes = [p["text"] for card in cards for c in card["components"]
                if c.get("subType") == "dynamicUrl" for p in c["parameters"]]
    assert suffixes == ["BLUE_ELF", "BUDDHA"]


def test_an_expired_signed_cdn_link_warns_with_its_date() -> None:
    payload, notes = build(meta("order_delivery_update"), use_examples=True)
    assert any("expired on 2024-04-30" in n and "--header-media URL" in n for n in notes)
    button = payload.to_wire()["components"][-1]
    assert button["parameters"][0]["text"] == "566701"  # the example minus the URL's prefix


def test_lint_warns_on_an_expired_media_url_in_a_payload(cli, tmp_path) -> None:
    payload, _ = build(meta("order_delivery_update"), use_examples=True)
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload.to_wire()))
    result = cli("lint", str(path))
    assert "mediaURL: the signed link expired on 2024-04-30" in result.stdout + result.stderr


def test_offer_copy_code_and_url_prefix_on_metas_lto_template() -> None:
    template = meta("limited_time_offer_caribbean_pkg_2023")
    with pytest.raises(MissingParameters) as caught:
        build(template, use_examples=True)
    assert any("'https://awesomedestinations.com/offers?ref=n3mtql' does not start with" in m
               for m in caught.value.missing)
    payload, _ = build(template, TemplateParams(buttons={1: "CARIBE25"}), use_examples=True)
    kinds = [c.get("type") for c in payload.to_wire()["components"]]
    assert kinds == ["header", "body", "limited_time_offer", "button", "button"]  # the spec's
    copy = payload.to_wire()["components"][3]
    assert copy["buttonText"] == "Copy offer code"
    assert copy["parameters"][0]["coupon_code"] == "CARIBE25"


def test_otp_templates_as_meta_returns_them_are_refused() -> None:
    from ctwa.send.build import UnsupportedTemplate

    with pytest.raises(UnsupportedTemplate, match="OTP"):
        build(meta("verification_code"), use_examples=True)


def test_unapproved_is_refused_in_the_library_api_too() -> None:
    with pytest.raises(UnapprovedTemplate, match="PAUSED"):
        build(meta("winter_promo"), TemplateParams(vars=parse_vars(["Ann"])))


def test_named_parameters_show_which_value_goes_to_which_name(cli, tmp_path) -> None:
    from ctwa.templates.library import Entry, TemplateLibrary

    library = TemplateLibrary(tmp_path / "lib")
    path = library.put(creation("order_confirmation_named"))
    library.save_index({"order_confirmation_named|en_US": Entry(
        "order_confirmation_named", "en_US", path.name)})
    result = cli("templates", "show", "order_confirmation_named", "--vars", "Jessica",
                 "--vars", "ship_date=March 3", "--library", str(tmp_path / "lib"))
    assert result.exit_code == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    order = lines.index("sent in this order (the payload carries values, not names):")
    assert lines[order + 1:order + 5] == [
        "header parameter 1: {{order_number}} = (no value given)",
        "body parameter 1: {{first_name}} = Jessica",
        "body parameter 2: {{order_number}} = (no value given)",
        "body parameter 3: {{ship_date}} = March 3"]


def test_bare_values_fill_named_placeholders_in_sending_order() -> None:
    payload, notes = build(meta("order_confirmation"),
                           TemplateParams(vars=parse_vars(["Jessica", "SKB-1"])))
    body = payload.to_wire()["components"][0]["body"]
    assert [p["text"] for p in body["parameters"]] == ["Jessica", "SKB-1"]
    assert notes == []


def test_templates_lint_on_metas_creation_samples(cli) -> None:
    result = cli("templates", "lint", str(FIXTURES / "meta_creation_templates.json"))
    assert result.exit_code == ExitCode.FAILED
    text = result.stdout + result.stderr
    assert "meta_creation_templates.json[2]" in text and "legacy category 'SHIPPING_UPDATE'" \
        in text
    assert "2 HEADER components; a template has at most one" in text
    assert "unable to extract tag" not in text and "Input should" not in text


def test_metas_button_and_name_limits(cli, tmp_path) -> None:
    many = {"name": "x" * 513, "language": "en", "components": [
        {"type": "BODY", "text": "hi"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": f"b{i}", "url": "https://a.b"}
                                        for i in range(11)]}]}
    path = tmp_path / "many.json"
    path.write_text(json.dumps(many))
    text = cli("templates", "lint", str(path))
    output = text.stdout + text.stderr
    assert "11 buttons; Meta allows 10" in output and "11 URL buttons; Meta allows 2" in output
    assert "name is 513 characters; Meta allows 512" in output


def test_a_360dialog_list_given_to_import_is_named(cli, tmp_path) -> None:
    with respx.mock:
        respx.get(url__startswith=VENDOR).respond(json=fixture("dialog360_templates.json"))
        result = cli("import-templates", "--url", VENDOR, "--library", str(tmp_path))
    assert result.exit_code == ExitCode.FAILED
    assert "360dialog's `waba_templates`" in result.stderr

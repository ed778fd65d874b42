"""Meta template + parameters -> CleverTap payload: golden tests against the spec's samples."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctwa.infra.errors import InputError
from ctwa.send.build import MissingParameters, UnsupportedTemplate, build_template_payload
from ctwa.send.params import TemplateParams, load_params_file, parse_buttons, parse_vars
from ctwa.send.samples import SAMPLE_NAMES, load_sample
from ctwa.wire.outbound import validation_payload
from tests.conftest import EXAMPLES

TO, WABA, MSG = "919999999999", "919999999998", "1|2|3|4|5"


def template(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / "templates" / f"{name}.json").read_text())


def build(tpl: dict[str, Any], params: TemplateParams | None = None, **kw: Any):
    payload, _ = build_template_payload(tpl, params or TemplateParams(), to=TO, waba=WABA,
                                        msg_id=MSG, **kw)
    return payload.to_wire()


def expected_sample(name: str) -> dict[str, Any]:
    sample = load_sample(name)
    # The spec's loose samples: their body text does not contain the parameter as given.
    # Repaired to the value that the text shows (letter case only).
    if name == "text-footer":
        sample["components"][0]["body"]["parameters"][0]["text"] = "sample"
    if name in ("text", "media"):
        body = next(c for c in sample["components"] if c.get("type") == "body")
        body["body"]["parameters"][0]["text"] = "User"
    sample.update(to=TO, wabaNumber=WABA, msgId=MSG)
    return sample


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_golden_meta_template_builds_the_spec_sample(name: str) -> None:
    params = load_params_file(EXAMPLES / "params" / f"{name}.yaml")
    assert build(template(name), params) == expected_sample(name)


def test_golden_validation_payload() -> None:
    params = load_params_file(EXAMPLES / "params" / "verify.yaml")
    built = build(template("verify"), params)
    assert built == validation_payload(to=TO, waba=WABA, msg_id=MSG).to_wire()


def _without_non_examples(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop what Meta templates carry no example for: file names, offer expiry, customProps."""
    components = []
    for comp in payload["components"]:
        if "customProps" in comp:
            continue
        if comp.get("type") == "header" and comp["header"]["type"] == "file":
            comp["header"]["file"].pop("filename", None)
        if comp.get("type") == "limited_time_offer":
            comp["parameters"][0]["limited_time_offer"]["expiration_time_ms"] = 0
        components.append(comp)
    return {**payload, "components": components}


#: The spec's image-cta and media samples give header examples that are no URLs ("httpa://...",
#: "example.com/image.png"): each is refused as the example it is, tested below.
NOT_URL_EXAMPLES = {"image-cta", "media"}


@pytest.mark.parametrize("name", [n for n in SAMPLE_NAMES if n not in NOT_URL_EXAMPLES])
def test_examples_fill_every_value_the_template_has_an_example_for(name: str) -> None:
    built = build(template(name), use_examples=True)
    assert _without_non_examples(built) == _without_non_examples(expected_sample(name))


def test_a_header_example_that_is_not_a_url_is_refused_by_name() -> None:
    with pytest.raises(MissingParameters) as caught:
        build(template("image-cta"), use_examples=True)
    assert caught.value.missing == [
        "header media URL (--header-media URL): the template's example is "
        "'httpa://www.example.com/image.png', not an http(s) URL"]


def test_examples_give_offers_a_future_expiry() -> None:
    import time

    built = build(template("lto"), use_examples=True)
    expiry = built["components"][2]["parameters"][0]["limited_time_offer"]["expiration_time_ms"]
    assert expiry > time.time() * 1000


def test_named_parameters() -> None:
    tpl = {"name": "welcome", "language": "en_US", "parameter_format": "NAMED", "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hi {{first_name}}",
         "example": {"header_text_named_params": [{"param_name": "first_name",
                                                   "example": "Ann"}]}},
        {"type": "BODY", "text": "Order {{order_id}} for {{first_name}} ships {{day}}",
         "example": {"body_text_named_params": [
             {"param_name": "order_id", "example": "A1"},
             {"param_name": "first_name", "example": "Ann"},
             {"param_name": "day", "example": "today"}]}}]}
    params = TemplateParams(vars=parse_vars(["first_name=John", "order_id=77", "day=Monday"]),
                            header_vars={"first_name": "John"})
    built = build(tpl, params)
    header, body = built["components"]
    assert header["header"]["text"] == {"text": "Hi John",
                                        "parameters": [{"type": "text", "text": "John"}]}
    assert body["body"]["text"] == "Order 77 for John ships Monday"
    assert [p["text"] for p in body["body"]["parameters"]] == ["77", "John", "Monday"]
    assert build(tpl, use_examples=True)["components"][1]["body"]["text"] == (
        "Order A1 for Ann ships today")


def test_positional_order_follows_numbers_not_appearance() -> None:
    tpl = {"name": "t", "language": "en", "components": [
        {"type": "BODY", "text": "{{2}} then {{1}} then {{2}}"}]}
    built = build(tpl, TemplateParams(vars=parse_vars(["a", "b"])))
    assert built["components"][0]["body"] == {
        "text": "b then a then b",
        "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}


def test_missing_parameters_are_all_named_with_their_place() -> None:
    tpl = template("carousel")
    with pytest.raises(MissingParameters) as info:
        build(tpl, TemplateParams(vars={"1": "x"}))
    missing = info.value.missing
    assert "card 0 header media URL (cards[].header_media in --params)" in missing
    assert "card 1 body {{2}}" in missing
    assert "card 0 button 0 URL suffix (--button 0=...)" in missing
    assert "body {{1}}" not in missing
    assert info.value.exit_code == 2


def test_missing_top_level_values() -> None:
    with pytest.raises(MissingParameters) as info:
        build(template("lto"))
    assert info.value.missing == [
        "header media URL (--header-media URL)", "body {{1}}",
        "offer expiration (--offer-expires)", "button 0 coupon code (--coupon)",
        "button 1 URL suffix (--button 1=...)"]


def test_location_header() -> None:
    from ctwa.send.params import parse_location

    tpl = {"name": "store", "language": "en", "components": [
        {"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Visit us"}]}
    with pytest.raises(MissingParameters, match="location"):
        build(tpl)
    built = build(tpl, TemplateParams(location=parse_location("40.7128,-74.0060,Central Park,"
                                                               "New York, NY 10024")))
    assert built["components"][0]["header"] == {"type": "location", "location": {
        "latitude": "40.7128", "longitude": "-74.0060", "name": "Central Park",
        "address": "New York, NY 10024"}}


def test_video_header_and_offer_without_expiry() -> None:
    tpl = {"name": "v", "language": "en", "components": [
        {"type": "HEADER", "format": "VIDEO"}, {"type": "BODY", "text": "Watch"},
        {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Sale",
                                                              "has_expiration": False}}]}
    built = build(tpl, TemplateParams(header_media="https://x/v.mp4"))
    assert built["components"][0]["header"] == {"type": "video",
                                                "video": {"mediaURL": "https://x/v.mp4"}}
    assert built["components"][2] == {"type": "limited_time_offer", "text": "Sale",
                                      "parameters": []}


@pytest.mark.parametrize(("part", "words"), [
    ({"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Go"}]}, "button 0: FLOW"),
    ({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "a"},
                                     {"type": "OTP", "otp_type": "COPY_CODE"}]}, "button 1: OTP"),
    ({"type": "BUTTONS", "buttons": [{"type": "CATALOG", "text": "View"}]}, "CATALOG"),
    ({"type": "BUTTONS", "buttons": [{"type": "MPM", "text": "View"}]}, "MPM"),
    ({"type": "HEADER", "format": "PRODUCT"}, "header format PRODUCT"),
])
def test_unsendable_parts_are_refused_by_name(part: dict[str, Any], words: str) -> None:
    tpl = {"name": "shop", "language": "en",
           "components": [{"type": "BODY", "text": "hi"}, part]}
    with pytest.raises(UnsupportedTemplate) as info:
        build(tpl)
    assert words in str(info.value) and "'shop'" in str(info.value)


def test_unused_values_are_noted() -> None:
    tpl = {"name": "t", "language": "en", "components": [{"type": "BODY", "text": "hi {{1}}"}]}
    _, notes = build_template_payload(
        tpl, TemplateParams(vars=parse_vars(["a", "b"]), buttons=parse_buttons(["3=x"])),
        to=TO, waba=WABA, msg_id=MSG)
    assert notes == ["--var 2 is not used by the template",
                     "--button 3 is not a dynamic URL button of the template"]


def test_custom_props_go_last() -> None:
    built = build(template("text"), TemplateParams(vars={"1": "x"}, props={"a": "1", "b": "2"}))
    assert built["components"][-1] == {"customProps": [{"a": "1"}, {"b": "2"}]}


@pytest.mark.parametrize("to", ["+919876543210", "919876543210", "+91 98765-43210"])
def test_to_with_or_without_plus(to: str) -> None:
    payload, _ = build_template_payload(template("text"), TemplateParams(vars={"1": "x"}),
                                        to=to, waba=WABA, msg_id=MSG)
    assert payload.to.lstrip("+") == "919876543210"


def test_bad_to_is_refused() -> None:
    with pytest.raises(InputError, match="not a phone number"):
        build_template_payload(template("text"), TemplateParams(vars={"1": "x"}),
                               to="call-me", waba=WABA, msg_id=MSG)


def test_invalid_meta_template_names_the_path() -> None:
    with pytest.raises(InputError, match=r"\$.language"):
        build({"name": "t", "components": []})

"""Parsers of user input: strict, clear errors, and never a crash (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctwa.infra.errors import InputError
from ctwa.send.params import (
    TemplateParams,
    load_params_file,
    parse_buttons,
    parse_location,
    parse_offer_expiry,
    parse_props,
    parse_vars,
)


def test_vars_positional_named_and_bare() -> None:
    assert parse_vars(["John", "2=Smith", "first_name=Ann", "x"]) == {
        "1": "John", "2": "Smith", "first_name": "Ann", "3": "x"}
    assert parse_vars(["01=a"]) == {"1": "a"}
    assert parse_vars(["1=a=b"]) == {"1": "a=b"}
    assert parse_vars(["a b=c"]) == {"1": "a b=c"}  # not a key: a bare value


@pytest.mark.parametrize(("values", "words"), [
    (["1=a", "1=b"], "given twice"), (["0=a"], "start at 1"), (["a", "1=b"], "given twice")])
def test_vars_errors(values, words) -> None:
    with pytest.raises(InputError, match=words):
        parse_vars(values)


@given(st.lists(st.text(max_size=12), max_size=6))
def test_vars_never_crash_and_bare_values_keep_order(values: list[str]) -> None:
    try:
        parsed = parse_vars(values)
    except InputError as exc:
        assert exc.exit_code == 2
        return
    assert len(parsed) == len(values)


def test_buttons_and_props() -> None:
    assert parse_buttons(["0=order/1", "2=x=y"]) == {0: "order/1", 2: "x=y"}
    assert parse_props(["Key1=v", " k =a=b"]) == {"Key1": "v", "k": "a=b"}
    with pytest.raises(InputError, match="INDEX=VALUE"):
        parse_buttons(["first=x"])
    with pytest.raises(InputError, match="twice"):
        parse_buttons(["0=a", "0=b"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_props(["novalue"])


@given(st.text(max_size=20))
def test_buttons_and_props_never_crash(text: str) -> None:
    for parser in (parse_buttons, parse_props):
        try:
            parsed = parser([text])
        except InputError as exc:
            assert exc.exit_code == 2
            continue
        assert len(parsed) == 1 and "=" in text


def test_location() -> None:
    loc = parse_location("40.7128, -74.0060,Central Park,New York, NY 10024")
    assert (loc.latitude, loc.longitude, loc.name, loc.address) == (
        "40.7128", "-74.0060", "Central Park", "New York, NY 10024")
    assert parse_location("1,2").name is None


@pytest.mark.parametrize(("raw", "words"), [
    ("1", "LAT,LONG"), ("91,0", "between -90 and 90"), ("0,181", "between -180 and 180"),
    ("a,b", "not a number"), ("nan,0", "between")])
def test_location_errors(raw, words) -> None:
    with pytest.raises(InputError, match=words):
        parse_location(raw)


@given(st.text(max_size=40))
def test_location_never_crashes(text: str) -> None:
    try:
        loc = parse_location(text)
    except InputError:
        return
    assert -90 <= float(loc.latitude) <= 90 and -180 <= float(loc.longitude) <= 180


def test_offer_expiry() -> None:
    assert parse_offer_expiry("1712081380237") == 1712081380237
    assert parse_offer_expiry("2024-04-02T18:09:40.237Z") == 1712081380237
    assert parse_offer_expiry("2024-04-02T18:09:40.237") == 1712081380237
    assert parse_offer_expiry("2024-04-02T23:39:40.237+05:30") == 1712081380237
    with pytest.raises(InputError, match="looks like epoch seconds"):
        parse_offer_expiry("1712081380")
    with pytest.raises(InputError, match="not epoch milliseconds or an ISO time"):
        parse_offer_expiry("next tuesday")


@given(st.text(max_size=30))
def test_offer_expiry_never_crashes(text: str) -> None:
    try:
        value = parse_offer_expiry(text)
    except InputError:
        return
    assert isinstance(value, int)


def test_params_file_all_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "vars: {1: John, 2: 5}\nheader_var: Hi\nheader_media: https://x/i.png\n"
        "header_filename: a.pdf\nlocation: {latitude: 1, longitude: 2, name: N}\n"
        "buttons: [s0, s1]\ncoupon: 50OFF\noffer_expires: 2024-04-02T18:09:40.237Z\n"
        "props: {a: 1}\ncards:\n  - {header_media: https://c, vars: [x], buttons: {1: y}}\n")
    params = load_params_file(path)
    assert params.vars == {"1": "John", "2": "5"} and params.header_vars == {"1": "Hi"}
    assert params.location.name == "N" and params.buttons == {0: "s0", 1: "s1"}
    assert params.offer_expires_ms == 1712081380237 and params.props == {"a": "1"}
    assert params.cards[0].buttons == {1: "y"} and params.cards[0].vars == {"1": "x"}


@pytest.mark.parametrize(("text", "words"), [
    ("varz: [a]", "unknown key 'varz'"), ("- a", "expected a mapping"),
    ("vars: [[a]]", r"vars\[0\]: expected a single value"),
    ("buttons: {first: x}", "button keys are indexes"), ("vars: [a", ":1: not valid YAML"),
    ("cards: [1]", r"cards\[0\]: expected a mapping")])
def test_params_file_errors_name_file_and_key(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=words) as info:
        load_params_file(path)
    assert str(path) in str(info.value)


def test_flags_override_the_file() -> None:
    base = TemplateParams(vars={"1": "file", "2": "file"}, coupon="FILE")
    merged = base.overlay(TemplateParams(vars={"1": "flag"}))
    assert merged.vars == {"1": "flag", "2": "file"} and merged.coupon == "FILE"


@pytest.mark.parametrize("key", ["cards", "location"])
@pytest.mark.parametrize("value", [5, -10**20, 1.5, True, [1], [[1]]])
def test_a_params_file_value_of_the_wrong_kind_is_one_line(key, value, cli, tmp_path) -> None:
    from ctwa.send.params import params_from_mapping

    if key == "cards" and isinstance(value, list):
        value = {"a": value}  # a mapping where the list of cards belongs
    with pytest.raises(InputError, match=f"p.yaml: {key}"):
        params_from_mapping({key: value}, "p.yaml")
    path = tmp_path / "p.json"
    path.write_text(json.dumps({key: value}))
    done = cli("lint", str(path))  # lint reads a params file as send-template does
    assert done.exit_code == 1 and "(params)" in done.stdout, done.stdout + done.stderr

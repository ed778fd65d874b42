"""The E.164 shortcut must agree with phonenumbers.parse on every number it decides."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from ctwa.upload.phones import _fast, to_e164


def slow(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


numbers = st.builds(lambda cc, rest: f"+{cc}{rest}",
                    st.sampled_from(sorted(COUNTRY_CODE_TO_REGION_CODE)),
                    st.text(alphabet="0123456789", min_size=1, max_size=14))


@settings(max_examples=3000, deadline=None)
@given(numbers)
def test_shortcut_agrees_with_parse(text: str) -> None:
    fast = _fast(text)
    if fast is not None:
        assert fast == slow(text) == text


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_every_regions_example_numbers(region: str) -> None:
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        assert to_e164(text, None) == (slow(text), None)


def test_free_form_and_national_numbers_go_the_slow_way() -> None:
    assert to_e164("+1 (415) 555-2671", None) == ("+14155552671", None)
    assert to_e164("098765 43210", "IN") == ("+919876543210", None)
    assert to_e164("+44 (0)20 7946 0958", None) == ("+442079460958", None)
    assert to_e164("+390612345678", None) == ("+390612345678", None)  # Italian leading zero
    assert to_e164("4155552671", None)[1].startswith("phone has no + and country code")
    assert "not a valid number" in to_e164("+1415", None)[1]

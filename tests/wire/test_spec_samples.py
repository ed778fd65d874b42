"""Golden tests: every sample of the spec parses into the right model, lints with exactly the
expected ERRATA warnings, and round-trips to a canonical form that lints clean."""

from __future__ import annotations

import json

import pytest

from ctwa.wire.kinds import KINDS, detect_kind
from ctwa.wire.lint import lint_document
from tests.conftest import SPEC_SAMPLES

# sample -> (kind, ERRATA rows of its warnings, ERRATA rows of its errors)
EXPECTED: dict[str, tuple[str, list[int], list[int]]] = {
    "template-text-footer": ("template", [4], []),
    "template-image-cta": ("template", [], []),
    "template-text": ("template", [], []),
    "template-media": ("template", [], [6]),
    "template-lto": ("template", [], []),
    "template-multi-button": ("template", [], []),
    "template-carousel": ("template", [], []),
    "template-custom-kv": ("template", [], []),
    "freeform-audio": ("freeform", [3], []),
    "freeform-image": ("freeform", [3], []),
    "freeform-file": ("freeform", [3], []),
    "validation-wrapped": ("validation", [13], []),
    "response-success": ("response", [], []),
    "response-failure-2000": ("response", [], []),
    "response-500": ("response", [18], []),
    "response-429": ("response", [], []),
    "response-403": ("response", [], []),
    "status-sent": ("status", [], []),
    "status-delivered": ("status", [], []),
    "status-read": ("status", [], []),
    "status-failed": ("status", [], []),
    "status-clicked": ("status", [11, 11], []),
    "status-delivered-sample": ("status", [], []),
    "status-failed-sample": ("status", [19], []),  # 1004 titled "Invalid phone number."
    "status-click-generic": ("status", [11, 11, 12], []),
    "inbound-document": ("inbound", [], []),
    "inbound-location": ("inbound", [2], []),
    "meta-page-basic": ("meta-page", [], []),
    "meta-page-lto": ("meta-page", [], []),
    "meta-page-carousel": ("meta-page", [], []),
    "upload-request": ("upload", [], []),
}


#: Samples whose media URLs are no URLs ("www.example.com/...", "httpa://..."): lint warns.
NOT_URL_MEDIA = {"freeform-audio": 1, "freeform-image": 1, "freeform-file": 1,
                 "template-image-cta": 1, "template-media": 1}


def _errata_warnings(result) -> list[int | None]:
    return sorted(p.errata for p in result.warnings if "is not an http(s) URL" not in p.message)


def load(name: str):
    return json.loads((SPEC_SAMPLES / f"{name}.json").read_text())


def test_every_sample_file_is_covered() -> None:
    on_disk = {p.stem for p in SPEC_SAMPLES.glob("*.json")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_is_detected_as_its_kind(name: str) -> None:
    assert detect_kind(load(name)) == EXPECTED[name][0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_lints_with_exactly_the_expected_problems(name: str) -> None:
    kind, warnings, errors = EXPECTED[name]
    result = lint_document(load(name), source=name)
    assert result.kind == kind
    assert _errata_warnings(result) == sorted(warnings), result.problems
    media = [p for p in result.warnings if "is not an http(s) URL" in p.message]
    assert len(media) == NOT_URL_MEDIA.get(name, 0), result.problems
    assert sorted(p.errata for p in result.errors) == sorted(errors), result.problems


@pytest.mark.parametrize("name", sorted(n for n, (_, _, errors) in EXPECTED.items() if not errors))
def test_sample_round_trips_to_canonical_form(name: str) -> None:
    kind = EXPECTED[name][0]
    first = lint_document(load(name), kind)
    _, variant_notes = KINDS[kind].normalize(load(name))
    canonical = KINDS[kind].adapter.dump_python(first.value, mode="json", by_alias=True,
                                                exclude_none=True)
    again = lint_document(json.loads(json.dumps(canonical)), kind)
    assert again.ok
    # every variant is gone; only content warnings (e.g. a failure without a code) remain
    assert again.problems == [p for p in first.problems if p not in variant_notes.problems]
    assert again.value == first.value


def test_repaired_media_sample_lints_clean_once_indexes_are_fixed() -> None:
    doc = load("template-media")
    doc["components"][3]["index"] = 1
    doc["components"][0]["header"]["image"]["mediaURL"] = "https://example.com/image.png"
    result = lint_document(doc)
    assert result.ok and not result.problems, result.problems


def test_canonical_forms_use_the_errata_spellings() -> None:
    footer = lint_document(load("template-text-footer")).value
    assert footer.to_wire()["components"][1] == {"type": "footer", "footer": "this is footer"}
    assert footer.to_wire()["payloadVersion"] == 0.1
    audio = lint_document(load("freeform-audio")).value
    assert audio.to_wire()["msgId"] == "25596363|1639561857|20220227|25596363"
    assert "msg_id" not in audio.to_wire()
    click = lint_document(load("status-click-generic")).value
    entry = click.to_wire()["statuses"][0]
    assert entry["status"] == "clicked" and entry["timestamp"] == "1435322805"
    assert "ts" not in entry
    location = lint_document(load("inbound-location")).value
    assert location.to_wire()["payloadVersion"] == "0.1"
    assert location.to_wire()["from"] == "919999999999"
    validation = lint_document(load("validation-wrapped")).value
    assert "body" not in validation.to_wire()
    assert validation.to_wire()["template"]["namespace"] == "whatsapp:hsm:technology:generic:verify"

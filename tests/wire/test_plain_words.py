"""No user-facing lint message carries pydantic's or Python's own wording, whatever the input
(hypothesis over arbitrary JSON, for every wire format and for detection)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ctwa.wire.kinds import KINDS
from ctwa.wire.lint import lint_document

INTERNALS = ("Input should", "Value error", "validation error", "discriminator", "[type=",
             "Traceback", "pydantic", "union_tag", "model_type", "Field required")

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(
    max_size=8)
keys = st.sampled_from(["type", "status", "statuses", "msgId", "timestamp", "from", "text",
                        "body", "components", "template", "name", "language", "d", "error",
                        "code", "image", "mediaURL", "index", "subType", "data", "entry",
                        "value", "messages", "object", "processed", "header"]) | st.text(
    max_size=5)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    keys, inner, max_size=6), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(doc=documents, kind=st.sampled_from([None, *KINDS]))
def test_problems_are_in_ctwas_words(doc, kind) -> None:
    result = lint_document(doc, kind)
    text = json.dumps([p.as_dict() for p in result.problems])
    assert not any(word in text for word in INTERNALS), text

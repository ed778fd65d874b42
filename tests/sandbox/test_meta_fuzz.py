"""Hypothesis over what a sender may post to the mock Cloud API: whatever the body, Meta's
answer comes back (a wamid, or a Graph error with a code the mock documents), never a crash,
and a refusal's words are Meta's, not pydantic's."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctwa.sandbox.meta.templates import TemplateBook, check_send
from ctwa.wire.cloudapi import ERRORS, parse_request
from tests.sandbox.templates import GOOD_REQUESTS, TEMPLATES

BOOK = TemplateBook(TEMPLATES)
scalars = (st.none() | st.booleans() | st.integers(min_value=-10**12, max_value=10**12)
           | st.floats(allow_nan=False) | st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: Any) -> Any:
    """A good request with one place deleted, replaced or given an extra key."""
    doc = copy.deepcopy(GOOD_REQUESTS[draw(st.sampled_from(sorted(GOOD_REQUESTS)))])
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["delete", "replace", "extra"]))
    if action == "delete":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = draw(values)
    elif isinstance(parent[path[-1]], dict):
        parent[path[-1]][draw(st.text(min_size=1, max_size=6))] = draw(values)
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_any_body_gets_metas_answer(doc) -> None:
    request, problems = parse_request(doc)
    if request is None:
        assert problems
        for code, details in problems:
            assert code in ERRORS and details
            assert "pydantic" not in details and "Value error" not in details
            assert "Input should" not in details and "validation error" not in details
        return
    if request.template is not None:
        refusal = check_send(request.template, BOOK)
        assert refusal is None or (refusal[0] in ERRORS and refusal[1])


@settings(max_examples=200, deadline=None)
@given(values)
def test_any_json_at_all(doc) -> None:
    request, problems = parse_request(doc)
    assert request is not None or (problems and all(code in ERRORS for code, _ in problems))

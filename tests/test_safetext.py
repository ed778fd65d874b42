"""Remote text made safe once (issue 25 items 5, 7, 10, 11, 12; issue 28 item 2): masking works
on values, never on serialised text, so every ``--json`` document parses back; control
characters and lone surrogates never reach a writer; secrets in every registered form are
masked; Rich markup in names is text."""

from __future__ import annotations

import base64
import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctwa.infra import masking
from ctwa.infra.safetext import escape_controls, has_unsafe, safe_text, safe_value

#: Any text a remote may send: every code point, lone surrogates included.
ANY_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF,
                                 categories=None), max_size=60)
#: Text that looks like what masking rewrites: URLs with secret query values, userinfo.
URLISH = st.builds(lambda a, q, v, b: f"{a}https://u:{v}@x/m/1?{q}={v}{b}", ANY_TEXT,
                   st.sampled_from(["sig", "token", "access_token", "api_key", "signature"]),
                   ANY_TEXT, ANY_TEXT)
TEXTS = st.one_of(ANY_TEXT, URLISH)
DOCS = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), TEXTS),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(TEXTS, inner, max_size=4)),
                    max_leaves=12)


def _no_raw_controls(text: str) -> bool:
    return not has_unsafe(text)


def test_escape_controls_keeps_lines_and_makes_escapes_visible() -> None:
    assert escape_controls("a\x1b[2Jb\x1b]0;title\x07c") == "a\\x1b[2Jb\\x1b]0;title\\x07c"
    assert escape_controls("line\nnext\ttab") == "line\nnext\ttab"
    assert escape_controls("line\nnext", keep_lines=False) == "line\\nnext"
    assert escape_controls("crlf\r\nbare\r") == "crlf\nbare\\r"
    assert escape_controls("half \ud83d emoji") == "half \ufffd emoji"
    assert escape_controls("c1 \x9b and \x85 \ufffe") == "c1 \\x9b and \\x85 \\ufffe"
    assert escape_controls("plain text, emoji \U0001f600") == "plain text, emoji \U0001f600"


def test_safe_text_caps_idempotently() -> None:
    once = safe_text("x" * 500, limit=100)
    assert len(once) <= 100 and once.endswith("(500 characters)")
    assert safe_text(once, limit=100) == once


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, secret=st.text(st.characters(codec="utf-8"), min_size=3, max_size=12))
def test_every_json_document_parses_back_masked_and_clean(doc, secret) -> None:
    """Issue 28: whatever strings a ``--json`` document holds (escaped quotes after a ``sig=``
    value, backslashes, controls, surrogates), the document printed parses back, holds no
    registered secret and no raw control character."""
    import contextlib
    import io

    from ctwa.cli.output import Output

    masking.forget_all()
    masking.register_secret(secret)
    with contextlib.redirect_stdout(io.StringIO()) as captured:
        Output(json_mode=True).stdout_json({"body": json.dumps(doc), "doc": doc,
                                     "url": f"https://x/media/1?sig={secret}\""})
    printed = captured.getvalue()
    parsed = json.loads(printed)
    assert _no_raw_controls(printed)
    assert not any(secret in text for text in _strings(parsed))  # (an escape may hold "000")
    masking.forget_all()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_a_callback_with_a_signed_url_traces_as_valid_json(cli) -> None:
    """Issue 28 item 2, end to end: the stored callback body (a JSON text holding a URL with
    ``sig=`` and ``token=``) is shown by ``--json trace`` as a document json.loads takes."""
    from ctwa.store.db import Store
    from ctwa.store.records import CallbackRecord, SendRecord

    body = json.dumps({"msgId": "1|2|3|4|0", "mediaUrl": "https://x/media/1?sig=abc",
                       "other": 'https://x/2?token=t0k"quoted"\\back'})
    with Store() as store:
        store.add_sends([SendRecord("1|2|3|4|0", time.time(), "919000000001", "template",
                                    verdict="accepted", http_status=200,
                                    url="https://bsp.example/wa?api_key=K123")])
        store.add_callbacks([CallbackRecord(time.time(), "/inbound", "inbound", "1|2|3|4|0",
                                            "text", body=body)])
    result = cli("--json", "trace", "1|2|3|4|0")
    assert result.exit_code == 0, result.stderr
    story = json.loads(result.stdout)
    shown = json.dumps(story)
    assert "sig=abc" not in shown and "t0k" not in shown and "K123" not in shown
    assert "sig=****" in result.stdout


def test_safe_value_reaches_keys_and_nested_strings() -> None:
    masking.register_secret("s3cret-value")
    doc = safe_value({"k\x1b": ["a\ud800", {"x": "token s3cret-value"}], "n": 5})
    assert doc == {"k\\x1b": ["a\ufffd", {"x": "token ****"}], "n": 5}


def test_url_credentials_are_registered_in_every_form() -> None:
    """Issue 25 item 11: the userinfo password, its Basic base64 form, and query tokens."""
    masking.register_url("http://user:pw%21x@host:8080/status?access_token=T0KEN&x=1")
    basic = base64.b64encode(b"user:pw!x").decode()
    text = f"Authorization: Basic {basic}; pw!x; pw%21x; got T0KEN"
    assert masking.scrub(text) == "Authorization: Basic ****; ****; ****; got ****"


def test_header_values_are_registered_but_plain_ones() -> None:
    masking.register_header("X-Custom", "custom-secret-1")
    masking.register_header("Authorization", "Bearer bear-2")
    masking.register_header("Content-Type", "application/json")
    assert masking.scrub("custom-secret-1 bear-2 application/json") == \
        "**** **** application/json"


def test_the_report_pages_embedded_summary_survives_any_markup() -> None:
    """Issue 25 item 12: ``<!--<script>`` (and ``</script>``) in a criterion's text used to
    break the embedded summary; ``<``, ``>`` and ``&`` are JSON escapes there now."""
    import re

    from ctwa.report.html import render
    from ctwa.report.summary import simple_summary
    from ctwa.report.verdict import Criterion, Verdict

    nasty = "<!--<script> </script> & <b>x</b> \x1b[2J \ud83d"
    verdict = Verdict((Criterion("answers", "fail", nasty),))
    summary = simple_summary("replay", f"http://h/{nasty}", 1.0, 2.0, verdict,
                             {"n": nasty}, {"requests": 1.0}, argv=["replay", nasty])
    page = render(summary)
    [embedded] = re.findall(r'<script type="application/json" id="ctwa-summary">(.*?)'
                            r"</script>", page, re.S)
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert "\\u003c!--\\u003cscript\\u003e" in embedded
    data = json.loads(embedded)
    assert data["criteria"][0]["reason"] == "<!--<script> </script> & <b>x</b> \\x1b[2J \ufffd"
    assert page.count("</script>") == page.count("<script")
    page.encode("utf-8")  # no lone surrogate left anywhere


def test_json_masks_unregistered_url_credentials_even_behind_an_escape() -> None:
    """A password or query value holding a control character is a JSON escape in the text;
    the document is still masked value by value."""
    import contextlib
    import io

    from ctwa.cli.output import Output

    with contextlib.redirect_stdout(io.StringIO()) as captured:
        Output(json_mode=True).stdout_json({"u": "http://u:p\x01w@h/x?sig=a\x01b", "n": 1})
    assert json.loads(captured.getvalue()) == {"u": "http://u:****@h/x?sig=****", "n": 1}

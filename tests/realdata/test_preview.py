"""Previews wrap, never cut: a 1,000-character body, emoji, Arabic, carousel cards and buttons,
on a narrow terminal and piped. Every word of the text is on the screen, and every frame line
is as wide as the others (emoji measured as two cells)."""

from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len
from rich.console import Console

from ctwa.cli.preview import render_template
from ctwa.send.build import parse_template

EMOJI = "🎉🌙✨"
ARABIC = "رمضان كريم نتمنى لك ولعائلتك شهراً مباركاً مليئاً بالخير والبركات"
BODY = " ".join(f"w{i:03d}" for i in range(185)) + f" {EMOJI} {ARABIC} {{{{1}}}}"


def long_template(**extra: object) -> dict:
    return {"name": "long_body", "language": "en", "status": "APPROVED",
            "category": "MARKETING", "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Big sale 🎉 عرض خاص"},
                {"type": "BODY", "text": BODY},
                {"type": "FOOTER", "text": "Reply STOP to unsubscribe from these messages now"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Yes please send me the coupon code now!"},
                    {"type": "COPY_CODE", "example": ["SAVE25"]}]}], **extra}


def screen(template: dict, width: int, values: dict[str, str] | None = None) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(render_template(parse_template(template), values or {"1": "Asha"}, width),
                  soft_wrap=False)
    return console.file.getvalue()  # type: ignore[attr-defined]


def words_of(text: str) -> list[str]:
    return re.sub(r"[│╭╮╰╯─]", " ", text).split()


@pytest.mark.parametrize("width", [24, 40, 60, 120])
def test_every_word_of_a_long_body_is_shown(width: int) -> None:
    assert len(BODY) >= 1000
    shown = screen(long_template(), width)
    words = words_of(shown)
    expected = BODY.replace("{{1}}", "Asha").split()
    assert [w for w in words if w in expected] == expected  # all, in order
    for part in ("Reply", "STOP", "unsubscribe", "messages", "now", "coupon", "Copy", "offer",
                 "code"):
        assert part in words


@pytest.mark.parametrize("width", [24, 60])
def test_frame_lines_are_equally_wide_with_emoji_and_arabic(width: int) -> None:
    lines = [line for line in screen(long_template(), width).splitlines() if line]
    assert {cell_len(line) for line in lines} == {width}


def test_carousel_cards_wrap_inside_their_frames() -> None:
    card_body = "Rich card text that is longer than a card is wide " * 3
    template = {"name": "carousel", "language": "en", "components": [
        {"type": "BODY", "text": "Pick one"},
        {"type": "CAROUSEL", "cards": [{"components": [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": card_body + f"card{i}"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Shop this one now please",
                                             "url": "https://a.example/{{1}}"}]}]}
            for i in range(2)]}]}
    for width in (30, 80):
        shown = screen(template, width)
        words = words_of(shown)
        for i in range(2):
            assert f"card{i}" in words
        assert words.count("longer") == 6 and words.count("please") == 2


def test_templates_show_on_a_narrow_pipe_keeps_every_word(cli, tmp_path) -> None:
    from ctwa.templates.library import Entry, TemplateLibrary

    library = TemplateLibrary(tmp_path / "lib")
    path = library.put(long_template())
    library.save_index({"long_body|en": Entry("long_body", "en", path.name)})
    result = cli("templates", "show", "long_body", "--vars", "Asha", "--library",
                 str(tmp_path / "lib"), env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.stderr
    words = words_of(result.stdout)
    assert [w for w in words if w.startswith("w") and w[1:].isdecimal()] == [
        f"w{i:03d}" for i in range(185)]
    assert all(w in words for w in ARABIC.split()) and "Asha" in words
    assert max(cell_len(line) for line in result.stdout.splitlines()) <= 60

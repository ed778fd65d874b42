"""Render a Meta-format template in the terminal the way a WhatsApp message looks.

Previews wrap, never cut: every word of a 1,024-character body is shown, whatever the width.
Rich measures each character's cells (emoji take two), so borders stay straight with emoji and
Arabic alike; the caller prints with ``soft_wrap=False`` so long lines fold inside the frame.
Every text comes from a template file (a vendor's, as imported): it is shown as text, never
as Rich markup, with control characters escaped.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from ctwa.cli.output import shown
from ctwa.wire.meta import PLACEHOLDER, MetaComponent, MetaTemplate

_MEDIA_LABELS = {"IMAGE": "[image]", "VIDEO": "[video]", "DOCUMENT": "[document]",
                 "LOCATION": "[location]"}
_BUTTON_ICONS = {"URL": "-> ", "PHONE_NUMBER": "call ", "COPY_CODE": "copy ",
                 "QUICK_REPLY": "", "OTP": "otp ", "FLOW": "flow ", "CATALOG": "catalog ",
                 "MPM": "products "}


def _highlight(text: str, values: dict[str, str]) -> Text:
    """Placeholders shown reversed; filled values shown bold, so a preview shows what varies."""
    out = Text()
    last = 0
    for match in PLACEHOLDER.finditer(text):
        out.append(shown(text[last:match.start()]))
        key = match.group(1)
        key = str(int(key)) if key.isdecimal() else key
        if key in values:
            out.append(shown(values[key]), style="bold")
        else:
            out.append(shown(match.group(0)), style="reverse")
        last = match.end()
    out.append(shown(text[last:]))
    return out


def _buttons(comp: MetaComponent) -> list[RenderableType]:
    rows: list[RenderableType] = []
    for button in comp.buttons or []:
        icon = _BUTTON_ICONS.get(button.type.upper(), f"{button.type} ")
        label = Text(shown(f"{icon}{button_label(button.type, button.text)}"), justify="center",
                     style="cyan")
        rows.append(Panel(label, padding=(0, 1), border_style="cyan"))
    return rows


def button_label(kind: str, text: str | None) -> str:
    """What WhatsApp shows on a button: a COPY_CODE button without text gets Meta's label."""
    if not text and kind.upper() == "COPY_CODE":
        from ctwa.wire.meta import COPY_CODE_LABEL

        return COPY_CODE_LABEL
    return text or ""


#: The narrowest a carousel card is drawn; below it the cards stack.
CARD_WIDTH = 34


def _parts(components: list[MetaComponent], values: dict[str, str],
           width: int = 60) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for comp in components:
        kind = comp.type.upper()
        if kind == "HEADER":
            fmt = (comp.format or "TEXT").upper()
            if fmt == "TEXT":
                title = _highlight(comp.text or "", values)
                title.stylize("bold")
                parts.append(title)
            else:
                parts.append(Text(shown(_MEDIA_LABELS.get(fmt, f"[{fmt.lower()}]")),
                                  style="magenta"))
        elif kind == "BODY":
            parts.append(_highlight(comp.text or "", values))
        elif kind == "FOOTER":
            parts.append(Text(shown(comp.text or ""), style="dim"))
        elif kind == "LIMITED_TIME_OFFER":
            offer: dict[str, Any] = comp.limited_time_offer or {}
            note = " (expires)" if offer.get("has_expiration") else ""
            parts.append(Text(shown(f"limited-time offer: {offer.get('text', '')}{note}"),
                              style="bold yellow"))
        elif kind == "BUTTONS":
            parts += _buttons(comp)
        elif kind == "CAROUSEL":
            from rich.columns import Columns

            card_width = max(20, min(CARD_WIDTH, width - 4))
            cards = [Panel(Group(*_parts(card.components, {}, card_width)), title=f"card {i}",
                           width=card_width) for i, card in enumerate(comp.cards or [])]
            parts.append(Columns(cards))
        else:
            parts.append(Text(shown(f"[{comp.type}]"), style="dim"))
    return parts


def render_template(template: MetaTemplate, values: dict[str, str],
                    width: int = 60) -> RenderableType:
    """The template as a framed message ``width`` cells wide (the terminal's width, or 60 when
    the output is not a terminal); text wraps inside the frame."""
    subtitle = " ".join(x for x in (template.category, template.status) if x)
    return Panel(Group(*_parts(template.components, values, width)),
                 title=Text(shown(f"{template.name} ({template.language})")),
                 subtitle=Text(shown(subtitle)) if subtitle else None,
                 border_style="green", width=width)


def parameter_order(template: MetaTemplate, values: dict[str, str]) -> list[tuple[str, str]]:
    """For NAMED templates: the payload carries values in order and no names, so say which
    value goes to which name, in sending order (``body parameter 1``, ``{{first_name}}``)."""
    from ctwa.send.build import placeholders

    rows: list[tuple[str, str]] = []
    for comp in template.components:
        kind = comp.type.upper()
        if kind not in ("HEADER", "BODY") or not comp.text:
            continue
        for n, key in enumerate(placeholders(comp.text, True), start=1):
            shown = values.get(key, "(no value given)")
            rows.append((f"{kind.lower()} parameter {n}", f"{{{{{key}}}}} = {shown}"))
    return rows

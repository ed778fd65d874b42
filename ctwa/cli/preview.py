"""Render a Meta-format template in the terminal the way a WhatsApp message looks."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

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
        out.append(text[last:match.start()])
        key = match.group(1)
        key = str(int(key)) if key.isdecimal() else key
        if key in values:
            out.append(values[key], style="bold")
        else:
            out.append(match.group(0), style="reverse")
        last = match.end()
    out.append(text[last:])
    return out


def _buttons(comp: MetaComponent) -> list[RenderableType]:
    rows: list[RenderableType] = []
    for button in comp.buttons or []:
        icon = _BUTTON_ICONS.get(button.type.upper(), f"{button.type} ")
        label = Text(f"{icon}{button.text or ''}", justify="center", style="cyan")
        rows.append(Panel(label, padding=(0, 1), border_style="cyan"))
    return rows


def _parts(components: list[MetaComponent], values: dict[str, str]) -> list[RenderableType]:
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
                parts.append(Text(_MEDIA_LABELS.get(fmt, f"[{fmt.lower()}]"), style="magenta"))
        elif kind == "BODY":
            parts.append(_highlight(comp.text or "", values))
        elif kind == "FOOTER":
            parts.append(Text(comp.text or "", style="dim"))
        elif kind == "LIMITED_TIME_OFFER":
            offer: dict[str, Any] = comp.limited_time_offer or {}
            note = " (expires)" if offer.get("has_expiration") else ""
            parts.append(Text(f"limited-time offer: {offer.get('text', '')}{note}",
                              style="bold yellow"))
        elif kind == "BUTTONS":
            parts += _buttons(comp)
        elif kind == "CAROUSEL":
            from rich.columns import Columns

            cards = [Panel(Group(*_parts(card.components, {})), title=f"card {i}", width=34)
                     for i, card in enumerate(comp.cards or [])]
            parts.append(Columns(cards))
        else:
            parts.append(Text(f"[{comp.type}]", style="dim"))
    return parts


def render_template(template: MetaTemplate, values: dict[str, str]) -> RenderableType:
    subtitle = " ".join(x for x in (template.category, template.status) if x)
    return Panel(Group(*_parts(template.components, values)),
                 title=f"{template.name} ({template.language})", subtitle=subtitle or None,
                 border_style="green", width=60 if not any(
                     c.type.upper() == "CAROUSEL" for c in template.components) else None)

"""Template parameters as users give them: ``--var``, ``--button``, ``--location``, a YAML file.

Parsing is strict and every error names the option and the value, because a wrong parameter
silently sent becomes a wrong WhatsApp message in front of a customer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ctwa.infra.errors import InputError

_KEY = re.compile(r"^(\d+|[A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
#: Epoch milliseconds below this are almost surely seconds (1973 in ms, year 5138 in s).
_MS_FLOOR = 100_000_000_000


@dataclass(frozen=True)
class LocationValue:
    latitude: str
    longitude: str
    name: str | None = None
    address: str | None = None


@dataclass
class CardParams:
    vars: dict[str, str] = field(default_factory=dict)
    header_media: str | None = None
    buttons: dict[int, str] = field(default_factory=dict)


@dataclass
class TemplateParams:
    """Everything a template may need filled in; keys of ``vars`` are "1", "2"... or names."""

    vars: dict[str, str] = field(default_factory=dict)
    header_vars: dict[str, str] = field(default_factory=dict)
    header_media: str | None = None
    header_filename: str | None = None
    location: LocationValue | None = None
    buttons: dict[int, str] = field(default_factory=dict)
    coupon: str | None = None
    offer_expires_ms: int | None = None
    props: dict[str, str] = field(default_factory=dict)
    cards: list[CardParams] = field(default_factory=list)

    def overlay(self, other: TemplateParams) -> TemplateParams:
        """``other``'s values win where given: command-line flags over a params file."""
        cards = list(self.cards)
        for i, card in enumerate(other.cards):
            if i < len(cards):
                base = cards[i]
                cards[i] = CardParams({**base.vars, **card.vars},
                                      card.header_media or base.header_media,
                                      {**base.buttons, **card.buttons})
            else:
                cards.append(card)
        return TemplateParams(
            vars={**self.vars, **other.vars},
            header_vars={**self.header_vars, **other.header_vars},
            header_media=other.header_media or self.header_media,
            header_filename=other.header_filename or self.header_filename,
            location=other.location or self.location,
            buttons={**self.buttons, **other.buttons},
            coupon=other.coupon or self.coupon,
            offer_expires_ms=other.offer_expires_ms or self.offer_expires_ms,
            props={**self.props, **other.props},
            cards=cards,
        )


def parse_vars(values: list[str] | tuple[str, ...], option: str = "--var") -> dict[str, str]:
    """``1=John``, ``first_name=John`` or bare values (taking the next free number)."""
    out: dict[str, str] = {}
    next_position = 1
    for raw in values:
        match = _KEY.match(raw)
        if match:
            key, value = match.group(1), match.group(2)
        else:
            while str(next_position) in out:
                next_position += 1
            key, value = str(next_position), raw
        if key.isdecimal() and int(key) < 1:
            raise InputError(f"{option} {raw!r}: positions start at 1")
        if key.isdecimal():
            key = str(int(key))
        if key in out:
            raise InputError(f"{option} {raw!r}: {{{{{key}}}}} is given twice")
        out[key] = value
    return out


def parse_index_value(raw: str, option: str) -> tuple[int, str]:
    index, sep, value = raw.partition("=")
    if not sep or not index.strip().isdecimal():
        raise InputError(f"{option} {raw!r}: write it as INDEX=VALUE, e.g. 0=order/123")
    return int(index), value


def parse_buttons(values: list[str] | tuple[str, ...], option: str = "--button") -> dict[int, str]:
    out: dict[int, str] = {}
    for raw in values:
        index, value = parse_index_value(raw, option)
        if index in out:
            raise InputError(f"{option} {raw!r}: button {index} is given twice")
        out[index] = value
    return out


def parse_props(values: list[str] | tuple[str, ...], option: str = "--prop") -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} {raw!r}: write it as KEY=VALUE")
        out[key.strip()] = value
    return out


def _coordinate(text: str, limit: float, what: str, raw: str) -> str:
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"--location {raw!r}: {what} {text!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise InputError(f"--location {raw!r}: {what} must be between -{limit:g} and {limit:g}")
    return text.strip()


def parse_location(raw: str) -> LocationValue:
    """``LAT,LONG[,NAME[,ADDRESS]]``; the address may itself contain commas."""
    parts = raw.split(",", 3)
    if len(parts) < 2:
        raise InputError(f"--location {raw!r}: write it as LAT,LONG[,NAME[,ADDRESS]]")
    latitude = _coordinate(parts[0], 90, "latitude", raw)
    longitude = _coordinate(parts[1], 180, "longitude", raw)
    name = parts[2].strip() or None if len(parts) > 2 else None
    address = parts[3].strip() or None if len(parts) > 3 else None
    return LocationValue(latitude, longitude, name, address)


def parse_offer_expiry(raw: str | int) -> int:
    """Epoch milliseconds, or an ISO 8601 time (a time without a zone is taken as UTC)."""
    text = str(raw).strip()
    if text.isdecimal():
        value = int(text)
        if value < _MS_FLOOR:
            raise InputError(f"--offer-expires {text}: looks like epoch seconds",
                             hint=f"give milliseconds ({value * 1000}) or an ISO time")
        return value
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"--offer-expires {text!r}: not epoch milliseconds or an ISO time",
                         hint="e.g. 2026-12-31T18:30:00Z or 1798741800000") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


# --- params files ----------------------------------------------------------------------------


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(i + 1): _scalar(v, f"{where}[{i}]") for i, v in enumerate(value)}
    if isinstance(value, dict):
        return {str(k): _scalar(v, f"{where}.{k}") for k, v in value.items()}
    return {"1": _scalar(value, where)}


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise InputError(f"{where}: expected a single value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _index_map(value: Any, where: str) -> dict[int, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {i: _scalar(v, f"{where}[{i}]") for i, v in enumerate(value)}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not str(key).isdecimal():
                raise InputError(f"{where}: button keys are indexes (0, 1, ...), got {key!r}")
            out[int(key)] = _scalar(item, f"{where}.{key}")
        return out
    raise InputError(f"{where}: expected a mapping of button index to value")


_FILE_KEYS = {"vars", "header_vars", "header_var", "header_media", "header_filename",
              "location", "buttons", "coupon", "offer_expires", "props", "cards"}


def params_from_mapping(data: Any, source: str) -> TemplateParams:
    """Build parameters from a parsed params file, naming the file and key in every error."""
    if data is None:
        return TemplateParams()
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of parameter names to values")
    unknown = sorted(set(map(str, data)) - _FILE_KEYS)
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r}",
                         hint=f"known keys: {', '.join(sorted(_FILE_KEYS))}")
    location = data.get("location")
    if isinstance(location, dict):
        location = ",".join(str(location.get(k, "")) for k in
                            ("latitude", "longitude", "name", "address"))
    elif location is not None and not isinstance(location, str):
        raise InputError(f"{source}: location: expected \"LAT,LONG[,NAME[,ADDRESS]]\" or a "
                         "mapping of latitude, longitude, name and address")
    listed = data.get("cards")
    if listed is not None and not isinstance(listed, list):
        raise InputError(f"{source}: cards: expected a list, one entry per carousel card")
    cards = []
    for i, card in enumerate(listed or []):
        if not isinstance(card, dict):
            raise InputError(f"{source}: cards[{i}]: expected a mapping")
        cards.append(CardParams(
            vars=_str_map(card.get("vars"), f"{source}: cards[{i}].vars"),
            header_media=card.get("header_media"),
            buttons=_index_map(card.get("buttons"), f"{source}: cards[{i}].buttons"),
        ))
    header_vars = data.get("header_vars", data.get("header_var"))
    expiry = data.get("offer_expires")
    return TemplateParams(
        vars=_str_map(data.get("vars"), f"{source}: vars"),
        header_vars=_str_map(header_vars, f"{source}: header_vars"),
        header_media=data.get("header_media"),
        header_filename=data.get("header_filename"),
        location=parse_location(location) if location else None,
        buttons=_index_map(data.get("buttons"), f"{source}: buttons"),
        coupon=None if data.get("coupon") is None else str(data["coupon"]),
        offer_expires_ms=parse_offer_expiry(expiry) if expiry is not None else None,
        props=_str_map(data.get("props"), f"{source}: props") if isinstance(
            data.get("props"), dict) else {},
        cards=cards,
    )


def load_params_file(path: Path) -> TemplateParams:
    from ctwa.infra.textfiles import load_yaml, read_text

    return params_from_mapping(load_yaml(read_text(path), str(path)), str(path))

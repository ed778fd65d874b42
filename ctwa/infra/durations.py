"""Durations as people write them: ``500ms``, ``2s``, ``1.5s``, ``5m``, ``12h``, ``30d``."""

from __future__ import annotations

import math
import re
from typing import Any

from ctwa.infra.errors import InputError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any, where: str, bare_unit: str = "s") -> float:
    """Seconds; a bare number is in ``bare_unit``. Never negative, infinite or NaN."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{where}: {value!r} is not a duration",
                             hint="a finite, positive number, or e.g. 500ms, 2s")
        return float(value) * _SCALE[bare_unit]
    match = _DURATION.match(str(value))
    if not match:
        raise InputError(f"{where}: {value!r} is not a duration",
                         hint="write e.g. 500ms, 2s, 1.5s or 5m")
    return float(match.group(1)) * _SCALE[match.group(2) or bare_unit]

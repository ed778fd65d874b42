"""The spec's template samples in canonical form, for ``send-template --sample NAME``.

Each file is the spec's sample with only the ERRATA repairs applied (the canonical ``footer``
key, button indexes 0, 1, ... in the Media Template); ``to``, ``wabaNumber`` and ``msgId`` are
replaced when sent.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ctwa.infra.errors import InputError

SAMPLE_NAMES = ("text-footer", "image-cta", "text", "media", "lto", "multi-button", "carousel",
                "custom-kv")


def load_sample(name: str) -> dict[str, Any]:
    if name not in SAMPLE_NAMES:
        import difflib

        close = difflib.get_close_matches(name, SAMPLE_NAMES, n=1, cutoff=0.5)
        raise InputError(f"unknown sample {name!r}",
                         hint=(f"did you mean {close[0]!r}? " if close else "")
                         + f"samples: {', '.join(SAMPLE_NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)

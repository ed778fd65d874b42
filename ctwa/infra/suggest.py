""""Did you mean" for a word that names none of the choices (a kind, a profile)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``word`` (any case), if one is near enough to be a typo."""
    known = list(choices)
    by_lower = {c.lower(): c for c in known}
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str], command: str | None = None,
                 otherwise: str = "") -> str:
    """A hint: the nearest choice (and the command with it, as it runs), else ``otherwise``."""
    near = closest(word, choices)
    if near is None:
        return otherwise
    again = f" (`{command} {near}`)" if command else ""
    return f"did you mean {near!r}?{again}" + (f"; {otherwise}" if otherwise else "")

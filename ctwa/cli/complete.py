"""Shell completion of option values: the names a user would otherwise look up (samples,
message types, auth kinds, regions, profiles, library templates). Each reads only what it
needs, lazily, and never fails: a completion that raises breaks the user's shell line."""

from __future__ import annotations

from collections.abc import Callable, Iterable

MESSAGE_TYPES = ("text", "image", "audio", "video", "file")
AUTH_KINDS = ("basic", "bearer", "header", "none")


def _starting(words: Iterable[object], incomplete: str) -> list[str]:
    return sorted(w for w in words if isinstance(w, str) and w.startswith(incomplete))


def fixed(*words: str) -> Callable[[str], list[str]]:
    return lambda incomplete: _starting(words, incomplete)


def samples(incomplete: str) -> list[str]:
    from ctwa.send.samples import SAMPLE_NAMES

    return _starting(SAMPLE_NAMES, incomplete)


def regions(incomplete: str) -> list[str]:
    from ctwa.upload.regions import REGION_HOSTS

    return _starting(REGION_HOSTS, incomplete)


def profiles(incomplete: str) -> list[str]:
    try:
        from ctwa.cli.context import Invocation

        return _starting(Invocation().config.load().profiles, incomplete)
    except Exception:  # a broken config must not break the shell line
        return []


def templates(incomplete: str) -> list[str]:
    """Template names in the current profile's library."""
    try:
        from ctwa.cli.context import Invocation
        from ctwa.templates.library import TemplateLibrary, default_root

        name, _ = Invocation().profile()
        return _starting({e.name for e in TemplateLibrary(default_root(name)).index().values()},
                         incomplete)
    except Exception:
        return []

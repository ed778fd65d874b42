"""Where the bundled examples live: ``examples/`` in a source checkout, or the copy the wheel
carries inside the package (pyproject's force-include), so the sandbox and the demo work from
either kind of install."""

from __future__ import annotations

from pathlib import Path

from ctwa.infra.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent.parent


def examples_dir() -> Path:
    for candidate in (_PACKAGE.parent / "examples", _PACKAGE / "examples"):
        if (candidate / "templates").is_dir():
            return candidate
    raise ConfigError("the bundled examples are missing from this installation",
                      hint="reinstall ctwa, or pass the files explicitly")

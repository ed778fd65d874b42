"""The suite never reads or writes the user's own files: conftest.py points HOME, XDG_* and
CTWA_* at a temporary folder before anything is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SESSION_ROOT

ROOT = Path(__file__).parent.parent


def test_the_session_guard_points_every_location_into_a_temporary_folder(tmp_path) -> None:
    from platformdirs import user_cache_dir, user_config_dir, user_data_dir

    from ctwa.infra.config import config_dir, data_dir
    from ctwa.store.db import store_path

    for path in (Path.home(), Path(user_data_dir("ctwa")), Path(user_config_dir("ctwa")),
                 Path(user_cache_dir("ctwa"))):
        assert path.is_relative_to(SESSION_ROOT), path
    for name, value in os.environ.items():
        if name.startswith("XDG_") and name.endswith(("_HOME", "_DIR")):
            assert Path(value).is_relative_to(SESSION_ROOT), name
    for path in (config_dir(), data_dir(), store_path()):  # and each test has its own
        assert path.is_relative_to(tmp_path), path


def test_a_run_leaves_the_real_home_untouched(tmp_path) -> None:
    """A pytest of its own, with HOME at a stand-in for the user's real home: a module-scoped
    sandbox (it opens the store before any per-test fixture), a profile saved and a store
    opened through ctwa's default locations; afterwards the stand-in home holds nothing."""
    home = tmp_path / "real-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CTWA_", "XDG_", "PYTEST_"))}
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/isolation_probe.py"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []

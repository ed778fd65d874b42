"""Run only by tests/test_isolation.py, in a pytest of its own: the pattern that once wrote
into the user's real store (a sandbox started once per module, before any per-test fixture),
plus a write through each of ctwa's default locations."""

from __future__ import annotations

import pytest

from ctwa.sandbox.server import RunningSandbox, SandboxSettings


@pytest.fixture(scope="module")
def box():
    with RunningSandbox(SandboxSettings(port=0)) as sandbox:
        yield sandbox


def test_module_scoped_sandbox_and_default_locations(box) -> None:
    from ctwa.infra.config import ConfigStore, Profile
    from ctwa.store.writer import BatchWriter

    assert box.urls()["bsp_endpoint"]
    ConfigStore().put("probe", Profile())
    writer = BatchWriter()
    writer.close()

"""Every test here runs against both backends: a SQLite file in the test's temp dir, and a
fresh schema of a real PostgreSQL (tests/bridge/state/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge.state import pg


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'state' / 'bridge.db'}"
        return
    url, schema = pg.fresh_schema_url()
    yield url
    pg.drop_schema(schema)

"""The PostgreSQL the bridge tests share: ``CTWA_TEST_POSTGRES_URL`` when set, else one
throw-away cluster per pytest process (started on first use, stopped at exit). Without one the
PostgreSQL tests skip with the reason, except under ``CI=true``, where they fail."""

from __future__ import annotations

import atexit
import os
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest

from ctwa.bridge.state.throwaway import Cluster, ClusterUnavailable, start_cluster

_cluster: Cluster | None = None
_failure: str | None = None
# read at import: the tests' isolation clears CTWA_* variables before each test
_GIVEN = os.environ.get("CTWA_TEST_POSTGRES_URL")
_BIN = os.environ.get("CTWA_TEST_PG_BIN")
_CI = os.environ.get("CI") == "true"


def server_url() -> str:
    global _cluster, _failure
    if _GIVEN:
        return _GIVEN
    if _cluster is None and _failure is None:
        try:
            # tests: speed over surviving power loss (fsync off; commits are still commits)
            _cluster = start_cluster(fsync=False, bin_dir=Path(_BIN) if _BIN else None)
            atexit.register(_cluster.destroy)
        except ClusterUnavailable as exc:
            _failure = str(exc)
    if _cluster is None:
        reason = f"no PostgreSQL for the tests: {_failure}"
        if _CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return _cluster.url


def fresh_schema_url() -> tuple[str, str]:
    """A URL whose tables land in a new, empty schema of the shared database (cheaper than a
    database per test), and the schema's name."""
    import psycopg

    base = server_url()
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}", schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

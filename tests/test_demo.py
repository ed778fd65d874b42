"""The demo runs inside the suite, bounded in time, and its numbers are what they must be."""

from __future__ import annotations

import json
import time

from ctwa.cli.demo import run_demo
from ctwa.cli.output import Output


def test_demo_every_step_behaves(tmp_path, capsys) -> None:
    started = time.monotonic()
    import typer.main

    from ctwa.cli.app import app

    results = run_demo(Output(), tmp_path, typer.main.get_command(app))
    assert time.monotonic() - started < 60
    assert results["import"]["pages"] == 4 and len(results["import"]["added"]) == 9
    assert len(results["import"]["duplicates"]) == 1  # the spec names two samples alike
    assert results["sent"] == 4
    assert results["load"]["sent"] == 300 and results["load"]["accepted"] == 300
    dlr = results["dlr"]
    assert (dlr["sent"], dlr["delivered"], dlr["read"], dlr["failed"]) == (
        304, 303, 303, {"1006": 1})
    upload = results["upload"]
    assert (upload["rows_read"], upload["uploaded"], upload["rejected"]) == (12, 6, 6)
    assert results["replay"] == {"clicked": 1, "replies": 1}
    assert results["round_trip"][:3] == ["sent", "delivered", "read"]
    assert results["bridge"] == {"sent": 1, "delivered": 1, "read": 1}
    said = capsys.readouterr()
    assert "failed 1006: 1," in said.err + said.out and "{'1006'" not in said.err + said.out


def test_demo_command_json(cli, tmp_path, monkeypatch) -> None:
    users_store = tmp_path / "users-own-store.sqlite3"
    monkeypatch.setenv("CTWA_STORE", str(users_store))  # the demo keeps to its scratch store
    result = cli("--json", "demo")
    assert result.exit_code == 0, result.stderr
    assert not users_store.exists()
    data = json.loads(result.stdout)
    assert data["upload"]["adds_up"] and data["elapsed"] < 60
    assert "Every step behaved as expected" in result.stderr

"""Import keys (issue 25.16): ``a|b`` in ``c`` and ``a`` in ``b|c`` are two templates, not
one offered twice; and an index written with the old keys reads the same."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctwa.infra.errors import ExitCode
from tests.conftest import LiveServer


def _template(name: str, language: str) -> dict:
    return {"name": name, "language": language, "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": f"{name} body"}]}


def _vendor(templates: list[dict]) -> Starlette:
    async def page(request: Request) -> JSONResponse:
        return JSONResponse({"data": templates})

    return Starlette(routes=[Route("/templates", page)])


def test_names_and_languages_holding_the_separator_do_not_collide(cli, tmp_path) -> None:
    templates = [_template("a|b", "en"), _template("a", "b|en"),
                 _template("x\\", "|en"), _template("x\\|", "en")]
    library = tmp_path / "lib"
    with LiveServer(_vendor(templates)) as server:
        result = cli("--json", "import-templates", "--url", f"{server.url}/templates",
                     "--token", "t", "--library", str(library))
    assert result.exit_code in (ExitCode.OK, ExitCode.FAILED), result.output
    report = json.loads(result.stdout)
    assert report["duplicates"] == [], report["duplicates"]
    assert report["fetched"] == 4


def test_an_index_with_the_old_keys_reimports_as_unchanged(cli, tmp_path) -> None:
    templates = [_template("order_update", "en"), _template("promo", "en_US")]
    library = tmp_path / "lib"
    with LiveServer(_vendor(templates)) as server:
        first = cli("--json", "import-templates", "--url", f"{server.url}/templates",
                    "--token", "t", "--library", str(library))
        assert first.exit_code == ExitCode.OK, first.output
        index = json.loads((library / "index.json").read_text())
        old = {f"{e['name']}|{e['language']}": e for e in index["templates"].values()}
        (library / "index.json").write_text(json.dumps({"templates": old}))
        again = cli("--json", "import-templates", "--url", f"{server.url}/templates",
                    "--token", "t", "--library", str(library), "--prune")
    report = json.loads(again.stdout)
    assert len(report["unchanged"]) == 2 and report["missing"] == [] == report["pruned"]
    assert len(list(library.glob("*.json"))) == 3  # two templates and the index

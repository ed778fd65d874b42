"""``ctwa templates list|show|lint`` through Typer's runner."""

from __future__ import annotations

import json

import pytest

from ctwa.infra.errors import ExitCode
from ctwa.templates.library import Entry, TemplateLibrary, default_root
from tests.conftest import EXAMPLES, SPEC_SAMPLES


@pytest.fixture
def library() -> TemplateLibrary:
    lib = TemplateLibrary(default_root(None))
    index = {}
    for name in ("lto", "carousel", "text-footer"):
        template = json.loads((EXAMPLES / "templates" / f"{name}.json").read_text())
        path = lib.put(template)
        index[f"{template['name']}|{template['language']}"] = Entry(
            template["name"], template["language"], path.name, template["status"],
            template["category"])
    index["flow|en"] = Entry("flow", "en", "flow__en.json", "APPROVED", "MARKETING", False)
    lib.save_index(index)
    return lib


def test_list_filters(cli, library) -> None:
    everything = json.loads(cli("--json", "templates", "list").stdout)
    assert len(everything) == 4
    utility = json.loads(cli("--json", "templates", "list", "--category", "utility").stdout)
    assert [t["name"] for t in utility] == ["Namespace:sample"]
    sendable = json.loads(cli("--json", "templates", "list", "--sendable").stdout)
    assert "flow" not in [t["name"] for t in sendable]
    human = cli("templates", "list")
    assert "carousel_test_1" in human.stdout and "MARKETING" in human.stdout


def test_show_renders_like_a_message(cli, library) -> None:
    result = cli("templates", "show", "Test_template", "--vars", "Asha")
    assert result.exit_code == 0, result.stderr
    screen = result.stdout
    for part in ("[image]", "Hey Asha, Welcome to CleverTap.", "limited-time offer: Buy 1 Get 1 "
                 "Free", "Copy offer code", "Check Out Now", "Show More"):
        assert part in screen
    carousel = cli("templates", "show", "carousel_test_1").stdout
    assert "card 0" in carousel and "card 1" in carousel and "{{1}}" in carousel


def test_show_text_header_and_named_placeholders(cli, tmp_path) -> None:
    lib = TemplateLibrary(tmp_path)
    template = {"name": "welcome", "language": "en", "parameter_format": "NAMED",
                "components": [{"type": "HEADER", "format": "TEXT", "text": "Hi {{first_name}}"},
                               {"type": "BODY", "text": "Order {{order}} ships today"},
                               {"type": "FOOTER", "text": "Reply STOP to opt out"}]}
    path = lib.put(template)
    lib.save_index({"welcome|en": Entry("welcome", "en", path.name)})
    result = cli("templates", "show", "welcome", "--vars", "first_name=Ann", "--library",
                 str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "Hi Ann" in result.stdout and "Order {{order}} ships today" in result.stdout
    assert "Reply STOP to opt out" in result.stdout


def test_show_unknown_template(cli, library) -> None:
    result = cli("templates", "show", "nope")
    assert result.exit_code == ExitCode.USAGE and "import-templates" in result.stderr


def test_lint_meta_files_and_pages(cli, tmp_path) -> None:
    assert cli("templates", "lint", str(EXAMPLES / "templates")).exit_code == 0
    assert cli("templates", "lint", str(SPEC_SAMPLES / "meta-page-lto.json")).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "language": "en", "components": [
        {"type": "FOOTER", "text": "f" * 61}]}))
    result = cli("templates", "lint", str(bad))
    assert result.exit_code == ExitCode.FAILED
    assert "no BODY component" in result.stdout and "Meta allows 60" in result.stdout


def test_an_unknown_status_is_refused_naming_the_known_ones(cli, library) -> None:
    done = cli("templates", "list", "--status", "bogus")
    assert done.exit_code == ExitCode.USAGE, done.output
    assert "--status BOGUS: not a template status" in done.stderr
    assert "APPROVED" in done.stderr and "REJECTED" in done.stderr
    near = cli("templates", "list", "--status", "aproved")
    assert "did you mean 'APPROVED'?" in near.stderr
    assert cli("templates", "list", "--status", "approved").exit_code == 0


def test_the_demo_epilogue_has_no_literal_dots(capsys) -> None:
    from ctwa.cli.demo import _epilogue
    from ctwa.cli.output import Output

    _epilogue(Output())
    said = capsys.readouterr()
    assert "--var VALUE" in said.err + said.out and "--var ..." not in said.err + said.out

"""``ctwa lint`` and ``ctwa schema`` through Typer's runner."""

from __future__ import annotations

import json

import jsonschema
import pytest

from ctwa.infra.errors import ExitCode
from tests.conftest import EXAMPLES, SPEC_SAMPLES


def test_lint_a_folder_reports_every_document(cli) -> None:
    result = cli("lint", str(SPEC_SAMPLES))
    assert result.exit_code == ExitCode.FAILED  # the Media Template's duplicate index
    assert "template-media.json (template)" in result.stdout
    assert "$.components[3].index: error: button index 0 is used twice" in result.stdout
    assert "[ERRATA 6]" in result.stdout
    assert "31 document(s): 1 error(s)" in result.stderr
    assert "document(s)" not in result.stdout  # the totals are a log line


def test_lint_json_output_is_one_document(cli) -> None:
    result = cli("--json", "lint", str(SPEC_SAMPLES / "template-text-footer.json"))
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    (doc,) = data["documents"]
    assert data["ok"] and doc["kind"] == "template"
    assert doc["problems"][0]["errata"] == 4


def test_strict_fails_on_warnings(cli) -> None:
    path = str(SPEC_SAMPLES / "template-text-footer.json")
    assert cli("lint", "--strict", path).exit_code == ExitCode.FAILED


def test_forced_kind(cli) -> None:
    path = str(SPEC_SAMPLES / "status-sent.json")
    result = cli("--json", "lint", "--kind", "inbound", path)
    assert result.exit_code == ExitCode.FAILED
    assert json.loads(result.stdout)["documents"][0]["kind"] == "inbound"
    assert cli("lint", "--kind", "nope", path).exit_code == ExitCode.USAGE


def test_lint_missing_file_and_empty_folder(cli, tmp_path) -> None:
    assert cli("lint", str(tmp_path / "none.json")).exit_code == ExitCode.USAGE
    result = cli("lint", str(tmp_path))
    assert result.exit_code == ExitCode.USAGE and "no JSON or YAML files" in result.stderr


def test_examples_lint_clean(cli) -> None:
    result = cli("lint", "--strict", str(EXAMPLES / "payloads"))
    assert result.exit_code == 0, result.stderr


def test_schema_lists_kinds(cli) -> None:
    result = cli("--json", "schema")
    assert "template" in json.loads(result.stdout)


@pytest.mark.parametrize(("kind", "sample"), [
    ("template", "template-lto"), ("freeform", "freeform-image"), ("status", "status-failed"),
    ("inbound", "inbound-document"), ("meta-page", "meta-page-carousel"),
    ("upload", "upload-request"), ("response", "response-failure-2000"),
])
def test_schema_validates_canonical_samples(cli, kind: str, sample: str) -> None:
    from ctwa.wire.lint import lint_document

    schema = json.loads(cli("schema", kind).stdout)
    canonical = lint_document(json.loads((SPEC_SAMPLES / f"{sample}.json").read_text()),
                              kind).value
    from ctwa.wire.kinds import KINDS

    jsonschema.validate(KINDS[kind].adapter.dump_python(canonical, mode="json", by_alias=True,
                                                        exclude_none=True), schema)


def test_schema_unknown_kind(cli) -> None:
    assert cli("schema", "nope").exit_code == ExitCode.USAGE


def test_lint_reads_stdin_and_results_pipe_whole(cli) -> None:
    body = '{"payloadVersion": "0.1", "statuses": [{"msgId": "i|1|2|3|0", "status": "sent",' \
           ' "timestamp": "1700000000"}]}'
    result = cli("lint", "-", input=body)
    assert result.exit_code == 0 and result.stdout.startswith("ok    <stdin> (status)")
    yaml_docs = "payloadVersion: '0.1'\nstatuses: [{msgId: x, status: bogus}]\n"
    failed = cli("lint", "-", input=yaml_docs)
    assert failed.exit_code == ExitCode.FAILED and "FAIL  <stdin> (status)" in failed.stdout


def test_schema_list_is_on_stdout(cli) -> None:
    result = cli("schema")
    assert [line.split()[0] for line in result.stdout.splitlines()][:3] == [
        "template", "freeform", "validation"]


def test_json_that_does_not_parse_is_said_in_ctwas_words(cli, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "statuses": [1,, 2]\n}\n')
    done = cli("lint", str(bad))
    assert done.exit_code != 0
    said = done.stdout + done.stderr
    assert f"{bad}: not valid JSON at line 2 column 18: a value was expected" in said, said
    assert "Expecting" not in said



@pytest.mark.parametrize(("args", "said"), [
    (["send-template", "--sample", "lto", "--to", "919876543210", "--count", "abc"],
     "--count': 'abc' must be a whole number"),
    (["callback", "listen", "--port", "99999"], "--port': '99999' must be at most 65535"),
])
def test_option_values_are_checked_in_ctwas_words(cli, args, said) -> None:
    done = cli(*args)
    assert done.exit_code == ExitCode.USAGE, done.output
    assert said in done.stderr and "Input should be" not in done.stderr


def test_schemas_carry_no_pydantic_auto_titles(cli) -> None:
    done = cli("schema", "status")
    assert done.exit_code == 0
    assert '"Msgid"' not in done.stdout and '"Shorturl"' not in done.stdout


def test_lint_recognises_ctwas_own_fixtures_and_params_files(cli) -> None:
    from tests.conftest import EXAMPLES

    done = cli("lint", str(EXAMPLES / "callbacks"), str(EXAMPLES / "params"))
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "cannot tell which wire format" not in done.stdout
    assert "(callback-fixture)" in done.stdout and "(params)" in done.stdout


def test_lint_passes_the_projects_own_examples(cli) -> None:
    from tests.conftest import EXAMPLES

    done = cli("lint", str(EXAMPLES))
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "(meta-webhook)" in done.stdout


def test_a_broken_params_file_is_an_error(cli, tmp_path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("buttons:\n  x: 1\n")
    done = cli("lint", str(bad))
    assert done.exit_code == ExitCode.FAILED and "button keys are indexes" in done.stdout


def test_every_detected_kind_is_accepted_by_kind(cli) -> None:
    from tests.conftest import EXAMPLES

    done = cli("lint", "--kind", "meta-webhook", str(EXAMPLES / "webhooks"))
    assert "unknown kind" not in done.stderr and "(meta-webhook)" in done.stdout

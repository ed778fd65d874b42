"""Options ctwa will not use are an error naming them (exit 2), never silently ignored; a dry
run without a WABA number fills a marked placeholder and says so; convert --json says each
warning once."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES

LTO = str(EXAMPLES / "templates" / "lto.json")


@pytest.mark.parametrize(("source", "extra", "named"), [
    (["--sample", "lto"], ["--params", "nope.yaml", "--var", "Bob", "--coupon", "ZZZ"],
     "--sample lto does not use --params, --var, --coupon"),
    (["--sample", "lto"], ["--examples"], "--sample lto does not use --examples"),
    (["--sample", "lto"], ["--no-lint"], "--sample lto does not use --no-lint"),
    (["--payload", str(EXAMPLES / "payloads" / "freeform-image.json")],
     ["--button", "0=x", "--allow-unapproved"],
     "--payload does not use --button, --allow-unapproved"),
    (["--template-file", LTO, "--var", "Asha", "--waba", "919999999998"], ["--no-lint"],
     "--template-file does not use --no-lint"),
    (["--template-file", LTO, "--var", "Asha", "--waba", "919999999998"],
     ["--library", "lib"], "--template-file does not use --library"),
])
def test_an_option_the_source_does_not_use_is_an_error_naming_it(cli, source, extra,
                                                                 named) -> None:
    done = cli("send-template", *source, *extra, "--to", "919000000001", "--dry-run")
    assert done.exit_code == 2, done.stderr
    assert named in done.stderr and done.stdout == ""


def test_what_each_source_uses_still_works(cli) -> None:
    assert cli("send-template", "--sample", "lto", "--to", "919000000001", "--waba",
               "919999999998", "--msg-id", "m1", "--dry-run").exit_code == 0
    assert cli("send-template", "--template-file", LTO, "--params",
               str(EXAMPLES / "params" / "lto.yaml"), "--var", "Asha", "--to", "919000000001",
               "--waba", "919999999998", "--dry-run").exit_code == 0


@pytest.mark.parametrize("command", [
    ["send-template", "--template-file", LTO, "--params", str(EXAMPLES / "params" / "lto.yaml"),
     "--var", "Asha"],
    ["send-freeform", "--text", "hi"],
])
def test_a_dry_run_without_waba_fills_a_marked_placeholder_and_says_so(cli, command) -> None:
    done = cli("--json", *command, "--to", "919000000001", "--dry-run")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["wabaNumber"] == "<placeholder: pass --waba NUMBER>"
    assert "no --waba given (nor in the profile): wabaNumber is the placeholder" in done.stderr
    sent = cli(*command, "--to", "919000000001", "--endpoint", "http://127.0.0.1:9/x")
    assert sent.exit_code == 4 and "no WhatsApp Business number given" in sent.stderr


def test_callback_convert_json_says_each_warning_once(cli) -> None:
    done = cli("--json", "callback", "convert", str(EXAMPLES / "webhooks" /
                                                    "cloudapi-messages.json"))
    assert done.exit_code == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["warnings"] and data["skipped"]
    both = done.stdout + done.stderr
    for line in data["warnings"] + data["skipped"]:
        assert both.count(line) == 1, line
    assert f"{len(data['warnings'])} warning(s) and {len(data['skipped'])} left out" \
        in done.stderr

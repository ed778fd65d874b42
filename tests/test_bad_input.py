"""Plain bad input is exit 1 or 2 with one clear line: never exit 70 ("a bug in ctwa"), never
a traceback. Each case was an exit 70 once."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES

TRUNCATED = '{"a":\n'
DEEP = "[" * 100_000 + "]" * 100_000
BIG_INT = '{"d": [{"identity": "a", "ts": ' + "9" * 5000 + "}]}"
YAML_TYPES = 'payloadVersion: 0.1\nto: "91"\nwhen: 2024-01-01\nblob: !!binary aGVsbG8=\n'
FIXTURES = {
    "inf-code": "events:\n  - status: failed\n    msgId: x\n    error: {code: .inf}\n",
    "abc-messages": "events:\n  - messages: abc\n",
    "map-failure-code": "events:\n  - messages: 10\n    failure_code: {a: 1}\n",
    "map-seed": "events:\n  - messages: 10\n    seed: {a: 1}\n",
    "inf-after": "events:\n  - status: sent\n    msgId: x\n    after: .inf\n",
    "number-raw": "events:\n  - raw: 5\n",
    "huge-volume": "events:\n  - messages: 10000000\n",
    "unknown-failure-code": "events:\n  - messages: 10\n    failure_code: 42\n",
}


def check(result) -> None:
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "bug in ctwa" not in result.stderr
    assert result.stderr.strip() or result.stdout.strip()


@pytest.mark.parametrize("text", [TRUNCATED, DEEP, BIG_INT, YAML_TYPES],
                         ids=["truncated", "deep", "big-int", "yaml-types"])
def test_lint_and_payload_files(cli, tmp_path, text) -> None:
    path = tmp_path / ("doc.yaml" if text is YAML_TYPES else "doc.json")
    path.write_text(text)
    check(cli("lint", str(path)))
    check(cli("send-template", "--payload", str(path), "--to", "919000000001", "--dry-run"))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_fields(cli, tmp_path, name) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FIXTURES[name])
    result = cli("callback", "replay", str(path), "--dry-run")
    check(result)
    assert "f.yaml" in result.stderr  # the error names the file


@pytest.mark.parametrize("encoding", ["base64", "rot13", "idna", "utf-16", "zlib"])
def test_encodings_that_are_no_file_encodings(cli, tmp_path, encoding) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes((EXAMPLES / "users.csv").read_bytes())
    check(cli("upload-users", str(path), "--encoding", encoding, "--dry-run"))


@pytest.mark.parametrize("argv", [
    ("--endpoint", "http://x/\r\nX: y"),
    ("--endpoint", "http://127.0.0.1:9/", "--header", "X-Api-Key: b\r\nc"),
    ("--endpoint", "http://127.0.0.1:9/", "--token", "tok-CANARY-91bd\nX: y"),
])
def test_line_breaks_in_urls_headers_and_secrets_are_usage_errors(cli, argv) -> None:
    result = cli("send-template", "--sample", "text", "--to", "919000000001", "--waba",
                 "919000000002", *argv)
    assert result.exit_code == 2, result.stderr
    assert "unreachable" not in result.stderr


def test_a_trailing_cr_in_a_secret_is_not_sent(cli) -> None:
    import respx

    with respx.mock:
        route = respx.post("https://bsp.example/x").respond(json={"status": "success"})
        result = cli("send-template", "--sample", "text", "--to", "919000000001", "--waba",
                     "919000000002", "--endpoint", "https://bsp.example/x", "--auth", "bearer",
                     env={"CTWA_TOKEN": "tok-CANARY-91bd\r"})
    assert result.exit_code == 0, result.stderr
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok-CANARY-91bd"


def test_a_nan_keyring_timeout_falls_back(cli) -> None:
    cli("profile", "add", "acme", "--endpoint", "https://bsp.example/x", "--use")
    result = cli("profile", "show", env={"CTWA_KEYRING_TIMEOUT": "nan"})
    assert result.exit_code == 0, result.stderr


def test_a_300_character_template_name(cli) -> None:
    check(cli("send-template", "--template", "x" * 300, "--to", "919000000001", "--dry-run"))


def test_yaml_dates_and_binary_in_raw_bodies(cli, tmp_path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text('events:\n  - raw: {payloadVersion: "0.1", statuses: [{msgId: x, status: '
                    "sent, timestamp: 2024-01-01}], blob: !!binary aGVsbG8=}\n    to: status\n")
    result = cli("callback", "replay", str(path), "--allow-invalid", "--status-url",
                 "http://127.0.0.1:9/s", "--inbound-url", "http://127.0.0.1:9/i")
    check(result)
    assert "bytes values cannot be sent as JSON" in result.stderr


@pytest.mark.parametrize(("path", "words"), [("/deep", "JSON ctwa cannot read"),
                                             ("/big", "JSON ctwa cannot read"),
                                             ("/redirect", "not JSON")])
def test_hostile_vendor_pages(cli, tmp_path, path, words) -> None:
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    from tests.conftest import LiveServer

    async def deep(request):
        return Response(b"[" * 100_000 + b"]" * 100_000, media_type="application/json")

    async def big(request):
        return Response(b'{"data": [], "n": ' + b"9" * 5000 + b"}",
                        media_type="application/json")

    async def redirect(request):
        return RedirectResponse("/html", status_code=302)

    async def html(request):
        return Response(b"<html></html>", media_type="text/html")

    app = Starlette(routes=[Route("/deep", deep), Route("/big", big),
                            Route("/redirect", redirect), Route("/html", html)])
    with LiveServer(app) as server:
        result = cli("-v", "import-templates", "--url", f"{server.url}{path}", "--library",
                     str(tmp_path))
    assert result.exit_code == 3, result.stderr
    assert words in result.stderr and "bug in ctwa" not in result.stderr

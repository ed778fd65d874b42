"""Issue 25's property: for every command that shows or writes remote text, arbitrary remote
text (any unicode, lone surrogates, any control character, ESC and OSC sequences, Rich markup,
HTML) never crashes it, never reaches the terminal with a control character, and never leaves
a file invalid (JSON, XML and HTML parse back). Against real hostile servers on 127.0.0.1."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctwa.infra.errors import ExitCode
from ctwa.infra.safetext import has_unsafe
from tests.conftest import EXAMPLES as FILES
from tests.conftest import LiveServer

#: Remote text: every code point (lone surrogates too) and the nastiest known pieces.
NASTY = st.sampled_from(["\x1b[2J", "\x1b]0;owned\x07", "\x9b31m", "APPROVED[/x]", "[bold]",
                         "<!--<script>", "</script>", "\ud83d", "\udc00", "\x00", "\r",
                         "\ufffe", "]]>", "&amp;", "\\", '"', "sig=abc\\\"", "\u2028"])
REMOTE = st.lists(st.one_of(NASTY, st.text(st.characters(codec=None, categories=None),
                                           max_size=8)), min_size=1, max_size=6).map("".join)
EXAMPLES = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
AUTH = ("--username", "ctwa", "--password", "pw-CANARY-7f3a")
JSON = {True: ("--json",), False: ()}


class Hostile:
    """A server answering every request with what the test last set: status and raw bytes."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.pages: list[bytes] = []
        self.echo = False  # answer with an error page echoing the request's headers and URL
        self.headers: list[tuple[bytes, bytes]] = []  # extra raw headers on every answer

    def app(self) -> Starlette:
        async def answer(request: Request) -> Response:
            await request.body()
            body = self.body
            if self.echo:
                seen = f"{request.url} {dict(request.headers)}"
                body = json.dumps({"status": "failure", "error": {"code": 2000, "message":
                                   f"denied: {seen}"}, "echo": seen}).encode()
            if self.pages and request.url.path.endswith("/templates"):
                number = int(request.query_params.get("after", "0") or 0)
                body = self.pages[min(number, len(self.pages) - 1)]
            response = Response(body, self.status, media_type="application/json")
            response.raw_headers += self.headers
            return response

        return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def hostile():
    server = Hostile()
    with LiveServer(server.app()) as live:
        server.url = live.url  # type: ignore[attr-defined]
        yield server


def encoded(doc: Any) -> bytes:
    """JSON as a hostile server writes it: lone surrogates as \\ud83d escapes (legal JSON)."""
    return json.dumps(doc).encode()


def clean_terminal(result: Any) -> None:
    """Nothing but text reached the terminal: no control character but line breaks and tabs,
    no lone surrogate, no traceback, a documented exit code."""
    assert not has_unsafe(result.stdout), repr(result.stdout[-500:])
    assert not has_unsafe(result.stderr), repr(result.stderr[-500:])
    assert "Traceback" not in result.stderr and "this is a bug" not in result.stderr, \
        result.stderr[-2000:]
    assert result.exit_code in {int(code) for code in ExitCode}, result.exit_code


def html_parses(path: Path) -> None:
    """The page parses, and its embedded summary is whole JSON."""
    text = path.read_text(encoding="utf-8")

    class Script(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inside, self.data, self.scripts = False, "", 0

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "script" and ("id", "ctwa-summary") in attrs:
                self.inside, self.scripts = True, self.scripts + 1

        def handle_endtag(self, tag: str) -> None:
            self.inside = False if tag == "script" else self.inside

        def handle_data(self, data: str) -> None:
            if self.inside:
                self.data += data

    parser = Script()
    parser.feed(text)
    parser.close()
    assert parser.scripts == 1
    json.loads(parser.data)
    assert not has_unsafe(text)


def xml_parses(path: Path) -> None:
    ET.parse(path)


@EXAMPLES
@given(text=REMOTE, status=st.sampled_from([200, 400, 500]), as_json=st.booleans(),
       command=st.sampled_from([("send-template", "--sample", "text", "--to", "919000000001"),
                                ("validate-endpoint",)]))
def test_send_template_and_validate_take_any_answer(cli, hostile, text, status, as_json,
                                                    command) -> None:
    hostile.status = status
    hostile.body = (encoded({"status": "failure", "error": {"code": 2001, "message": text},
                             text: [text]}) if as_json
                    else text.encode("utf-8", "surrogatepass"))
    human = cli(*command, "--endpoint", f"{hostile.url}/wa", *AUTH, "--waba",
                "919999999998", "-v")
    clean_terminal(human)
    assert human.exit_code in (ExitCode.OK, ExitCode.FAILED)
    machine = cli("--json", *command, "--endpoint", f"{hostile.url}/wa", *AUTH,
                  "--waba", "919999999998")
    clean_terminal(machine)
    json.loads(machine.stdout)


@EXAMPLES
@given(text=REMOTE, as_json=st.booleans())
def test_import_list_show_take_any_template_text(cli, hostile, tmp_path_factory, text,
                                                 as_json) -> None:
    """Item 3 (a lone surrogate skips that template, named), 7 (markup as a status or name),
    10 (ESC in bodies), 12 (HTML in names): the import goes on, the library lists and shows,
    and the report and JUnit files parse."""
    folder = tmp_path_factory.mktemp("hostile-import")
    good = {"name": "good", "language": "en", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "hello {{1}}"}]}
    odd = {"name": f"odd{text}"[:200], "language": "en", "status": f"APPROVED{text}",
           "category": "MARKETING", "components": [
               {"type": "HEADER", "format": "TEXT", "text": text[:60]},
               {"type": "BODY", "text": f"body {text} {{{{1}}}}"},
               {"type": "FOOTER", "text": text[:60]},
               {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": text[:25]}]}]}
    hostile.status = 200
    hostile.pages = [encoded({"data": [odd], "paging": {"cursors": {"after": "1"}}}),
                     encoded({"data": [good]})]
    try:
        result = cli(*JSON[as_json], "import-templates", "--url",
                     f"{hostile.url}/templates", "--token", "imp-CANARY-0c11", "--library",
                     str(folder / "lib"), "--report", str(folder / "r.html"), "--junit",
                     str(folder / "j.xml"))
    finally:
        hostile.pages = []
    clean_terminal(result)
    if as_json:
        json.loads(result.stdout)
    assert result.exit_code in (ExitCode.OK, ExitCode.FAILED), result.stderr
    html_parses(folder / "r.html")
    xml_parses(folder / "j.xml")
    listed = cli("templates", "list", "--library", str(folder / "lib"))
    clean_terminal(listed)
    assert listed.exit_code == 0 and "good" in listed.stdout
    names = json.loads(cli("--json", "templates", "list", "--library",
                           str(folder / "lib")).stdout)
    assert "good" in [n["name"] for n in names]
    for entry in names:
        shown = cli("templates", "show", entry["name"], "--library", str(folder / "lib"),
                    "--vars", text[:20] or "x")
        clean_terminal(shown)
        assert shown.exit_code == 0, shown.stderr


@EXAMPLES
@given(text=REMOTE, status=st.sampled_from([400, 404]), as_json=st.booleans())
def test_import_takes_any_graph_error(cli, hostile, tmp_path_factory, text, status,
                                      as_json) -> None:
    """A vendor's (or Meta's) error page: its message is shown, made safe, and the report
    files parse."""
    folder = tmp_path_factory.mktemp("hostile-graph")
    hostile.status = status
    hostile.pages = [encoded({"error": {"message": text, "type": text, "code": 190}})]
    try:
        result = cli(*JSON[as_json], "import-templates", "--url",
                     f"{hostile.url}/templates", "--token", "imp-CANARY-0c11", "--library",
                     str(folder / "lib"), "--report", str(folder / "r.html"), "--junit",
                     str(folder / "j.xml"))
    finally:
        hostile.pages, hostile.status = [], 200
    clean_terminal(result)
    if as_json:
        json.loads(result.stdout)
    assert result.exit_code == ExitCode.UNREACHABLE, result.stderr
    assert "Meta says" in result.stderr
    html_parses(folder / "r.html")
    xml_parses(folder / "j.xml")


def test_a_lone_surrogate_skips_that_template_only_and_names_it(cli, hostile, tmp_path) -> None:
    """Issue 25 item 3: before, the whole import stopped with exit 70."""
    templates = [{"name": f"t{n}", "language": "en", "status": "APPROVED",
                  "category": "UTILITY", "components": [{"type": "BODY", "text": f"n{n}"}]}
                 for n in range(4)]
    templates[1]["components"][0]["text"] = "half an emoji \ud83d"
    hostile.pages = [encoded({"data": templates})]
    try:
        result = cli("--json", "import-templates", "--url", f"{hostile.url}/templates",
                     "--token", "imp-CANARY-0c11", "--library", str(tmp_path / "lib"))
    finally:
        hostile.pages = []
    assert result.exit_code == ExitCode.OK, result.stderr
    data = json.loads(result.stdout)
    assert sorted(data["added"]) == ["t0 (en)", "t2 (en)", "t3 (en)"]
    [rejected] = data["rejected"]
    assert rejected["name"] == "t1" and rejected["path"] == "$.data[1].components[0].text"
    assert "lone surrogate" in rejected["reason"]


def test_markup_in_a_profile_name_lists(cli) -> None:
    """Issue 25 item 7: a profile named ``a[/x]`` used to stop ``profile list``."""
    added = cli("profile", "add", "a[/x]", "--endpoint", "https://bsp.example/wa")
    assert added.exit_code == 0, added.stderr
    listed = cli("profile", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "a[/x]" in listed.stdout
    shown = cli("profile", "show", "a[/x]")
    assert shown.exit_code == 0, shown.stderr


@EXAMPLES
@given(text=REMOTE)
def test_trace_shows_any_stored_callback(cli, text) -> None:
    """Listener msgIds and bodies come back through ``trace`` (human and --json)."""
    import time

    from ctwa.store.db import Store
    from ctwa.store.records import CallbackRecord, SendRecord

    msg_id = "1|2|3|4|0"
    body = json.dumps({"msgId": msg_id, "status": text, "url": f"https://x/1?sig={text}"})
    with Store() as store:
        store.add_sends([SendRecord(msg_id, time.time(), "919000000001", "template",
                                    verdict="accepted", http_status=200,
                                    answer=text.encode("utf-8", "replace").decode())])
        store.add_callbacks([CallbackRecord(time.time(), "/status", "status", msg_id,
                                            text.encode("utf-8", "replace").decode(),
                                            problems=[text.encode("utf-8", "replace")
                                                      .decode()], body=body)])
    human = cli("trace", msg_id)
    clean_terminal(human)
    machine = cli("--json", "trace", msg_id)
    clean_terminal(machine)
    json.loads(machine.stdout)


@EXAMPLES
@given(text=REMOTE, status=st.sampled_from([200, 400]),  # a 500 is retried: slow, same path
       as_json=st.booleans())
def test_upload_users_takes_any_answer(cli, hostile, tmp_path_factory, text, status,
                                       as_json) -> None:
    folder = tmp_path_factory.mktemp("hostile-upload")
    users = folder / "users.csv"
    users.write_text("identity,Phone\nu1,+14155552671\nu2,+14155552672\n")
    hostile.status = status
    hostile.body = encoded({"status": "fail", "error": text, "processed": 0,
                            "unprocessed": [{"status": "fail", "code": 509, "error": text,
                                             "record": {"identity": text}}]})
    result = cli(*JSON[as_json], "upload-users", str(users), "--base-url", hostile.url,
                 "--account-id", "A", "--passcode", "pc-CANARY-55e0", "--rejects",
                 str(folder / "rejects.csv"), "--report", str(folder / "r.html"), "--junit",
                 str(folder / "j.xml"))
    clean_terminal(result)
    if as_json:
        json.loads(result.stdout)
    if (folder / "r.html").exists():
        html_parses(folder / "r.html")
    if (folder / "j.xml").exists():
        xml_parses(folder / "j.xml")


@EXAMPLES
@given(text=REMOTE, status=st.sampled_from([200, 400, 500]), as_json=st.booleans())
def test_replay_takes_any_answer(cli, hostile, tmp_path_factory, text, status, as_json) -> None:
    folder = tmp_path_factory.mktemp("hostile-replay")
    hostile.status, hostile.body = status, text.encode("utf-8", "surrogatepass")
    result = cli(*JSON[as_json], "callback", "replay",
                 str(FILES / "callbacks" / "lifecycle.yaml"),
                 "--status-url", f"{hostile.url}/status?access_token=tok-CANARY-91bd",
                 "--inbound-url", f"{hostile.url}/inbound", "--no-delay",
                 "--report", str(folder / "r.html"), "--junit", str(folder / "j.xml"))
    clean_terminal(result)
    if as_json:
        json.loads(result.stdout)
    for path in (folder / "r.html", folder / "j.xml"):
        if path.exists():
            assert "tok-CANARY-91bd" not in path.read_text(encoding="utf-8")
            (html_parses if path.suffix == ".html" else xml_parses)(path)


@pytest.mark.parametrize("value", [b"\x9b31m", b"\xff\xfe", b"\x1b[2J"])
def test_hostile_answer_headers_reach_no_terminal_or_file(cli, hostile, tmp_path,
                                                          value) -> None:
    """A header value with C1 controls or latin-1 bytes (httpx decodes them as latin-1)."""
    hostile.headers = [(b"x-odd", value)]
    hostile.body = encoded({"status": "failure", "error": {"code": 2001, "message": "no"}})
    try:
        human = cli("send-template", "--sample", "text", "--to", "919000000001", "--endpoint",
                    f"{hostile.url}/wa", *AUTH, "--waba", "919999999998", "-v")
        machine = cli("--json", "send-template", "--sample", "text", "--to", "919000000001",
                      "--endpoint", f"{hostile.url}/wa", *AUTH, "--waba", "919999999998")
    finally:
        hostile.headers = []
    if "x-odd" not in human.stderr:
        pytest.skip("uvicorn would not send this header value")
    clean_terminal(human)
    clean_terminal(machine)
    json.loads(machine.stdout)


def test_no_secret_is_written_anywhere(cli, hostile, tmp_path) -> None:
    """Issue 25 item 11: URL userinfo and its Basic form, query tokens, --header values and a
    BSP echoing them back reach no terminal line, report, JUnit file, store or re-render."""
    import base64
    import sqlite3

    from ctwa.store.db import store_path

    secrets = ("PW-CANARY-1", "T-CANARY-2", "H-CANARY-3", "pw-CANARY-7f3a",
               base64.b64encode(b"u:PW-CANARY-1").decode(),
               base64.b64encode(b"ctwa:pw-CANARY-7f3a").decode())
    host = hostile.url.removeprefix("http://")
    hostile.echo, hostile.status = True, 500
    outputs = []
    try:
        outputs.append(cli("callback", "replay", str(FILES / "callbacks" / "lifecycle.yaml"),
                           "--status-url", f"http://u:PW-CANARY-1@{host}/status?"
                           "access_token=T-CANARY-2", "--inbound-url",
                           f"http://u:PW-CANARY-1@{host}/inbound", "--no-delay", "--report",
                           str(tmp_path / "replay.html"), "--junit",
                           str(tmp_path / "replay.xml")))
        for extra in ((), ("--count", "3", "--report", str(tmp_path / "load.html"),
                           "--junit", str(tmp_path / "load.xml"))):
            outputs.append(cli("--json", "send-template", "--sample", "text", "--to",
                               "919000000001", "--endpoint",
                               f"http://u:PW-CANARY-1@{host}/wa?sig=T-CANARY-2", "--header",
                               "X-Custom: H-CANARY-3", "--waba", "919999999998", *extra))
            outputs.append(cli("send-template", "--sample", "text", "--to", "919000000001",
                               "--endpoint", f"{hostile.url}/wa", *AUTH, "--header",
                               "X-Custom: H-CANARY-3", "--waba", "919999999998", "-v",
                               *extra))
    finally:
        hostile.echo, hostile.status = False, 200
    runs = json.loads(cli("--json", "runs", "list").stdout)
    assert any(run["command"] == "replay" for run in runs), outputs[0].stderr
    for run in runs:
        outputs.append(cli("report", "render", run["id"], "--report",
                           str(tmp_path / f"{run['id']}.html"), "--junit",
                           str(tmp_path / f"{run['id']}.xml")))
    written = [p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.is_file()]
    with sqlite3.connect(store_path()) as db:
        written += [repr(row) for table in ("runs", "sends", "callbacks", "load_runs")
                    for row in db.execute(f"SELECT * FROM {table}")]
    texts = written + [r.stdout + r.stderr for r in outputs]
    assert len(written) >= 8
    for secret in secrets:
        leaks = [t[max(0, t.find(secret) - 80):t.find(secret) + 40] for t in texts
                 if secret in t]
        assert not leaks, (secret, leaks[:2])


@pytest.mark.parametrize("msg_id", ["\x1b]0;owned\x07|1|2|3", "\x1b[2J\x9b31m[/x]|1|2|3",
                                    "a[/x]|1|2|\ud83d"])
def test_listener_lines_show_hostile_msgids_escaped(listener, msg_id, capsys) -> None:
    """Issue 25 item 10: a listener msgId with ESC/OSC sequences, C1 controls or markup is
    shown escaped in the listener's log line (never raw to the terminal)."""
    import httpx

    from ctwa.cli.callbacks import _say_received
    from ctwa.cli.output import Output

    body = json.dumps({"payloadVersion": "0.1", "statuses": [
        {"msgId": msg_id, "status": "delivered", "timestamp": "1435322805"}]})
    answer = httpx.post(f"{listener.url}/status", content=body.encode(),
                        headers={"Content-Type": "application/json"})
    assert answer.status_code < 500
    for received in listener.received:
        _say_received(Output(), received)
    err = capsys.readouterr().err
    assert err.strip() and not has_unsafe(err), repr(err)
    if "\ud83d" not in msg_id:  # (a lone surrogate makes the callback invalid: said so)
        assert "owned" in err or "2J" in err

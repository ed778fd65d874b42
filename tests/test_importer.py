"""import-templates: every paging shape (respx), the spec's samples, a real server end to end."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from ctwa.http import RetryPolicy, make_client
from ctwa.infra.errors import ExitCode
from ctwa.templates.importer import Importer, tracked_buttons, with_query
from ctwa.templates.library import TemplateLibrary
from ctwa.wire.meta import MetaTemplate
from tests.conftest import SPEC_SAMPLES, LiveServer

URL = "https://vendor.example/templates/import"
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001, total_time=5,
                   statuses=frozenset({429, 500, 502, 503, 504}), retry_read_errors=True)


def tpl(name: str, **over: Any) -> dict[str, Any]:
    return {"name": name, "language": "en", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": f"{name} {{{{1}}}}"}], **over}


def page(names: list[str], after: str | None = None, next_url: str | None = None) -> dict:
    body: dict[str, Any] = {"data": [tpl(n) for n in names]}
    paging: dict[str, Any] = {}
    if after:
        paging["cursors"] = {"before": "B", "after": after}
    if next_url:
        paging["next"] = next_url
    if paging:
        body["paging"] = paging
    return body


def run(tmp_path, **kw):
    library = TemplateLibrary(tmp_path / "lib")
    with make_client(retry=FAST) as client:
        report = Importer(client, library, **kw).run(URL, limit=2)
    return report, library


@respx.mock
def test_next_only(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a", "b"],
                                                            next_url=f"{URL}?p=2"))
    respx.get(f"{URL}?p=2").respond(json=page(["c"]))
    report, library = run(tmp_path)
    assert report.complete and report.pages == 2 and sorted(report.added) == [
        "a (en)", "b (en)", "c (en)"]
    assert set(library.index()) == {"a|en", "b|en", "c|en"}


@respx.mock
def test_after_only_repeats_the_first_request_with_the_cursor(tmp_path) -> None:
    first = respx.get(URL, params__eq={"limit": "2"}).mock(side_effect=[
        httpx.Response(200, json=page(["a", "b"], after="CUR1"))])
    second = respx.get(URL, params__eq={"limit": "2", "after": "CUR1"}).respond(
        json=page(["c"]))
    report, _ = run(tmp_path)
    assert first.called and second.called and report.fetched == 3


@respx.mock
def test_both_prefers_next(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(
        json=page(["a"], after="X", next_url="https://vendor.example/other?page=2"))
    nxt = respx.get("https://vendor.example/other?page=2").respond(json=page(["b"]))
    report, _ = run(tmp_path)
    assert nxt.called and report.fetched == 2


@respx.mock
def test_missing_paging_and_empty_last_page(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a"], after="E"))
    respx.get(URL, params__eq={"limit": "2", "after": "E"}).respond(json={"data": []})
    report, _ = run(tmp_path)
    assert report.complete and report.fetched == 1


@respx.mock
def test_query_already_in_the_url_is_kept() -> None:
    assert with_query("https://v.example/t?waba=1&limit=9", limit="50") == (
        "https://v.example/t?waba=1&limit=50")


@respx.mock
def test_loop_stops_keeping_what_was_fetched(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a"], next_url=f"{URL}?p=2"))
    respx.get(f"{URL}?p=2").respond(json=page(["b"], next_url=f"{URL}?limit=2"))
    report, library = run(tmp_path)
    assert not report.complete and "paging loops" in (report.error or "")
    assert report.exit_code == ExitCode.FAILED
    assert set(library.index()) == {"a|en", "b|en"}


@respx.mock
def test_the_specs_own_static_next_is_a_loop(tmp_path) -> None:
    sample = json.loads((SPEC_SAMPLES / "meta-page-basic.json").read_text())
    respx.route(method="GET").respond(json=sample)
    report, _ = run(tmp_path)
    assert report.fetched == 1 and len(report.duplicates) == 1 and "loops" in (report.error or "")


@respx.mock
def test_429_then_success(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).mock(side_effect=[
        httpx.Response(429), httpx.Response(200, json=page(["a"]))])
    report, _ = run(tmp_path)
    assert report.complete and report.fetched == 1


@respx.mock
def test_persistent_500_keeps_earlier_pages_and_exits_3(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a", "b"], after="P2"))
    failing = respx.get(URL, params__eq={"limit": "2", "after": "P2"}).respond(500)
    report, library = run(tmp_path)
    assert failing.call_count == 3
    assert report.exit_code == ExitCode.UNREACHABLE and "HTTP 500 after 3 attempts" in (
        report.error or "")
    assert set(library.index()) == {"a|en", "b|en"} and report.missing == []


@respx.mock
def test_body_that_is_not_json(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(200, text="<html>oops</html>")
    report, _ = run(tmp_path)
    assert report.exit_code == ExitCode.UNREACHABLE and "not JSON" in (report.error or "")


@respx.mock
def test_bad_credentials_exit_4(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(401)
    report, _ = run(tmp_path)
    assert report.exit_code == ExitCode.CONFIG and "refused the credentials" in report.error


@respx.mock
def test_invalid_template_among_good_ones(tmp_path) -> None:
    body = page(["good1", "good2"])
    body["data"].insert(1, {"name": "broken", "language": "en", "components": "nope"})
    body["data"].append({"name": "weird", "language": "en", "status": "SHINY",
                         "components": [{"type": "BODY", "text": "x"}, {"type": "HOLO"}]})
    respx.get(URL, params__eq={"limit": "2"}).respond(json=body)
    report, library = run(tmp_path)
    assert report.complete and len(report.added) == 3
    (rejected,) = report.rejected
    assert (rejected.name, rejected.path) == ("broken", "$.data[1].components")
    assert any("unknown status 'SHINY'" in f for f in report.flagged)
    assert any("unknown component type 'HOLO'" in f for f in report.flagged)
    assert "weird|en" in library.index()


@respx.mock
def test_reimport_reports_changes_and_prune(tmp_path) -> None:
    route = respx.get(URL, params__eq={"limit": "2"})
    route.respond(json=page(["a", "b"]))
    run(tmp_path)
    changed = page(["a", "c"])
    changed["data"][0]["components"][0]["text"] = "new text {{1}}"
    route.respond(json=changed)
    report, library = run(tmp_path)
    assert (report.added, report.updated, report.unchanged, report.missing) == (
        ["c (en)"], ["a (en)"], [], ["b (en)"])
    assert "b|en" in library.index()
    route.respond(json=page(["a", "c"]))
    report, library = run(tmp_path, prune=True)
    assert report.pruned == ["b (en)"] and "b|en" not in library.index()
    assert not (library.root / "b__en.json").exists()
    report, _ = run(tmp_path)
    assert report.unchanged == ["a (en)", "c (en)"] and report.added == []


@respx.mock
def test_status_filter_and_sendability_and_click_tracking(tmp_path) -> None:
    body = {"data": [
        tpl("ok"), tpl("draft", status="PENDING"),
        tpl("flowy", components=[{"type": "BODY", "text": "x"}, {"type": "BUTTONS", "buttons": [
            {"type": "FLOW", "text": "Go"}]}]),
        tpl("tracked", components=[{"type": "BODY", "text": "x"}, {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "No"},
            {"type": "URL", "text": "Go", "url": "https://clk.track.example/{{1}}"},
            {"type": "URL", "text": "Site", "url": "https://shop.example/"}]}])]}
    respx.get(URL, params__eq={"limit": "2"}).respond(json=body)
    report, library = run(tmp_path, statuses=frozenset({"APPROVED"}),
                          track_clicks="track.example")
    index = library.index()
    assert report.filtered == 1 and "draft|en" not in index
    assert index["flowy|en"].sendable is False and report.unsendable == {
        "flowy (en)": ["button 0: FLOW"]}
    assert index["tracked|en"].tracked_buttons == [1]


def test_tracked_buttons_match_subdomains_only() -> None:
    template = MetaTemplate.model_validate(tpl("t", components=[
        {"type": "BODY", "text": "x"}, {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "a", "url": "https://evil-track.example/x"},
            {"type": "URL", "text": "b", "url": "https://track.example/x"}]}]))
    assert tracked_buttons(template, "https://track.example/") == [1]


@pytest.mark.parametrize("sample", ["meta-page-basic", "meta-page-lto", "meta-page-carousel"])
def test_spec_samples_import_and_build_payloads(tmp_path, cli, sample: str) -> None:
    body = json.loads((SPEC_SAMPLES / f"{sample}.json").read_text())
    del body["paging"]["next"]
    with respx.mock:
        respx.get(URL, params__eq={"limit": "2"}).respond(json=body)
        respx.get(URL, params__eq={"limit": "2", "after": "MgZDZD"}).respond(json={"data": []})
        report, library = run(tmp_path)
    assert report.complete and not report.rejected and len(report.added) == 1
    name = body["data"][0]["name"]
    result = cli("send-template", "--template-file",
                 str(library.path_of(name, body["data"][0]["language"])),
                 "--examples", "--to", "919000000001", "--waba", "919000009190", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["template"]["namespace"] == name


def test_real_server_several_hundred_templates_end_to_end(cli, tmp_path) -> None:
    from ctwa.sandbox.vendor import generated_templates, vendor_app

    templates = generated_templates(340)
    with LiveServer(vendor_app(templates, token="imp-CANARY-0c11")) as server:
        result = cli("--json", "import-templates", "--url", f"{server.url}/templates",
                     "--limit", "50", "--token", "imp-CANARY-0c11",
                     "--library", str(tmp_path / "lib"))
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["pages"] == 7 and len(data["added"]) == 340 and data["complete"]
        again = cli("--json", "import-templates", "--url", f"{server.url}/templates",
                    "--token", "imp-CANARY-0c11", "--library", str(tmp_path / "lib"))
        assert len(json.loads(again.stdout)["unchanged"]) == 340
        denied = cli("import-templates", "--url", f"{server.url}/templates",
                     "--token", "wrong-token", "--library", str(tmp_path / "lib2"))
        assert denied.exit_code == ExitCode.CONFIG
    listed = cli("--json", "templates", "list", "--library", str(tmp_path / "lib"))
    assert len(json.loads(listed.stdout)) == 340


@respx.mock
def test_no_next_pages_with_the_cursor_form(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(
        json=page(["a"], after="C1", next_url=f"{URL}?limit=2&page_token=zz"))
    respx.get(URL, params__eq={"limit": "2", "after": "C1"}).respond(json=page(["b"]))
    library = TemplateLibrary(tmp_path / "lib")
    with make_client(retry=FAST) as client:
        report = Importer(client, library, follow_next=False).run(URL, limit=2)
    assert report.complete and sorted(report.added) == ["a (en)", "b (en)"]
    assert report.notices == []  # same origin: nothing to say


@respx.mock
def test_next_on_another_host_without_cursors_uses_the_cursor_in_the_next_url(tmp_path) -> None:
    graph = "https://graph.facebook.com/v21.0/1029384756/message_templates"
    respx.get(URL, params__eq={"limit": "2"}).respond(
        json=page(["a"], next_url=f"{graph}?access_token=EAAB&limit=2&after=QVFI"))
    respx.get(URL, params__eq={"limit": "2", "after": "QVFI"}).respond(json=page(["b"]))
    other = respx.get(url__startswith="https://graph.facebook.com").respond(json=page(["x"]))
    report, _ = run(tmp_path)
    assert report.complete and other.call_count == 0
    (notice,) = report.notices
    assert "graph.facebook.com" in notice and "access_token=EAAB" not in notice


GRAPH_ERROR = {"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                         "type": "OAuthException", "code": 190,
                         "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUv"}}


@respx.mock
def test_graph_error_bodies_say_what_meta_said(tmp_path) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(401, json=GRAPH_ERROR)
    report, _ = run(tmp_path)
    assert report.exit_code == ExitCode.CONFIG
    assert "Meta says: Invalid OAuth access token" in report.error
    assert "code 190" in report.error and "OAuthException" in report.error


@respx.mock
def test_graph_error_on_a_later_page(tmp_path) -> None:
    rate = {"error": {"message": "(#80008) There have been too many calls to this WhatsApp "
                      "Business account.", "type": "OAuthException", "code": 80008,
                      "error_subcode": 2494049}}
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a"], after="P2"))
    respx.get(URL, params__eq={"limit": "2", "after": "P2"}).respond(400, json=rate)
    report, library = run(tmp_path)
    assert report.exit_code == ExitCode.UNREACHABLE and "HTTP 400" in report.error
    assert "too many calls" in report.error and "subcode 2494049" in report.error
    assert set(library.index()) == {"a|en"}


@respx.mock
def test_duplicates_across_pages_are_counted_once_and_named(tmp_path, cli) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a", "b"], after="P2"))
    respx.get(URL, params__eq={"limit": "2", "after": "P2"}).respond(json=page(["b", "c"]))
    report, _library = run(tmp_path)
    assert report.fetched == 3 and report.duplicates == ["b (en), page 2"]
    assert sorted(report.added) == ["a (en)", "b (en)", "c (en)"]
    result = cli("import-templates", "--url", URL, "--limit", "2", "--library",
                 str(tmp_path / "lib2"))
    assert result.exit_code == 0
    assert "1 template(s) offered more than once, the first kept: b (en), page 2" in result.stderr



@pytest.mark.parametrize("names", [("Order", "order"), ("a/b", "a_b", "a b", "a?b"),
                                   ("x" * 300, "x" * 300 + "y")])
def test_names_map_to_files_one_to_one(tmp_path, names) -> None:
    """Names that differ only by case, `/`, `_` or spaces (or past 80 characters) never share
    a file, even on a case-insensitive file system."""
    library = TemplateLibrary(tmp_path / "lib")
    files = {library.path_of(n, "en").name.lower() for n in names}
    assert len(files) == len(names) and all(len(f) < 200 for f in files)
    for name in names:
        library.put({"name": name, "language": "en", "components": [{"type": "BODY",
                                                                      "text": name}]})
    for name in names:
        stored = json.loads(library.path_of(name, "en").read_text())
        assert stored["name"] == name


@respx.mock
def test_a_library_from_an_older_ctwa_is_moved_to_the_new_names(tmp_path) -> None:
    from ctwa.templates.library import Entry

    library = TemplateLibrary(tmp_path / "lib")
    old = library.root / "a__en.json"
    library.root.mkdir(parents=True)
    old.write_text(json.dumps(tpl("a"), ensure_ascii=False) + "\n")
    library.save_index({"a|en": Entry("a", "en", old.name, "APPROVED", "UTILITY")})
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a"]))
    with make_client(retry=FAST) as client:
        report = Importer(client, library).run(URL, limit=2)
    assert report.unchanged == ["a (en)"] and not old.exists()
    assert library.get("a")["name"] == "a"


@respx.mock
def test_ctrl_c_keeps_what_was_fetched_and_says_so(tmp_path, cli) -> None:
    respx.get(URL, params__eq={"limit": "2"}).respond(json=page(["a", "b"], after="P2"))
    def ctrl_c(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    respx.get(URL, params__eq={"limit": "2", "after": "P2"}).mock(side_effect=ctrl_c)
    result = cli("import-templates", "--url", URL, "--limit", "2", "--library",
                 str(tmp_path / "lib"))
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "interrupted after 1 page(s)" in result.stderr
    assert "kept 2 template(s)" in result.stderr
    assert set(TemplateLibrary(tmp_path / "lib").index()) == {"a|en", "b|en"}

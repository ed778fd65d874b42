"""Pull every template from a vendor's paginated GET endpoint into the local library.

Paging (spec: Import Templates; ERRATA 16): the first request is ``URL?limit=N``; next pages
follow ``paging.next`` when present, otherwise repeat the first request with
``after=<paging.cursors.after>``; stop when neither moves on or a page has no ``data``. Pages are
processed one at a time, so memory stays flat whatever the vendor holds.

A ``paging.next`` on another origin than ``--url`` (a vendor passing Meta's own paging through,
``graph.facebook.com``) is never followed: the vendor's credentials must not go there, so the
import goes on in the cursor form against ``--url`` and says so once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from ctwa.http import MAX_VENDOR_ANSWER, RetryPolicy, same_origin, send
from ctwa.infra.errors import CheckFailed, ConfigError, CtwaError, ExitCode, RemoteUnreachable
from ctwa.infra.masking import redact_url
from ctwa.infra.safetext import safe_text, surrogate_path
from ctwa.templates.library import Entry, TemplateLibrary, serialise
from ctwa.wire.lint import lint_document
from ctwa.wire.meta import MetaTemplate, unsendable_parts

DEFAULT_LIMIT = 50
DEFAULT_MAX_PAGES = 1000
IMPORT_RETRY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=8.0, total_time=60.0,
                           statuses=frozenset({429, 500, 502, 503, 504}),
                           retry_read_errors=True)


def with_query(url: str, **params: str) -> str:
    """``url`` with these query parameters set, keeping every other parameter it had."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in params]
    query += list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def index_key(name: str, language: str) -> str:
    """One key per (name, language): ``name|language``, with ``\\`` and ``|`` escaped in
    each, so that ``a|b`` + ``c`` and ``a`` + ``b|c`` stay two templates."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|")

    return f"{escape(name)}|{escape(language)}"


@dataclass
class Page:
    number: int
    url: str
    templates: list[Any]


class PagingLoop(CheckFailed):
    """The vendor sent a cursor or next URL it had already sent: following it never ends."""


Notice = Callable[[str], None]


def _cursor_of(next_url: str) -> str | None:
    """The ``after`` cursor inside a next URL (Meta's next links carry it in the query)."""
    values = [v for k, v in parse_qsl(urlsplit(next_url).query) if k == "after"]
    return values[-1] if values else None


def _next_target(next_url: str | None, after: str | None, first: str, follow_next: bool,
                 notices: set[str], notice: Notice | None) -> tuple[str | None, str | None]:
    """Which next URL to follow (None: use the cursor form) and the cursor, telling once why a
    next URL on another origin is not followed."""
    if next_url and follow_next and same_origin(next_url, first):
        return next_url, after
    if next_url and not same_origin(next_url, first) and "origin" not in notices:
        notices.add("origin")
        if notice is not None:
            notice(f"paging.next points at another host ({redact_url(next_url)}); it is not "
                   "followed, so the credentials stay with --url: continuing with "
                   "after=<cursor> against --url")
    return None, after or (_cursor_of(next_url) if next_url else None)


def iter_pages(client: httpx.Client, url: str, limit: int = DEFAULT_LIMIT,
               max_pages: int = DEFAULT_MAX_PAGES, *, follow_next: bool = True,
               notice: Notice | None = None) -> Iterator[Page]:
    """Yield pages in order; raise (after yielding every good page) when paging breaks.

    ``follow_next=False`` (``--no-next``) always uses the cursor form.
    """
    first = with_query(url, limit=str(limit))
    notices: set[str] = set()
    current = first
    seen_urls = {first}
    seen_cursors: set[str] = set()
    for number in range(1, max_pages + 1):
        body = _fetch(client, current, number)
        data = body.get("data")
        if not isinstance(data, list):
            shape = (" (it holds 360dialog's `waba_templates`)" if "waba_templates" in body
                     else "")
            raise CheckFailed(f"page {number} ({redact_url(current)}) has no `data` list{shape}",
                              hint="the vendor must answer in Meta's template list format "
                              "(data[] and paging), as the spec's import section shows")
        if not data:
            return
        yield Page(number, current, data)
        paging: dict[str, Any] = body["paging"] if isinstance(body.get("paging"), dict) else {}
        next_url = paging.get("next") if isinstance(paging.get("next"), str) else None
        cursors: dict[str, Any] = (paging["cursors"] if isinstance(paging.get("cursors"), dict)
                                   else {})
        after = cursors.get("after") if isinstance(cursors.get("after"), str) else None
        next_url, after = _next_target(next_url, after, first, follow_next, notices, notice)
        if next_url:
            if next_url in seen_urls or (after and after in seen_cursors):
                raise PagingLoop(f"paging loops: page {number} points back to an earlier page "
                                 f"({redact_url(next_url)})", hint="the vendor's cursors must "
                                 "move on; the templates fetched so far were kept")
            current = next_url
        elif after:
            if after in seen_cursors:
                raise PagingLoop(f"paging loops: page {number} repeats the cursor {after!r}",
                                 hint="the templates fetched so far were kept")
            current = with_query(first, after=after)
        else:
            return
        seen_urls.add(current)
        if after:
            seen_cursors.add(after)
    raise CheckFailed(f"stopped after {max_pages} pages (--max-pages); more were offered",
                      hint="raise --max-pages if the vendor really holds that many")


def _fetch(client: httpx.Client, url: str, number: int) -> dict[str, Any]:
    exchange = send(client, "GET", url, max_answer=MAX_VENDOR_ANSWER)
    response = exchange.response
    where = f"page {number} ({redact_url(url)})"
    said = graph_error(response.content)
    if response.status_code in (401, 403):
        raise ConfigError(f"{where}: HTTP {response.status_code}: the vendor refused the "
                          f"credentials{said}", hint="check --auth and the import token or "
                          "password")
    if response.status_code != 200:
        tries = f" after {exchange.attempts} attempts" if exchange.attempts > 1 else ""
        raise RemoteUnreachable(f"{where}: HTTP {response.status_code}{tries}{said}")
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RemoteUnreachable(f"{where}: the answer is not JSON") from None
    except (ValueError, RecursionError):  # 5000-digit numbers, nesting past Python's stack
        raise RemoteUnreachable(f"{where}: the answer is JSON ctwa cannot read (nested too "
                                "deeply or numbers too long)") from None
    if not isinstance(body, dict):
        raise RemoteUnreachable(f"{where}: the answer is not a JSON object")
    return body


def graph_error(content: bytes) -> str:
    """Meta's Graph API error body (``{"error": {"message", "code", ...}}``) as a clause that
    says what Meta said, or "" for any other body."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return ""
    details = [f"code {error['code']}" for _ in [0] if isinstance(error.get("code"), int)]
    if isinstance(error.get("error_subcode"), int):
        details.append(f"subcode {error['error_subcode']}")
    if isinstance(error.get("type"), str):
        details.append(safe_text(error["type"], keep_lines=False, limit=100))
    extra = f" ({', '.join(details)})" if details else ""
    return f": Meta says: {safe_text(error['message'], keep_lines=False, limit=300)}{extra}"


# --- checking and storing --------------------------------------------------------------------


@dataclass
class Rejected:
    name: str
    language: str
    page: int
    path: str
    reason: str


@dataclass
class ImportReport:
    url: str
    pages: int = 0
    fetched: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the library, not offered any more
    pruned: list[str] = field(default_factory=list)
    filtered: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    unsendable: dict[str, list[str]] = field(default_factory=dict)
    tracked: dict[str, list[int]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)  # offered again on a later page
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tracked_buttons(template: MetaTemplate, domain: str) -> list[int]:
    """Indexes of URL buttons pointing at the click-tracking domain (or a subdomain of it)."""
    domain = domain.lower().strip().removeprefix("https://").removeprefix("http://").strip("/")
    indexes: list[int] = []
    index = 0
    for comp in template.components:
        for button in comp.buttons or []:
            if button.type.upper() == "URL" and button.url:
                host = (urlsplit(button.url).hostname or "").lower()
                if host == domain or host.endswith("." + domain):
                    indexes.append(index)
            index += 1
    return indexes


ProgressHook = Callable[[int, int], None]


@dataclass
class Importer:
    client: httpx.Client
    library: TemplateLibrary
    statuses: frozenset[str] | None = None
    track_clicks: str | None = None
    prune: bool = False
    on_page: ProgressHook | None = None
    follow_next: bool = True

    def run(self, url: str, limit: int = DEFAULT_LIMIT,
            max_pages: int = DEFAULT_MAX_PAGES) -> ImportReport:
        """Import every page; on a failure keep what was stored, and say in the report why
        it stopped (``error``, ``exit_code``) rather than raising, so the summary still shows.
        """
        report = ImportReport(redact_url(url))
        # keyed again from each entry's own name and language: an index written with the old
        # keys (``a|b`` + ``c`` and ``a`` + ``b|c`` shared one) reads the same
        before = {index_key(e.name, e.language): e for e in self.library.index().values()}
        index = dict(before)
        seen: set[str] = set()
        try:
            for page in iter_pages(self.client, url, limit, max_pages,
                                   follow_next=self.follow_next, notice=report.notices.append):
                report.pages = page.number
                for position, raw in enumerate(page.templates):
                    self._one(raw, page.number, position, before, index, seen, report)
                if self.on_page:
                    self.on_page(page.number, report.fetched)
            report.complete = True
        except CtwaError as exc:
            report.error, report.exit_code = str(exc), exc.exit_code
        except KeyboardInterrupt:
            report.error = (f"interrupted after {report.pages} page(s); the templates fetched so "
                            "far were kept")
            report.exit_code = ExitCode.INTERRUPTED
        finally:
            self._finish(report, before, index, seen)
        return report

    def _one(self, raw: Any, page: int, position: int, before: dict[str, Entry],
             index: dict[str, Entry], seen: set[str], report: ImportReport) -> None:
        name = str(raw.get("name", "?")) if isinstance(raw, dict) else "?"
        language = str(raw.get("language", "?")) if isinstance(raw, dict) else "?"
        key, label = index_key(name, language), f"{name} ({language})"
        if key in seen and isinstance(raw, dict):
            report.duplicates.append(f"{label}, page {page}")  # counted once, the first kept
            return
        report.fetched += 1
        seen.add(key)
        broken = surrogate_path(raw)
        if broken is not None:  # not Unicode text: it cannot be stored, the others still are
            report.rejected.append(Rejected(
                name, language, page, f"$.data[{position}]{broken[1:]}",
                "holds a lone surrogate (half of a character, e.g. of an emoji): not valid "
                "Unicode; the vendor must send whole characters"))
            return
        result = lint_document(raw, "meta-template", f"page {page} data[{position}]")
        if not result.ok:
            first = result.errors[0]
            report.rejected.append(Rejected(name, language, page,
                                            f"$.data[{position}]{first.path[1:]}", first.message))
            return
        template: MetaTemplate = result.value
        for problem in result.warnings:
            report.flagged.append(f"{label}: {problem.path[2:] or 'template'}: {problem.message}")
        if self.statuses is not None and (template.status or "").upper() not in self.statuses:
            report.filtered += 1
            return
        refused = unsendable_parts(template)
        if refused:
            report.unsendable[label] = refused
        tracked = tracked_buttons(template, self.track_clicks) if self.track_clicks else []
        if tracked:
            report.tracked[label] = tracked
        path = self.library.path_of(template.name, template.language)
        text = serialise(raw)
        stored = self.library.root / before[key].file if key in before else None
        old = stored.read_text(encoding="utf-8") if stored and stored.exists() else None
        if old == text and stored == path:
            report.unchanged.append(label)
        else:
            self.library.put(raw, text)
            if stored is not None and stored != path:  # a library written by an older ctwa
                stored.unlink(missing_ok=True)
            (report.updated if key in before and old != text else
             report.unchanged if key in before else report.added).append(label)
        index[key] = Entry(template.name, template.language, path.name, template.status,
                           template.category, not refused, tracked)

    def _finish(self, report: ImportReport, before: dict[str, Entry],
                index: dict[str, Entry], seen: set[str]) -> None:
        if report.complete:
            gone = sorted(set(before) - seen)
            report.missing = [f"{before[k].name} ({before[k].language})" for k in gone]
            if self.prune:
                for key in gone:
                    (self.library.root / before[key].file).unlink(missing_ok=True)
                    index.pop(key, None)
                report.pruned, report.missing = report.missing, []
        if index != before or not (self.library.root / "index.json").exists():
            self.library.save_index(index)

"""``import-templates`` and ``templates list|show|lint``: the local template library."""

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli import complete
from ctwa.cli.commands import Typer
from ctwa.cli.context import Invocation, of
from ctwa.cli.options import int_option, seconds
from ctwa.cli.output import Output
from ctwa.cli.reports import (
    JunitOpt,
    ReportOpt,
    check_report_paths,
    conclude,
)
from ctwa.infra import envvars
from ctwa.infra.errors import ExitCode, InputError

app = Typer(help="The local template library that import-templates fills and "
            "send-template reads.", no_args_is_help=True, rich_markup_mode=None)


def _library(inv: Invocation, folder: Path | None):
    from ctwa.templates.library import TemplateLibrary, default_root

    name, _ = inv.profile()
    return TemplateLibrary(folder or default_root(name))


# --- import-templates ------------------------------------------------------------------------


def import_templates(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        "--url", metavar="URL", help="Vendor's template import URL (default: the profile's).")]
    = None,
    limit: Annotated[int, int_option(
        "--limit", min=1, max=10_000, help="Templates per page (the spec recommends 50-500).")]
    = 50,
    out_dir: Annotated[Path | None, typer.Option(
        "--library", metavar="DIR",
        help="Library folder (default: the profile's, under the data dir).")] = None,
    track_clicks: Annotated[str | None, typer.Option(
        "--track-clicks", metavar="DOMAIN",
        help="Click-tracking domain: URL buttons pointing there are tagged.")] = None,
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="Keep only templates with this status (repeatable), e.g. APPROVED.")]
    = None,
    max_pages: Annotated[int, int_option("--max-pages", min=1, help="Stop after this many "
                                         "pages.")] = 1000,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Delete library templates the vendor no longer offers.")] = False,
    no_next: Annotated[bool, typer.Option(
        "--no-next", help="Ignore paging.next; always page with after=<cursor> against --url "
        "(a next URL on another host is never followed anyway).")] = False,
    auth: Annotated[str | None, typer.Option(
        "--auth", autocompletion=complete.fixed(*complete.AUTH_KINDS),
        help="basic, bearer, header or none (default: the profile's).")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Basic auth username.")]
    = None,
    password: Annotated[str | None, typer.Option(
        "--password", help="Basic auth password. [env var: CTWA_IMPORT_PASSWORD]")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help=f"Bearer token or header value. [env var: {envvars.IMPORT_TOKEN}]")]
    = None,
    header_name: Annotated[str | None, typer.Option(
        "--header-name", help="Header carrying the token for --auth header.")] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", metavar="'NAME: VALUE'", help="Extra header (repeatable).")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", parser=seconds, metavar="DURATION", help="Per page request, e.g. 30s.")]
    = 30.0,
    report_file: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Pull every template from a vendor's paginated endpoint (Meta's format) into the library.

    Each template is checked; invalid ones are reported and skipped, the rest imported. A
    re-import reports added, updated, unchanged and no-longer-offered templates.
    """
    import time

    from ctwa.http import make_client
    from ctwa.infra.secrets import SecretResolver
    from ctwa.send.endpoint import EndpointFlags, Service, resolve_endpoint
    from ctwa.templates.importer import IMPORT_RETRY, Importer
    from ctwa.templates.library import TemplateLibrary, default_root

    inv = of(ctx)
    out = inv.out
    check_report_paths(report_file, junit)
    profile_name, profile = inv.profile()
    flags = EndpointFlags(url, auth, username, password, token, header_name, tuple(header or ()))
    target = resolve_endpoint(flags, Service.template_import(profile),
                              SecretResolver(profile_name, inv.secrets))
    for note in target.notes:  # which profile values the options given overrode
        out.stderr_trace(note)
    library = TemplateLibrary(out_dir or default_root(profile_name))
    statuses = frozenset(s.upper() for s in status) if status else None
    with make_client(auth=target.auth, headers=target.headers, timeout=timeout,
                     retry=IMPORT_RETRY, follow_redirects=True, origin=target.url,
                     trace=out.stderr_trace if out.verbose else None) as client, \
            _progress(out) as on_page:
        importer = Importer(client, library, statuses, track_clicks or profile.track_clicks,
                            prune, on_page, follow_next=not no_next)
        started = time.time()
        report = importer.run(target.url, limit, max_pages)
    from ctwa.report.summary import import_summary

    summary = import_summary(report, started, time.time())
    summary["data"].update(_library_counts(library, report))
    code = conclude(inv, summary, document={
        **report.as_dict(), "library": str(library.root), "verdict": summary["verdict"],
        "outcome": summary["outcome"]}, render=lambda: _report_import(out, report,
                                                                       library.root),
        report=report_file, junit=junit)
    if report.error:
        out.stderr_error(report.error)
        kept = len(report.added) + len(report.updated) + len(report.unchanged)
        if kept:
            out.stderr_line(
                f"kept {kept} template(s) in {library.root}; run the same command again "
                "to finish the import")
        raise typer.Exit(report.exit_code or code)
    if code:
        raise typer.Exit(code)
    out.stderr_line(
        "next: `ctwa templates list --sendable`, then `ctwa templates show NAME`", "dim")



def _library_counts(library: Any, report: Any) -> dict[str, dict[str, int]]:
    """Templates of this import by status and by category, for the report's charts."""
    from collections import Counter

    names = set(report.added) | set(report.updated) | set(report.unchanged)
    by_status: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    for entry in library.index().values():
        if f"{entry.name} ({entry.language})" in names:
            by_status[str(entry.status)] += 1
            by_category[str(entry.category)] += 1
    return {"by_status": dict(by_status), "by_category": dict(by_category)}


def _progress(out: Output):
    if out.json_mode or not out.stderr_console.is_terminal:
        return contextlib.nullcontext()
    from contextlib import contextmanager

    from rich.progress import Progress, SpinnerColumn, TextColumn

    @contextmanager
    def running():
        with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                      console=out.stderr_console, transient=True) as progress:
            task = progress.add_task("importing...", total=None)

            def on_page(pages: int, templates: int) -> None:
                progress.update(task, description=f"page {pages}: {templates} templates")

            yield on_page

    return running()


def _report_import(out: Output, report: Any, root: Path) -> None:
    from rich.table import Table
    # the notices are the verdict's warnings: render_verdict says them
    if report.duplicates:
        out.stderr_warn(
            f"{len(report.duplicates)} template(s) offered more than once, the first kept: "
            + "; ".join(report.duplicates[:10])
            + (" ..." if len(report.duplicates) > 10 else ""))
    for rejected in report.rejected:
        out.stderr_warn(f"skipped {rejected.name} ({rejected.language}), page {rejected.page}: "
                        f"{rejected.path}: {rejected.reason}")
    for flag in report.flagged:
        out.stderr_line(f"note: {flag}", "yellow")
    for label, parts in report.unsendable.items():
        out.stderr_line(
            f"note: {label} cannot be sent through CleverTap: {', '.join(parts)}", "yellow")
    out.stdout_line(f"import from {report.url}")  # whole: a table title would wrap the URL
    table = Table(box=None, show_header=False)
    rows = [("pages", report.pages), ("templates fetched", report.fetched),
            ("added", len(report.added)), ("updated", len(report.updated)),
            ("unchanged", len(report.unchanged)), ("skipped (invalid)", len(report.rejected)),
            ("duplicates (counted once)", len(report.duplicates)),
            ("filtered by --status", report.filtered),
            ("no longer offered (kept)", len(report.missing)),
            ("pruned", len(report.pruned)),
            ("click-tracked templates", len(report.tracked))]
    for label, value in rows:
        table.add_row(label, str(value))
    if report.fetched or not report.error:  # no table of zeros before an error line
        out.stdout_table(table)
    out.stderr_line(f"library: {root}")


# --- templates list / show / lint ------------------------------------------------------------


@app.command("list")
def list_templates(
    ctx: typer.Context,
    category: Annotated[list[str] | None, typer.Option(
        "--category", help="Only this category (repeatable).")] = None,
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="Only this status (repeatable, any case), e.g. APPROVED.")] = None,
    language: Annotated[list[str] | None, typer.Option(
        "--language", help="Only this language code (repeatable), e.g. en_US.")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", metavar="GLOB", help="Only names matching this pattern, e.g. 'order_*'.")]
    = None,
    sendable: Annotated[bool, typer.Option(
        "--sendable", help="Only templates that can be sent: approved, and with no part "
        "CleverTap cannot send.")] = False,
    folder: Annotated[Path | None, typer.Option("--library", metavar="DIR",
                                                help="Library folder.")] = None,
) -> None:
    """List the templates in the library (names whole, one per line, on stdout)."""
    from fnmatch import fnmatchcase

    out = of(ctx).out
    library = _library(of(ctx), folder)
    categories = {c.upper() for c in category} if category else None
    statuses = {s.upper() for s in status} if status else None
    _check_statuses(statuses)
    languages = {lang.lower() for lang in language} if language else None
    entries = [e for e in library.index().values()
               if (categories is None or (e.category or "").upper() in categories)
               and (statuses is None or (e.status or "").upper() in statuses)
               and (languages is None or e.language.lower() in languages)
               and (name is None or fnmatchcase(e.name, name))
               and (not sendable or e.can_send)]
    entries.sort(key=lambda e: (e.name, e.language))
    if out.json_mode:
        out.stdout_json([{**vars(e), "can_send": e.can_send} for e in entries])
        return
    if not entries:
        what = "templates matching these filters" if any(
            (category, status, language, name, sendable)) else "templates"
        out.stderr_line(f"no {what} in {library.root}; run `ctwa import-templates`" if what ==
                        "templates" else f"no {what} in {library.root}")
        return
    from rich.table import Table

    table = Table("name", "language", "status", "category", "sendable", box=None)
    for e in entries:
        table.add_row(e.name, e.language, e.status or "", e.category or "", _why_not(e))
    out.stdout_table(table)


def _why_not(entry: Any) -> str:
    from ctwa.wire.meta import is_approved

    if not is_approved(entry.status):
        return f"no: {(entry.status or '').upper()}"
    return "yes" if entry.sendable else "no: parts CleverTap cannot send"


@app.command("show")
def show_template(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(autocompletion=complete.templates,
                                        help="Template name.")],
    language: Annotated[str | None, typer.Option("--language", help="Language.")] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--vars", "--var", metavar="[KEY=]VALUE",
        help="Fill placeholders for a preview (repeatable).")] = None,
    folder: Annotated[Path | None, typer.Option("--library", help="Library folder.")] = None,
) -> None:
    """Render a template the way a WhatsApp message looks."""
    from ctwa.cli.preview import parameter_order, render_template
    from ctwa.send.build import is_named, parse_template
    from ctwa.send.params import parse_vars

    out = of(ctx).out
    raw = _library(of(ctx), folder).get(name, language)
    if out.json_mode:
        out.stdout_json(raw)
        return
    template = parse_template(raw, name)
    named = is_named(template)
    values = _preview_values(template, parse_vars(var or []), named)
    out.stdout_result(render_template(template, values, out.preview_width()))
    if named:
        out.stdout_result("sent in this order (the payload carries values, not names):")
        for where, what in parameter_order(template, values):
            out.stdout_result(f"  {where}: {what}")


def _preview_values(template: Any, given: dict[str, str], named: bool) -> dict[str, str]:
    """``--vars`` as placeholder values, the way send-template reads them (a bare value fills
    the next placeholder in sending order, by name for a NAMED template)."""
    from ctwa.send.build import given_value, placeholders

    values: dict[str, str] = {}
    for comp in template.components:
        if comp.type.upper() in ("HEADER", "BODY"):
            for position, key in enumerate(placeholders(comp.text, named), start=1):
                value = given_value(key, position, given) if comp.type.upper() == "BODY" \
                    else given.get(key)
                if value is not None:
                    values[key] = value
    return values


@app.command("lint")
def lint_templates(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Meta-format template files or folders.")],
) -> None:
    """Check Meta-format templates (or list pages) with the same rules as the import."""
    from ctwa.cli.lint import render_lint
    from ctwa.wire.kinds import detect_kind
    from ctwa.wire.lint import expand_arrays, iter_files, lint_document, load_documents

    out = of(ctx).out
    results = []
    for path in iter_files(paths):
        for source, doc in expand_arrays(load_documents(path)):
            kind = detect_kind(doc)
            results.append(lint_document(doc, kind if kind == "meta-page" else "meta-template",
                                         source))
    if not results:
        raise InputError("no JSON or YAML files found")
    if out.json_mode:
        out.stdout_json(
            {"ok": all(r.ok for r in results), "documents": [r.as_dict() for r in results]})
    else:
        render_lint(out, results)
    if not all(r.ok for r in results):
        raise typer.Exit(ExitCode.FAILED)


def register(root: typer.Typer) -> None:
    root.command("import-templates")(import_templates)
    root.add_typer(app, name="templates")


def _check_statuses(statuses: set[str] | None) -> None:
    """An unknown ``--status`` is refused naming the known ones (it would match nothing)."""
    from ctwa.infra.suggest import did_you_mean
    from ctwa.wire.meta import KNOWN_STATUSES

    known = sorted(KNOWN_STATUSES)
    for given in sorted(statuses or ()):
        if given not in KNOWN_STATUSES:
            raise InputError(f"--status {given}: not a template status",
                             hint=did_you_mean(given, known, otherwise="known: "
                                               + ", ".join(known)))

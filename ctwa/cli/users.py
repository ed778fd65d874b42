"""``ctwa upload-users``: validate a CSV of users and upload it to CleverTap, nothing lost."""

import contextlib
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli import complete
from ctwa.cli.context import Invocation, of
from ctwa.cli.options import int_option, seconds
from ctwa.cli.output import Output
from ctwa.cli.reports import (
    JunitOpt,
    ReportOpt,
    conclude,
)
from ctwa.infra import envvars
from ctwa.infra.errors import InputError

COLUMN_TYPES = ("str", "int", "float", "bool", "date")


def _column_types(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in values:
        name, sep, kind = raw.rpartition("=")
        if not sep or not name.strip() or kind not in COLUMN_TYPES:
            raise InputError(f"--column-type {raw!r}: write NAME=TYPE with TYPE one of "
                             f"{', '.join(COLUMN_TYPES)}")
        out[name.strip()] = kind
    return out


def upload_users(
    ctx: typer.Context,
    csv_path: Annotated[Path, typer.Argument(metavar="CSV", help="The users file.")],
    region: Annotated[str | None, typer.Option(
        "--region", autocompletion=complete.regions,
        help="CleverTap region: in1, sg1, us1, aps3, mec1, eu.")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", metavar="URL", help="CleverTap API base URL (overrides --region).")] = None,
    account_id: Annotated[str | None, typer.Option(
        "--account-id", help=f"CleverTap account id. [env var: {envvars.ACCOUNT_ID}]")] = None,
    passcode: Annotated[str | None, typer.Option(
        "--passcode", help=f"CleverTap passcode. [env var: {envvars.PASSCODE}]")] = None,
    batch_size: Annotated[int, int_option(
        "--batch-size", min=1, max=1000, help="Records per request (CleverTap allows 1000).")]
    = 1000,
    concurrency: Annotated[int, int_option(
        "--concurrency", min=1, max=15,
        help="Requests in parallel (CleverTap allows 15 per account).")] = 5,
    encoding: Annotated[str, typer.Option(
        "--encoding", help="File encoding (a UTF-8 BOM is handled either way).")] = "utf-8-sig",
    delimiter: Annotated[str | None, typer.Option(
        "--delimiter", help="Field delimiter (default: sniffed from the header).")] = None,
    default_region: Annotated[str | None, typer.Option(
        "--default-region", metavar="CC",
        help="Country (e.g. IN) for numbers written without + and country code.")] = None,
    column_type: Annotated[list[str] | None, typer.Option(
        "--column-type", metavar="NAME=TYPE",
        help="Send a column as int, float, bool or date instead of a string.")] = None,
    drop_column: Annotated[list[str] | None, typer.Option(
        "--drop-column", metavar="NAME", help="Leave a column out.")] = None,
    rejects: Annotated[Path | None, typer.Option(
        "--rejects", help="Where rejected rows go (default: next to the CSV).")] = None,
    journal: Annotated[Path | None, typer.Option(
        "--journal", help="Batch journal for --resume (default: next to the CSV).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Skip the batches a previous run finished.")] = False,
    restart: Annotated[bool, typer.Option(
        "--restart", help="Start over although a journal from an earlier run exists (its "
        "journal and rejects file are replaced).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check everything, show the first batch, send nothing.")] = False,
    workers: Annotated[int | None, int_option(
        "--workers", min=1, help="Processes checking rows (default: cores, for big files).")]
    = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", parser=seconds, metavar="DURATION", help="Per request, e.g. 30s.")]
    = 30.0,
    report_file: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Upload user profiles from a CSV to CleverTap's regional API, in batches.

    Every row ends up uploaded or in the rejects file with its reason, and the final
    reconciliation shows it: rows read = uploaded + rejected + refused + not uploaded.
    Exit 0 only if every row was uploaded.
    """
    from ctwa.upload.run import Uploader, UploadOptions

    inv = of(ctx)
    out = inv.out
    if default_region is not None and not (len(default_region) == 2 and
                                           default_region.isalpha()):
        raise InputError(f"--default-region {default_region!r}: use a two-letter country "
                         "code such as IN or US")
    delimiter = delimiter.replace("\\t", "\t") if delimiter else None  # a typed "\t" is a tab
    if delimiter is not None and len(delimiter) != 1:
        raise InputError(f"--delimiter {delimiter!r}: give one character (\\t for a tab)")
    if csv_path.is_dir():
        raise InputError(f"{csv_path}: is a folder, not a CSV file",
                         hint="give the users file itself, e.g. "
                         f"{csv_path.as_posix().rstrip('/')}/users.csv")
    if csv_path.exists() and not csv_path.is_file():
        raise InputError(f"{csv_path}: not a regular file",
                         hint="give the users CSV file itself")
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such file")
    if resume and restart:
        raise InputError("give --resume or --restart, not both")
    options = UploadOptions(
        csv_path, encoding, delimiter, default_region, _column_types(column_type or []),
        frozenset(drop_column or []), batch_size, concurrency, rejects, journal, resume,
        dry_run, workers)
    from ctwa.infra.outputs import check_outputs

    check_outputs({"--report": report_file, "--junit": junit,
                   "--rejects": None if dry_run else options.rejects_path,
                   "--journal": None if dry_run else options.journal_path}, [csv_path])
    _check_journal(options, restart)
    client, url = None, None
    headers: dict[str, str] = {}
    url, headers = _target(inv, region, base_url, account_id, passcode, dry_run)
    if not dry_run:
        from ctwa.http import make_client
        from ctwa.upload.clevertap import UPLOAD_RETRY

        client = make_client(headers=headers.items(), timeout=timeout, retry=UPLOAD_RETRY,
                             max_connections=concurrency, origin=url,
                             trace=out.stderr_trace if out.verbose else None)
    import time

    started = time.time()
    rows_at = _RowsPerSecond()
    try:
        with _progress(out) as progress:
            report = Uploader(options, client, url, rows_at.wrap(progress)).run()
    finally:
        if client is not None:
            client.close()
    from ctwa.report.summary import upload_summary

    summary = upload_summary(report, started, time.time(), url or str(csv_path))
    summary["data"]["series"] = rows_at.series(report.counts.rows_read)
    from ctwa.infra.masking import redact_header_value

    masked = {k: redact_header_value(k, v) if v else "(none)" for k, v in headers.items()}
    code = conclude(inv, summary, document={
        **report.as_dict(), "request": {"url": url, "headers": masked},
        "verdict": summary["verdict"], "outcome": summary["outcome"]},
        render=lambda: _render(out, report, url, masked, csv_path), report=report_file,
        junit=junit)
    if report.interrupted and dry_run:  # nothing was sent, no journal to resume from
        out.stderr_line("interrupted: a dry run sends nothing; run the same command again to check "
                        "the whole file", "bold")
    elif report.interrupted:
        out.stderr_line("to finish the upload, run: " + _resume_command(), "bold")
        _secret_note(out)
    if report.exit_code not in (0, 1, 130):  # could not reach CleverTap, bad credentials
        code = report.exit_code
    if code:
        raise typer.Exit(code)


def _target(inv: Invocation, region: str | None, base_url: str | None, account_id: str | None,
            passcode: str | None, dry_run: bool) -> tuple[str | None, dict[str, str]]:
    from ctwa.infra.errors import ConfigError
    from ctwa.infra.secrets import SecretResolver
    from ctwa.send.endpoint import resolve_upload_target

    out = inv.out
    name, profile = inv.profile()
    try:
        target = resolve_upload_target(profile, SecretResolver(name, inv.secrets),
                                       account_id=account_id, passcode=passcode,
                                       region=region, base_url=base_url,
                                       require_passcode=not dry_run)
    except ConfigError:
        if not dry_run:
            raise
        return None, {}  # a dry run checks the file without any account
    for note in target.notes:  # which profile values the options given overrode
        out.stderr_trace(note)
    return target.url, target.headers


def _check_journal(options: Any, restart: bool) -> None:
    """A journal left by an earlier run means rows may be uploaded already: never start over
    silently (nor finish silently); ask which."""
    journal = options.journal_path
    if options.dry_run or options.resume or not journal.exists():
        return
    if restart:
        journal.unlink()
        return
    from ctwa.upload.journal import Journal

    done = Journal.finished(journal)
    if done is None:
        raise InputError(f"{journal} exists: an earlier upload of this file did not finish",
                         hint="pass --resume to finish it without sending anything twice, or "
                         "--restart to upload every row again")
    missing = done.get("not_uploaded", 0)
    counts = (f"{done.get('uploaded', 0):,} of {done.get('rows_read', 0):,} rows uploaded"
              + (f", {missing:,} not uploaded" if missing else ""))
    raise InputError(f"{journal} exists: an earlier upload of this file finished ({counts})",
                     hint=("pass --resume to send the rows not uploaded again, or --restart "
                           "to upload every row again") if missing else
                     "pass --restart to upload every row again, or delete the journal")


#: upload-users options that belong to one run of one file, not to the next command.
_RUN_FLAGS = frozenset({"--resume", "--restart", "--dry-run"})
_RUN_VALUED = frozenset({"--rejects", "--journal", "--report", "--junit"})


def _same_options(argv: list[str], drop_csv: Path | None = None) -> list[str]:
    """This command's arguments without the ones that belong to this run (and its CSV)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _RUN_FLAGS or (arg.split("=", 1)[0] in _RUN_VALUED and "=" in arg):
            continue
        if arg in _RUN_VALUED:
            skip = True
            continue
        if drop_csv is not None and not arg.startswith("-") and Path(arg) == drop_csv:
            drop_csv = None
            continue
        kept.append(arg)
    return kept


def _printed(args: list[str]) -> str:
    """A command to run next, as it runs: a secret given on the command line is left out
    (it is never printed; ``CTWA_PASSCODE`` or the keyring gives it) rather than shown as a
    mask that would be sent as the passcode."""
    from ctwa.infra.masking import scrub

    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--passcode":
            skip = True
        elif not arg.startswith("--passcode="):
            kept.append(arg)
    return scrub(" ".join(shlex.quote(a) for a in ["ctwa", *kept]))


def _secret_note(out: Output) -> None:
    if any(a == "--passcode" or a.startswith("--passcode=") for a in sys.argv):
        out.stderr_line(
            f"(the passcode is left out: export {envvars.PASSCODE}=... first, or keep it "
            "in the profile with `ctwa profile set-secret NAME passcode`)", "dim")


def _resume_command() -> str:
    args = [a for a in sys.argv[1:] if a not in ("--resume", "--restart")]
    return _printed([*args, "--resume"])


def _rejects_command(csv_path: Path, rejects: str) -> str:
    """The same upload over the rejects file, once its rows are fixed."""
    args = _same_options(sys.argv[1:], csv_path)
    at = args.index("upload-users") + 1 if "upload-users" in args else 0
    return _printed([*args[:at], rejects, *args[at:]])



class _RowsPerSecond:
    """Rows read each second, from the progress calls, for the report's chart."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.marks: list[int] = []  # rows read by the end of each second

    def wrap(self, progress: Any) -> Any:
        def update(report: Any, done: int, size: int) -> None:
            second = int(time.monotonic() - self.started)
            while len(self.marks) <= second:
                self.marks.append(self.marks[-1] if self.marks else 0)
            self.marks[second] = report.counts.rows_read
            if progress is not None:
                progress(report, done, size)

        return update

    def series(self, total: int) -> dict[str, list[int]]:
        marks = [*self.marks, total]
        rows = [b - a for a, b in zip([0, *marks[:-1]], marks, strict=True)]
        return {"second": list(range(len(rows))), "rows": rows}


def _progress(out: Output):
    if out.json_mode or not out.stderr_console.is_terminal:
        return contextlib.nullcontext()
    from contextlib import contextmanager

    from rich.progress import BarColumn, Progress, TextColumn

    @contextmanager
    def running():
        with Progress(BarColumn(), TextColumn("{task.description}"), console=out.stderr_console,
                      transient=True) as bar:
            task = bar.add_task("reading", total=None)
            started = time.monotonic()

            def update(report: Any, done: int, size: int) -> None:
                text = progress_line(done, size, report.counts.rows_read,
                                     report.batches_sent, time.monotonic() - started)
                bar.update(task, completed=done, total=size or None, description=text)

            yield update

    return running()


def progress_line(done: int, size: int, rows: int, batches: int, elapsed: float) -> str:
    """What the upload's bar says: bytes read of the file's size and the share, rows and
    batches, rows per second, and the time left at the pace so far."""
    rate = rows / elapsed if elapsed > 0 else 0.0
    parts = []
    if size:
        share = min(done / size, 1.0)
        parts.append(f"{human_bytes(done)} of {human_bytes(size)} ({share:.0%})")
    parts.append(f"{rows:,} rows, {batches:,} batches, {rate:,.0f} rows/s")
    if size and 0 < done < size and elapsed > 0.5:
        left = (size - done) / (done / elapsed)
        parts.append(f"ETA {int(left // 60)}:{int(left % 60):02d}")
    return ", ".join(parts)


def human_bytes(count: int) -> str:
    """1.2 MB, 340 KB, 12 B (decimal units, as file managers show sizes)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _render(out: Output, report: Any, url: str | None, masked: dict[str, str],
            csv_path: Path) -> None:
    """The upload for people (the request's headers already masked)."""
    from rich.table import Table

    counts = report.counts
    for note in report.notes[:20]:
        out.stderr_warn(note)
    for row, reason in report.rejected_sample:
        out.stderr_line(f"row {row}: {reason}", "yellow")
    if report.dry_run and report.first_batch is not None:
        import json

        out.stderr_line(
            f"first batch ({len(report.first_batch)} records) would go to "
            f"{url or '(no account given: pass --account-id, or use a profile)'}", "bold")
        for key, value in masked.items():
            out.stderr_line(f"  {key}: {value}", "dim")
        out.stdout_line(json.dumps({"d": report.first_batch}, indent=2, ensure_ascii=False))
    table = Table(title="reconciliation" + (" (dry run)" if report.dry_run else ""),
                  box=None, show_header=False)
    table.add_row("rows read", f"{counts.rows_read:,}")
    if report.dry_run:
        table.add_row("would be uploaded", f"{counts.would_upload:,}")
        if counts.not_uploaded:
            table.add_row("not checked (the run stopped)", f"{counts.not_uploaded:,}")
    else:
        table.add_row("uploaded", f"{counts.uploaded:,}")
    table.add_row("rejected before sending", f"{counts.rejected:,}")
    if not report.dry_run:
        table.add_row("refused by CleverTap", f"{counts.refused:,}")
        table.add_row("not uploaded", f"{counts.not_uploaded:,}")
        table.add_row("batches sent / skipped (resume)",
                      f"{report.batches_sent:,} / {report.batches_skipped:,}")
    table.add_row("adds up", "yes" if counts.adds_up else "NO")
    table.add_row("time", f"{report.elapsed:.1f} s")
    if counts.rows_read or not report.error:  # no table of zeros before an error line
        out.stdout_table(table)
    if report.error:
        out.stderr_error(report.error)
    to_fix = counts.rejected + counts.refused
    if not report.dry_run and (to_fix or counts.not_uploaded):
        out.stderr_line(f"rejects: {report.rejects}")
    if not report.dry_run and not report.interrupted and to_fix:  # rows that need a fix
        out.stderr_line(f"next: fix the rows in {report.rejects} and upload that file as it is: "
                        f"{_rejects_command(csv_path, report.rejects)}", "dim")
        _secret_note(out)
    elif report.dry_run and counts.rejected:
        out.stderr_line(
            "(a dry run writes no rejects file; run without --dry-run to get one, or fix "
            "the rows above)")


def register(app: typer.Typer) -> None:
    app.command("upload-users")(upload_users)

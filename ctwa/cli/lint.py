"""``ctwa lint``: check documents against the wire formats, each problem with its JSON path."""


from pathlib import Path

import typer

from ctwa.cli.context import of
from ctwa.cli.output import Output, problem_line
from ctwa.infra.errors import ExitCode, InputError

#: The wire formats with a JSON Schema (``ctwa schema``; ctwa.wire.kinds.KINDS, named here so
#: that start-up does not import the models).
SCHEMA_KINDS = ("template", "freeform", "validation", "response", "status", "inbound",
                "meta-template", "meta-page", "upload", "upload-response")
#: What lint checks: those, and Meta's webhooks (Meta's format: ctwa publishes no schema).
KIND_NAMES = (*SCHEMA_KINDS, "meta-webhook")


def complete_kind(incomplete: str) -> list[str]:
    return [k for k in KIND_NAMES if k.startswith(incomplete)]


def complete_schema_kind(incomplete: str) -> list[str]:
    return [k for k in SCHEMA_KINDS if k.startswith(incomplete)]


def lint(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., metavar="FILE...",
                                       help="JSON or YAML files, folders of them, or - for "
                                       "standard input."),
    kind: str = typer.Option(
        None, "--kind", "-k", autocompletion=complete_kind,
        help=f"Wire format to check against (default: detected). One of {', '.join(KIND_NAMES)}.",
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
) -> None:
    """Check payloads, callbacks, templates and upload bodies against CleverTap's contract.

    Each problem is printed with its JSON path, what is wrong and how to fix it. Published
    variants of the spec (ERRATA.md) are warnings that name the canonical form.
    """
    from ctwa.wire.lint import lint_paths

    out = of(ctx).out
    if kind is not None and kind not in KIND_NAMES:
        from ctwa.infra.suggest import did_you_mean

        raise InputError(f"unknown kind {kind!r}", hint=did_you_mean(
            kind, KIND_NAMES, otherwise=f"use one of {', '.join(KIND_NAMES)}"))
    results = lint_paths([p for p in paths if str(p) != "-"], kind)
    if any(str(p) == "-" for p in paths):
        results += _lint_stdin(kind)
    if not results:
        raise InputError("no JSON or YAML files found", hint="name files or folders holding "
                         "*.json, *.yaml or *.yml")
    failed = [r for r in results if not r.ok or (strict and r.warnings)]
    if out.json_mode:
        out.stdout_json({"ok": not failed, "documents": [r.as_dict() for r in results]})
    else:
        render_lint(out, results)
    if failed:
        raise typer.Exit(ExitCode.FAILED)


def _lint_stdin(kind: str | None) -> list:
    """``ctwa lint -``: one JSON document, or YAML (several documents allowed), from stdin."""
    import sys

    from ctwa.wire.lint import expand_arrays, lint_document, parse_json

    text = sys.stdin.read()
    if text.lstrip().startswith(("{", "[")):
        documents = [("<stdin>", parse_json(text, "<stdin>"))]
    else:
        from ctwa.infra.textfiles import load_yaml_all

        docs = [d for d in load_yaml_all(text, "<stdin>") if d is not None]
        documents = [(f"<stdin>#{i + 1}" if len(docs) > 1 else "<stdin>", d)
                     for i, d in enumerate(docs)]
    if not documents:
        raise InputError("<stdin> is empty", hint="pipe a JSON or YAML document in")
    return [lint_document(doc, kind, source) for source, doc in expand_arrays(documents)]


def render_lint(out: Output, results: list) -> None:
    """Lint results on stdout (a verdict per document, its problems under it), the totals
    on stderr."""
    errors = warnings = 0
    for result in results:
        kind = result.kind or "unknown"
        if not result.problems:
            out.stdout_line(f"ok    {result.source} ({kind})", "green")
            continue
        label = "FAIL " if result.errors else "warn "
        out.stdout_line(f"{label} {result.source} ({kind})", "red" if result.errors else "yellow")
        for problem in result.problems:
            line, style = problem_line(problem)
            out.stdout_line(f"  {line}", style)
        errors += len(result.errors)
        warnings += len(result.warnings)
    out.stderr_line(f"{len(results)} document(s): {errors} error(s), {warnings} warning(s)")
    webhooks = sum(1 for r in results if r.kind == "meta-webhook" and r.ok)
    if webhooks:
        out.stderr_line(f"{webhooks} Meta webhook(s) checked as Meta's format; CleverTap "
                        "takes them only as its own callbacks: `ctwa callback convert FILE`")


def register(app: typer.Typer) -> None:
    app.command()(lint)

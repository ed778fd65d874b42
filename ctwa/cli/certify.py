"""``ctwa certify``: run the spec's partner acceptance and integration test against a BSP;
``ctwa certify keygen``: make the Ed25519 key that signs evidence (``--sign-key``); and
``ctwa certify verify DIR``: check an evidence folder against its manifest and signature."""

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.commands import Typer
from ctwa.cli.context import Invocation, of
from ctwa.cli.options import int_option, seconds
from ctwa.cli.output import Output
from ctwa.cli.roundtrip import CallbackTimeoutOpt, ListenOpt
from ctwa.cli.send import (
    AuthOpt,
    DeadlineOpt,
    EndpointOpt,
    HeaderNameOpt,
    HeaderOpt,
    PasswordOpt,
    TimeoutOpt,
    TokenOpt,
    UsernameOpt,
    WabaOpt,
)
from ctwa.infra.errors import CtwaError, InputError

app = Typer(help="Certify a BSP integration against the spec's acceptance criteria.",
            invoke_without_command=True, no_args_is_help=False)


@app.callback(invoke_without_command=True)
def certify(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option(
        "--to", help="The test phone number: every message goes there.")] = None,
    templates: Annotated[str, typer.Option(
        "--templates", metavar="all-sendable|NAME,...",
        help="Which library templates to send (default: every approved, sendable one).")]
    = "all-sendable",
    library: Annotated[Path | None, typer.Option(
        "--library", metavar="DIR", help="Library folder (default: the profile's).")] = None,
    listen: ListenOpt = "127.0.0.1:8787",
    public_url: Annotated[str | None, typer.Option(
        "--public-url", metavar="URL", help="The public URL that reaches --listen (a tunnel), "
        "as configured at the BSP; said in the instructions.")] = None,
    scale: Annotated[int | None, int_option(
        "--scale", min=1, help="Also send N messages at 1500 in flight (real messages).")]
    = None,
    to_file: Annotated[Path | None, typer.Option(
        "--to-file", help="Numbers for --scale, one per line, cycled; NUMBER,CODE expects "
        "every message to that number to fail with CODE.")] = None,
    expect_errors: Annotated[str | None, typer.Option(
        "--expect-errors", metavar="CODE=N,...",
        help="With --scale: how many messages should fail with each code, e.g. 2003=26.")]
    = None,
    platform_counts: Annotated[str | None, typer.Option(
        "--platform-counts", metavar="sent=N,delivered=N,read=N",
        help="With --scale: the BSP dashboard's counts, compared with the callbacks'.")]
    = None,
    interactive: Annotated[bool, typer.Option(
        "--interactive/--no-interactive", help="Run the steps that need the tester's phone "
        "(write first, reply, tap); without, they are not tested.")] = True,
    attest: Annotated[Path | None, typer.Option(
        "--attest", metavar="FILE", help="YAML: who attests which manual criterion, and "
        "where.")] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", metavar="DIR", help="Evidence folder (default: certify-<timestamp>).")]
    = None,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", metavar="FILE", help="Sign the evidence manifest with this Ed25519 key "
        "(`ctwa certify keygen`); the public key goes in the folder.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before --scale sends.")]
    = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when an automated check was not tested.")] = False,
    invalid_to: Annotated[str, typer.Option(
        "--invalid-to", help="A number that cannot exist, for the errors check.")]
    = "99912345678",
    callback_timeout: CallbackTimeoutOpt = 60.0,
    interactive_timeout: Annotated[float, typer.Option(
        "--interactive-timeout", parser=seconds, metavar="DURATION",
        help="How long each interactive step waits for the tester, e.g. 5m.")] = 300.0,
    waba: WabaOpt = None,
    endpoint: EndpointOpt = None,
    auth: AuthOpt = None,
    username: UsernameOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
    header_name: HeaderNameOpt = None,
    header: HeaderOpt = None,
    timeout: TimeoutOpt = 10.0,
    deadline: DeadlineOpt = 1.0,
) -> None:
    """Run the partner acceptance criteria and integration test against the BSP's endpoint:
    each check passes, fails (naming the evidence) or is not tested (saying why), and the
    evidence goes to a folder with a manifest (`ctwa certify verify DIR`).

    Exit 0 when every automated check passed (not tested ones warn; --strict fails on them),
    1 when one failed, 130 on Ctrl-C (the report of what ran is still written)."""
    if ctx.invoked_subcommand is not None:
        return
    inv = of(ctx)
    out = inv.out
    if not to:
        raise InputError("no test number given", hint="pass --to NUMBER (a phone you hold)")
    key = None
    if sign_key is not None:  # a bad key is said before anything is sent
        from ctwa.certify.evidence import load_private_key

        key = load_private_key(sign_key)
    options, folder = _options(inv, locals())
    _run(inv, options, folder, yes, strict, key)


def _options(inv: Invocation, given: dict[str, Any]) -> tuple[Any, Path]:
    from ctwa.certify.run import CertifyOptions
    from ctwa.cli.send import _endpoint_of, _waba
    from ctwa.templates.library import TemplateLibrary, default_root
    from ctwa.wire.numbers import check_phone

    out = inv.out
    to = check_phone(given["to"], "--to")
    invalid = given["invalid_to"].lstrip("+")
    if not invalid.isdecimal():
        raise InputError(f"--invalid-to {given['invalid_to']!r}: digits only, e.g. 99912345678")
    folder = given["report_dir"] or Path(time.strftime("certify-%Y%m%d-%H%M%S"))
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder}: exists and is not an empty folder",
                         hint="give a new --report-dir")
    if given["scale"] and given["to_file"] is None:
        raise InputError("--scale needs --to-file NUMBERS", hint="numbers that may receive "
                         "the messages, one per line")
    from ctwa.certify.scale import (
        Expectations,
        parse_expect_errors,
        parse_platform_counts,
        read_numbers,
    )

    numbers, per_number = read_numbers(given["to_file"]) if given["to_file"] else ((), {})
    expectations = Expectations(parse_expect_errors(given["expect_errors"]), per_number,
                                parse_platform_counts(given["platform_counts"]))
    if not given["scale"] and (given["expect_errors"] or given["platform_counts"]):
        raise InputError("--expect-errors and --platform-counts judge the scale run",
                         hint="add --scale N --to-file NUMBERS")
    profile_name, profile = inv.profile()
    names = None if given["templates"] == "all-sendable" else [
        n.strip() for n in given["templates"].split(",") if n.strip()]
    target = _endpoint_of(inv, profile_name, profile, endpoint=given["endpoint"],
                          auth=given["auth"], username=given["username"],
                          password=given["password"], token=given["token"],
                          header_name=given["header_name"], headers=given["header"])()
    for note in target.notes:  # which profile values the options given overrode
        out.stderr_trace(note)
    options = CertifyOptions(
        to=to, waba=_waba(given["waba"], profile), endpoint=target,
        library=TemplateLibrary(given["library"] or default_root(profile_name)),
        templates=names, listen=given["listen"], public_url=given["public_url"],
        scale=given["scale"], scale_numbers=numbers, interactive=given["interactive"],
        attest=given["attest"], invalid_to=invalid,
        callback_timeout=given["callback_timeout"],
        interactive_timeout=given["interactive_timeout"], deadline=given["deadline"],
        timeout=given["timeout"], expectations=expectations)
    if given["attest"] is not None:
        from ctwa.certify.run import _read_attestations

        _read_attestations(given["attest"])  # a bad file is said before anything is sent
    return options, folder


def _confirm(out: Output, yes: bool) -> Any:
    def confirm(n: int) -> bool:
        if yes:
            return True
        import sys

        if not sys.stdin.isatty():
            raise InputError(f"--scale {n} sends {n:,} real messages; confirm with --yes")
        return typer.confirm(f"send {n:,} real messages to the --to-file numbers (they cost "
                             "money)?", err=True)

    return confirm


def _run(inv: Invocation, options: Any, folder: Path, yes: bool, strict: bool,
         key: Any = None) -> None:
    out = inv.out
    from ctwa.certify.evidence import Exchanges
    from ctwa.certify.run import Certifier, chosen_templates

    chosen_templates(options)  # no template: exit 2 before anything is sent or written
    created = not folder.exists()  # a folder the user made (empty) is never removed
    folder.mkdir(parents=True, exist_ok=True)
    exchanges = Exchanges(folder / "exchanges.ndjson")
    out.stderr_line(f"certify: {options.endpoint.url}, test number {options.to}; evidence in "
                    f"{folder}/", "bold")
    try:
        result = Certifier(options, exchanges, lambda text: out.stderr_line(text),
                           _confirm(out, yes)).run()
    except CtwaError:  # nothing to certify (unreachable, no template): no evidence left
        exchanges.close()
        (folder / "exchanges.ndjson").unlink(missing_ok=True)  # the one file written so far
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    finally:
        exchanges.close()
    code = _conclude(inv, options, folder, result, strict, key)
    if result.interrupted:
        out.stderr_line("interrupted: the report above covers the checks that ran", "bold")
    untested = [c for c in result.checks if c.status == "not tested"]
    if untested and not result.interrupted and result.verdict.outcome != "failed":
        out.stderr_warn(f"{len(untested)} automated check(s) not tested: "
                        + ", ".join(c.name for c in untested))
    if code:
        raise typer.Exit(code)


def _conclude(inv: Invocation, options: Any, folder: Path, result: Any, strict: bool,
              key: Any = None) -> int:
    """The evidence: results.json, then the shared end of every run (the verdict rendered,
    the summary kept, report.html and junit.xml written), then the manifest of it all
    (signed with ``key`` when given)."""
    out = inv.out
    import shlex

    from ctwa.certify.evidence import SPEC_VERSION, write_manifest
    from ctwa.cli.reports import conclude
    from ctwa.infra.safetext import dumps_safe
    from ctwa.report.summary import new_summary

    checks = [c.as_dict() for c in result.checks]
    automated = [c for c in result.checks if not c.name.startswith("manual:")]
    metrics: dict[str, float] = {
        "checks_passed": float(sum(c.status == "pass" for c in automated)),
        "checks_failed": float(sum(c.status == "fail" for c in automated)),
        "checks_not_tested": float(sum(c.status == "not tested" for c in automated))}
    scale = result.scale_report.as_dict() if result.scale_report is not None else None
    if scale:
        metrics.update({"p99": scale["latency_ms"].get("p99", 0.0),
                        "rps": scale["requests_per_second"]})
    summary = new_summary(
        "certify", target=options.endpoint.url, started=result.started, ended=result.ended,
        verdict=result.verdict, metrics=metrics,
        data={"checks": checks, "scale": scale, "spec": SPEC_VERSION, "to": options.to,
              "interrupted": result.interrupted})
    (folder / "results.json").write_text(dumps_safe(summary, indent=2) + "\n",
                                         encoding="utf-8")
    code = conclude(inv, summary, document={
        **{k: v for k, v in summary.items() if k != "data"}, "checks": checks,
        "evidence": str(folder), "signer": _signer(key)},
        report=folder / "report.html", junit=folder / "junit.xml", strict=strict)
    manifest = write_manifest(folder, result.started, result.ended, key)
    signer = manifest.get("signer")
    if out.json_mode:
        return code
    where = shlex.quote(str(folder))
    if signer:
        out.stdout_line(
            f"evidence: {folder}/ (report.html, results.json, junit.xml, "
            f"exchanges.ndjson, manifest.json, signed: manifest.sig, signer.pub)", "dim")
        out.stdout_line(
            f"signed by {signer}; give CleverTap this fingerprint apart from the folder, "
            f"and check it with `ctwa certify verify {where} --fingerprint {signer}`")
    else:
        out.stdout_line(f"evidence: {folder}/ (report.html, results.json, junit.xml, "
                        f"exchanges.ndjson, manifest.json); check it with "
                        f"`ctwa certify verify {where}` (unsigned: sign with --sign-key)", "dim")
    return code


def _signer(key: Any) -> str | None:
    """The fingerprint the manifest will be signed with (the --json document says it
    before the manifest is written)."""
    if key is None:
        return None
    from ctwa.certify.evidence import fingerprint

    return str(fingerprint(key.public_key()))


@app.command("keygen")
def keygen(ctx: typer.Context, out_path: Annotated[Path, typer.Option(
        "--out", metavar="FILE", help="Where to write the private key (the public key goes "
        "beside it as FILE.pub).")] = Path("ctwa-certify.key")) -> None:
    """Make an Ed25519 key pair to sign evidence folders with (`ctwa certify --sign-key`).

    Keep the private key to yourself; give CleverTap the fingerprint (or the .pub file)
    before you send evidence, so that `ctwa certify verify --fingerprint` proves it is yours."""
    import shlex

    from ctwa.certify.evidence import keygen as make

    out = of(ctx).out
    private, public, print_ = make(out_path)
    if out.json_mode:
        out.stdout_json({"private_key": str(private), "public_key": str(public),
                         "fingerprint": print_})
        return
    out.stdout_result(print_)
    out.stderr_line(f"private key: {private} (readable by you only; never share it)")
    out.stderr_line(f"public key: {public}; give `ctwa certify` the option --sign-key "
                    f"{shlex.quote(str(private))} to sign its evidence")


@app.command("verify")
def verify(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(
        metavar="DIR", help="An evidence folder written by `ctwa certify`.")],
    key: Annotated[Path | None, typer.Option(
        "--key", metavar="FILE.pub", help="Require a signature by this public key.")] = None,
    fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", metavar="SHA256:...",
        help="Require a signature by the key with this fingerprint.")] = None,
) -> None:
    """Check an evidence folder: exactly the files ctwa certify writes, each unchanged, no
    link or subfolder; and, when signed, the signature (--key or --fingerprint: by whom).

    Unsigned, a folder that verifies proves integrity against accidents, not against its
    author: anyone can rewrite it and its manifest."""
    from ctwa.certify.evidence import verify as check

    out = of(ctx).out
    if key is not None and fingerprint is not None:
        raise InputError("give --key or --fingerprint, not both")
    manifest = check(folder, key, fingerprint)
    signed = manifest["signed"]
    if out.json_mode:
        out.stdout_json({"ok": True, **manifest})
        return
    out.stdout_result(f"ok: {len(manifest['sha256'])} file(s) match the manifest (ctwa "
                      f"{manifest['ctwa_version']}, {manifest['spec']})")
    if signed is None:
        out.stderr_warn("the folder is not signed: this proves it was not damaged by accident, not "
                        "who wrote it (anyone can rewrite it and its manifest)")
    elif signed["trusted"]:
        out.stdout_result(f"signed by {signed['fingerprint']}, as required")
    else:
        out.stderr_warn(f"signed by {signed['fingerprint']}, with the key in the folder itself: "
                        "compare that fingerprint with the one the BSP gave you, or pass "
                        "--fingerprint / --key")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="certify")

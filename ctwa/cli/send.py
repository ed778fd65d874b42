"""``send-template``, ``send-freeform``, ``validate-endpoint``: CleverTap's exact payloads,
sent to a messaging endpoint and judged against the contract."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli import complete
from ctwa.cli.context import Invocation, of
from ctwa.cli.loadmode import (
    ConcurrencyOpt,
    CountOpt,
    DurationOpt,
    LoadFlags,
    RateOpt,
    ToFileOpt,
    WorkersOpt,
    recipients,
    run_load_mode,
)
from ctwa.cli.options import seconds
from ctwa.cli.output import Output
from ctwa.cli.reports import JunitOpt, ReportOpt
from ctwa.cli.roundtrip import (
    AwaitFlags,
    AwaitOpt,
    CallbackTimeoutOpt,
    ListenOpt,
    UntilOpt,
)
from ctwa.infra import envvars
from ctwa.infra.errors import ConfigError, InputError

CONNECTION = "Connection"
PARAMS = "Template parameters"
SOURCE = "What to send"

EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", metavar="URL", help="Messaging endpoint URL (default: the profile's).",
    rich_help_panel=CONNECTION)]
AuthOpt = Annotated[str | None, typer.Option(
    "--auth", autocompletion=complete.fixed(*complete.AUTH_KINDS),
    help="basic, bearer, header or none (default: the profile's, or implied by "
    "--username/--password/--token).", rich_help_panel=CONNECTION)]
UsernameOpt = Annotated[str | None, typer.Option(
    "--username", help="Basic auth username.", rich_help_panel=CONNECTION)]
PasswordOpt = Annotated[str | None, typer.Option(
    "--password", help=f"Basic auth password. [env var: {envvars.PASSWORD}]",
    rich_help_panel=CONNECTION)]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help=f"Bearer token or custom header value. [env var: {envvars.TOKEN}]",
    rich_help_panel=CONNECTION)]
HeaderNameOpt = Annotated[str | None, typer.Option(
    "--header-name", help="Header that carries the token for --auth header (e.g. Token).",
    rich_help_panel=CONNECTION)]
HeaderOpt = Annotated[list[str] | None, typer.Option(
    "--header", metavar="'NAME: VALUE'", help="Extra header (repeatable).",
    rich_help_panel=CONNECTION)]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", parser=seconds, metavar="DURATION",
    help="How long to wait for a whole answer before giving up, e.g. 10s.",
    rich_help_panel=CONNECTION)]
DeadlineOpt = Annotated[float, typer.Option(
    "--deadline", parser=seconds, metavar="DURATION",
    help="Answers slower than this count as CleverTap timeouts, e.g. 1s or 800ms.",
    rich_help_panel=CONNECTION)]
ToOpt = Annotated[str | None, typer.Option(
    "--to", help="Recipient number, with or without +.")]
WabaOpt = Annotated[str | None, typer.Option(
    "--waba", help="Your WhatsApp Business number (default: the profile's).")]
MsgIdOpt = Annotated[str | None, typer.Option(
    "--msg-id", help="msgId to send (default: a fresh i|campaign|batch|j|variant id).")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Print the payload on stdout and send nothing.")]
def _endpoint_of(inv: Invocation, name: str | None, profile: Any,
                 **flags: Any) -> Callable[..., Any]:
    """The endpoint, resolved only when something is sent: a dry run needs no credentials
    (and an export, ``secrets=False``, asks for none)."""
    from ctwa.infra.secrets import SecretResolver
    from ctwa.send.endpoint import EndpointFlags, Service, resolve_endpoint

    flags["headers"] = tuple(flags.get("headers") or ())

    def resolve(secrets: bool = True) -> Any:
        resolver = SecretResolver(name, inv.secrets)
        return resolve_endpoint(EndpointFlags(**flags), Service.messaging(profile), resolver,
                                secrets=secrets)

    return resolve


@dataclass(frozen=True)
class SendRequest:
    """What a send command's options ask for, parsed: the payload, how to send it (once or
    as a load run), whether to wait for callbacks; the endpoint is resolved only when
    something is sent (a dry run needs no credentials)."""

    body: Any
    warnings: tuple[str, ...]
    dry_run: bool
    load: LoadFlags
    awaiting: AwaitFlags
    to: str | None
    timeout: float
    deadline: float
    endpoint: Callable[..., Any]
    #: the files the payload was read from (--payload, --template-file, --params): a load
    #: run's --report or --junit must not be written over one of them
    inputs: tuple[Path, ...] = ()

    def check(self) -> None:
        """Usage conflicts, reported before anything else (a missing secret included)."""
        self.load.check(inputs=self.inputs)
        self.awaiting.check()

    def job(self) -> Any:
        """The job (ctwa.send.job.SendJob) this request makes: the endpoint resolved."""
        from ctwa.send.job import AwaitSettings, LoadSettings, SendJob
        from ctwa.wire.outbound import is_wrapped

        load, awaiting = self.load, self.awaiting
        return SendJob(
            payload=self.body, endpoint=self.endpoint(),
            recipients=recipients(self.to, load.to_file) if load.active else (),
            timeout=self.timeout, deadline=self.deadline, wrapped=is_wrapped(self.body),
            warnings=self.warnings,
            load=LoadSettings(load.count, load.duration_seconds(), load.rate, load.concurrency,
                              load.workers) if load.active else None,
            awaiting=AwaitSettings(awaiting.until, awaiting.timeout, awaiting.listen)
            if awaiting.active else None)


def _finish(inv: Invocation, request: SendRequest) -> None:
    """What every send command ends with: print the payload (dry run), or hand the job to
    the runner (one send or a load run, then the callbacks when awaited) and render what
    it did: run -> verdict -> summary -> store -> render -> exit."""
    out = inv.out
    request.check()
    if request.dry_run:
        _print_payload(out, request.body, list(request.warnings))
        return
    job = request.job()
    for note in getattr(job.endpoint, "notes", ()):  # profile values the options overrode
        out.stderr_trace(note)
    if job.load is not None:
        for warning in job.warnings:
            out.stderr_warn(warning)
        run_load_mode(inv, job, request.load)
        return
    _deliver_and_report(out, job)


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """A command's parsed options, as its request builder takes them."""
    return {k: v for k, v in given.items() if k not in ("ctx", "inv", "out")}


def _request(awaiting: AwaitFlags, body: Any, warnings: list[str], dry_run: bool,
             load: LoadFlags, to: str | None, timeout: float, deadline: float,
             endpoint: Callable[[], Any], inputs: Iterable[Path | None] = ()) -> SendRequest:
    return SendRequest(body, tuple(warnings), dry_run, load, awaiting, to, timeout, deadline,
                       endpoint, tuple(p for p in inputs if p is not None))


#: wabaNumber in a dry run's payload when neither --waba nor the profile gives one.
WABA_PLACEHOLDER = "<placeholder: pass --waba NUMBER>"


def _waba(waba: str | None, profile: Any, dry_run: bool = False,
          warnings: list[str] | None = None) -> str:
    from ctwa.wire.numbers import check_phone

    value = check_phone(waba, "--waba") if waba else profile.waba_number
    if not value and dry_run:  # a dry run shows the payload; a send needs the number
        if warnings is not None:
            warnings.append(f"no --waba given (nor in the profile): wabaNumber is the "
                            f"placeholder {WABA_PLACEHOLDER!r}; a send needs --waba NUMBER")
        return WABA_PLACEHOLDER
    if not value:
        raise ConfigError("no WhatsApp Business number given",
                          hint="pass --waba or set it with `ctwa profile add NAME --waba NUMBER`")
    return value


def _deliver_and_report(out: Output, job: Any) -> None:
    from ctwa.cli.reports import render_send_verdict
    from ctwa.cli.roundtrip import render_single_trip, wait_progress
    from ctwa.send.job import Hooks, run_job

    hooks = Hooks(say=out.stderr_line, warn=out.stderr_warn,
                  trace=out.stderr_trace if out.verbose else None,
                  on_wait=wait_progress(out, job.awaiting) if job.awaiting else None)
    done = run_job(job, hooks)
    result, verdict = done.result, done.verdict
    if done.trip is not None:  # awaited: the send, then its callbacks
        if not out.json_mode:
            _render(out, result)
        render_single_trip(out, done)
        render_send_verdict(out, verdict)
        code = verdict.exit_code()
        if code:
            raise typer.Exit(code)
        return
    if job.awaiting is not None:
        out.stderr_warn("not waiting for callbacks: the message was not accepted, so CleverTap "
                        "would not count any for it" + (f" ({result.verdict.summary})"
                                                        if done.msg_id else " (it has no msgId)"))
    if out.json_mode:
        out.stdout_json({**result.as_dict(), "outcome": verdict.outcome,
                         "criteria": [c.as_dict() for c in verdict.criteria]})
    else:
        _render(out, result)
    render_send_verdict(out, verdict)
    code = verdict.exit_code()
    if code:
        raise typer.Exit(code)


def _render(out: Output, result: Any) -> None:
    """One send, short: the verdict, the latency and the msgId to match DLRs with, on stdout;
    the whole exchange is what ``-v`` traces (once, as it happens)."""
    import json

    from ctwa.infra.masking import MASK, is_secret_header

    for warning in result.warnings:
        out.stderr_warn(warning)
    if not any(is_secret_header(k) or MASK in v for k, v in result.request_headers.items()):
        out.stderr_line(
            "note: no credentials were sent (auth: none); pass --username/--password or "
            "--token, or use a profile, if the endpoint needs them", "yellow")
    verdict = result.verdict
    from ctwa.wire.outbound import inner_payload

    inner = inner_payload(result.payload)
    msg_id = inner.get("msgId") if isinstance(inner, dict) else None
    status = f"HTTP {result.response_status}, " if result.response_status is not None else ""
    where = f" msgId {msg_id}" if msg_id else ""
    latency = f"{verdict.latency_ms:g} ms" if verdict.latency_ms is not None else "no answer"
    out.stdout_result(f"{verdict.outcome} ({status}{latency}){where}")
    for note in verdict.notes:
        out.stderr_line(f"  also: {note}", "yellow")
    if not verdict.accepted:
        if result.response_status is not None and not out.verbose:
            body = result.response_body
            shown = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
            out.stderr_line(f"  answer: {shown[:500]}", "dim")
        out.stderr_error(verdict.describe())


def _print_payload(out: Output, payload: Any, warnings: list[str]) -> None:
    for warning in warnings:
        out.stderr_warn(warning)
    out.stdout_json(payload)


# --- send-template ---------------------------------------------------------------------------


def _template_params(params_file: Path | None, var: list[str], header_var: list[str],
                     header_media: str | None, header_filename: str | None,
                     location: str | None, button: list[str], coupon: str | None,
                     offer_expires: str | None, prop: list[str]):
    from ctwa.send import params as p

    base = p.load_params_file(params_file) if params_file else p.TemplateParams()
    flags = p.TemplateParams(
        vars=p.parse_vars(var), header_vars=p.parse_vars(header_var, "--header-var"),
        header_media=header_media, header_filename=header_filename,
        location=p.parse_location(location) if location else None,
        buttons=p.parse_buttons(button), coupon=coupon,
        offer_expires_ms=p.parse_offer_expiry(offer_expires) if offer_expires else None,
        props=p.parse_props(prop),
    )
    return base.overlay(flags)


def _refuse_unused(source: str, given: dict[str, Any]) -> None:
    """Options the chosen source does not use are an error naming them, never ignored."""
    unused = [name for name, value in given.items() if value not in (None, False, [], ())]
    if unused:
        raise InputError(f"{source} does not use {', '.join(unused)}: "
                         f"{'it is' if len(unused) == 1 else 'they are'} not applied to what "
                         "it sends", hint="leave them out, or send a template (--template or "
                         "--template-file) to fill parameters")


def _load_template(name: str | None, language: str | None, file: Path | None,
                   profile_name: str | None, folder: Path | None = None) -> dict[str, Any]:
    from ctwa.templates.library import TemplateLibrary, default_root, pick_template
    from ctwa.wire.lint import load_documents

    if file is not None:
        return pick_template(str(file), [doc for _, doc in load_documents(file)], name,
                             language)
    assert name is not None
    return TemplateLibrary(folder or default_root(profile_name)).get(name, language)


def send_template(
    ctx: typer.Context,
    template: Annotated[str | None, typer.Option(
        "--template", "-t", autocompletion=complete.templates, metavar="NAME",
        help="Template name in the local library (see import-templates).",
        rich_help_panel=SOURCE)] = None,
    language: Annotated[str | None, typer.Option(
        "--language", help="Template language, when the library has several.",
        rich_help_panel=SOURCE)] = None,
    template_file: Annotated[Path | None, typer.Option(
        "--template-file", help="A Meta-format template file (JSON or YAML); for a list page, "
        "pick one with --template NAME.", rich_help_panel=SOURCE)] = None,
    library: Annotated[Path | None, typer.Option(
        "--library", metavar="DIR", help="Library folder for --template (default: the "
        "profile's).", rich_help_panel=SOURCE)] = None,
    allow_unapproved: Annotated[bool, typer.Option(
        "--allow-unapproved", help="Send a template whose status is not APPROVED (testing).",
        rich_help_panel=SOURCE)] = False,
    sample: Annotated[str | None, typer.Option(
        "--sample", autocompletion=complete.samples, metavar="NAME",
        help="One of the spec's samples: text-footer, image-cta, text, media, lto, "
        "multi-button, carousel, custom-kv.", rich_help_panel=SOURCE)] = None,
    payload: Annotated[Path | None, typer.Option(
        "--payload", help="Send this payload file as it is (linted first).",
        rich_help_panel=SOURCE)] = None,
    no_lint: Annotated[bool, typer.Option(
        "--no-lint", help="With --payload: send it even if it breaks the contract.",
        rich_help_panel=SOURCE)] = False,
    var: Annotated[list[str] | None, typer.Option(
        "--var", metavar="[KEY=]VALUE",
        help="Body value: 1=John, first_name=John, or bare values in order.",
        rich_help_panel=PARAMS)] = None,
    header_var: Annotated[list[str] | None, typer.Option(
        "--header-var", metavar="[KEY=]VALUE", help="Text header value.",
        rich_help_panel=PARAMS)] = None,
    header_media: Annotated[str | None, typer.Option(
        "--header-media", metavar="URL", help="Media URL for an image, video or document header.",
        rich_help_panel=PARAMS)] = None,
    header_filename: Annotated[str | None, typer.Option(
        "--header-filename", help="File name for a document header.",
        rich_help_panel=PARAMS)] = None,
    location: Annotated[str | None, typer.Option(
        "--location", help="LAT,LONG[,NAME[,ADDRESS]] for a location header.",
        rich_help_panel=PARAMS)] = None,
    button: Annotated[list[str] | None, typer.Option(
        "--button", metavar="INDEX=VALUE", help="INDEX=VALUE: a dynamic URL button's suffix.",
        rich_help_panel=PARAMS)] = None,
    coupon: Annotated[str | None, typer.Option(
        "--coupon", help="Coupon code for a copy-code button.", rich_help_panel=PARAMS)] = None,
    offer_expires: Annotated[str | None, typer.Option(
        "--offer-expires", help="Limited-time offer expiry: ISO time or epoch ms.",
        rich_help_panel=PARAMS)] = None,
    prop: Annotated[list[str] | None, typer.Option(
        "--prop", metavar="KEY=VALUE", help="KEY=VALUE custom property (customProps).",
        rich_help_panel=PARAMS)] = None,
    params_file: Annotated[Path | None, typer.Option(
        "--params", help="YAML file with any of these values, and per-card values.",
        rich_help_panel=PARAMS)] = None,
    examples: Annotated[bool, typer.Option(
        "--examples", help="Fill every value not given from the template's own examples.",
        rich_help_panel=PARAMS)] = False,
    to: ToOpt = None,
    waba: WabaOpt = None,
    msg_id: MsgIdOpt = None,
    dry_run: DryRunOpt = False,
    endpoint: EndpointOpt = None,
    auth: AuthOpt = None,
    username: UsernameOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
    header_name: HeaderNameOpt = None,
    header: HeaderOpt = None,
    timeout: TimeoutOpt = 10.0,
    deadline: DeadlineOpt = 1.0,
    count: CountOpt = None,
    duration: DurationOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = None,
    workers: WorkersOpt = None,
    to_file: ToFileOpt = None,
    await_callbacks: AwaitOpt = False,
    until: UntilOpt = "delivered",
    callback_timeout: CallbackTimeoutOpt = 60.0,
    listen: ListenOpt = "127.0.0.1:8787",
    report: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Send a template message exactly as CleverTap would, and judge the endpoint's answer.

    The payload comes from a Meta-format template (--template from the library, or
    --template-file) plus parameters, from one of the spec's samples (--sample), or from a
    payload file (--payload). Exit 0 accepted, 1 failed or too slow, 3 unreachable.
    """
    inv = of(ctx)
    _finish(inv, template_request(inv, **_options(locals())))


def template_request(
    inv: Invocation, *, template, language, template_file, library, allow_unapproved, sample,
    payload, no_lint, var, header_var, header_media, header_filename, location, button, coupon,
    offer_expires, prop, params_file, examples, to, waba, msg_id, dry_run, endpoint, auth,
    username, password, token, header_name, header, timeout, deadline, count, duration, rate,
    concurrency, workers, to_file, await_callbacks, until, callback_timeout, listen, report,
    junit, **_: Any
) -> SendRequest:
    """The request ``send-template`` makes of its options (also what `ctwa load export
    --locust` exports)."""
    from ctwa.send.build import build_template_payload
    from ctwa.send.msgid import MsgIdFactory
    from ctwa.wire.numbers import check_phone

    sources = [s for s in (template_file or template, sample, payload) if s is not None]
    if len(sources) != 1:
        raise InputError("give exactly one of --template, --template-file, --sample, --payload",
                         hint="--template NAME may go with --template-file to pick one "
                         "template of a list page")
    load = LoadFlags(count, duration, rate, concurrency, workers, to_file, report, junit)
    if load.active and not to:
        to = recipients(to, to_file)[0]
    profile_name, profile = inv.profile()
    warnings: list[str] = []
    if payload is not None or sample is not None:
        _refuse_unused("--payload" if payload is not None else f"--sample {sample}", {
            "--params": params_file, "--var": var, "--header-var": header_var,
            "--header-media": header_media, "--header-filename": header_filename,
            "--location": location, "--button": button, "--coupon": coupon,
            "--offer-expires": offer_expires, "--prop": prop, "--examples": examples,
            "--language": language, "--library": library,
            "--allow-unapproved": allow_unapproved,
            "--no-lint": no_lint if sample is not None else None})
    elif no_lint or (library is not None and template_file is not None):
        _refuse_unused("--template-file" if template_file else "--template",
                       {"--no-lint": no_lint, "--library": library if template_file else None})
    if payload is not None:
        body = _payload_file(payload, no_lint, to, waba, msg_id, warnings)
    elif sample is not None:
        from ctwa.send.samples import load_sample

        body = load_sample(sample)
        body["to"] = check_phone(to) if to else body["to"]
        body["wabaNumber"] = (check_phone(waba, "--waba") if waba else None) or \
            profile.waba_number or body["wabaNumber"]
        body["msgId"] = msg_id or MsgIdFactory().next()
    else:
        if not to:
            raise InputError("no recipient given", hint="pass --to NUMBER")
        meta = _load_template(template, language, template_file, profile_name, library)
        params = _template_params(params_file, var or [], header_var or [], header_media,
                                  header_filename, location, button or [], coupon,
                                  offer_expires, prop or [])
        built, notes = build_template_payload(
            meta, params, to=to, waba=_waba(waba, profile, dry_run, warnings),
            msg_id=msg_id or MsgIdFactory().next(),
            use_examples=examples, allow_unapproved=allow_unapproved)
        body = built.to_wire()
        warnings += notes
    awaiting = AwaitFlags(await_callbacks, until, callback_timeout, listen)
    return _request(awaiting, body, warnings, dry_run, load, to, timeout, deadline,
                    _endpoint_of(inv, profile_name, profile, endpoint=endpoint, auth=auth,
                                 username=username, password=password, token=token,
                                 header_name=header_name, headers=header),
                    inputs=(payload, template_file, params_file))


def _payload_file(path: Path, no_lint: bool, to: str | None, waba: str | None,
                  msg_id: str | None, warnings: list[str]) -> Any:
    from ctwa.wire.lint import InvalidDocument, lint_document, load_documents
    from ctwa.wire.numbers import check_phone

    documents = load_documents(path)
    if len(documents) != 1:
        raise InputError(f"{path}: holds {len(documents)} documents; give one payload per file")
    source, body = documents[0]
    if not no_lint:
        result = lint_document(body, source=source)
        if result.kind not in (None, "template", "freeform", "validation"):
            raise InputError(f"{path}: this is a {result.kind} document, not an outbound payload")
        if not result.ok:
            raise InvalidDocument(result)
        warnings += [f"{p.path}: {p.message}" for p in result.warnings]
    from ctwa.wire.outbound import inner_payload

    inner = inner_payload(body)
    if isinstance(inner, dict):  # the wrapped validation form carries its fields inside
        if to:
            inner["to"] = check_phone(to)
        if waba:
            inner["wabaNumber"] = check_phone(waba, "--waba")
        if msg_id:
            inner["msgId"] = msg_id
    return body


# --- send-freeform ---------------------------------------------------------------------------


def send_freeform(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option(
        "--type", autocompletion=complete.fixed(*complete.MESSAGE_TYPES),
        help="text, image, audio, video or file.", rich_help_panel=SOURCE)] = "text",
    text: Annotated[str | None, typer.Option(
        "--text", help="Message text (type text).", rich_help_panel=SOURCE)] = None,
    media_url: Annotated[str | None, typer.Option(
        "--media-url", metavar="URL", help="Media URL (image, audio, video, file).",
        rich_help_panel=SOURCE)] = None,
    caption: Annotated[str | None, typer.Option(
        "--caption", help="Caption (image, video, file).", rich_help_panel=SOURCE)] = None,
    filename: Annotated[str | None, typer.Option(
        "--filename", help="File name (file).", rich_help_panel=SOURCE)] = None,
    to: ToOpt = None,
    waba: WabaOpt = None,
    msg_id: MsgIdOpt = None,
    dry_run: DryRunOpt = False,
    endpoint: EndpointOpt = None,
    auth: AuthOpt = None,
    username: UsernameOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
    header_name: HeaderNameOpt = None,
    header: HeaderOpt = None,
    timeout: TimeoutOpt = 10.0,
    deadline: DeadlineOpt = 1.0,
    count: CountOpt = None,
    duration: DurationOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = None,
    workers: WorkersOpt = None,
    to_file: ToFileOpt = None,
    await_callbacks: AwaitOpt = False,
    until: UntilOpt = "delivered",
    callback_timeout: CallbackTimeoutOpt = 60.0,
    listen: ListenOpt = "127.0.0.1:8787",
    report: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Send a freeform (session) message exactly as CleverTap would, and judge the answer."""
    inv = of(ctx)
    _finish(inv, freeform_request(inv, **_options(locals())))


def freeform_request(
    inv: Invocation, *, kind, text, media_url, caption, filename, to, waba, msg_id, dry_run,
    endpoint, auth, username, password, token, header_name, header, timeout, deadline, count,
    duration, rate, concurrency, workers, to_file, await_callbacks, until, callback_timeout,
    listen, report, junit, **_: Any
) -> SendRequest:
    """The request ``send-freeform`` makes of its options (also what `ctwa load export
    --locust` exports)."""
    from ctwa.send.freeform import build_freeform
    from ctwa.send.msgid import MsgIdFactory
    from ctwa.wire.numbers import check_phone

    load = LoadFlags(count, duration, rate, concurrency, workers, to_file, report, junit)
    if load.active and not to:
        to = recipients(to, to_file)[0]
    if not to:
        raise InputError("no recipient given", hint="pass --to NUMBER")
    profile_name, profile = inv.profile()
    warnings: list[str] = []
    payload = build_freeform(kind, to=check_phone(to), waba=_waba(waba, profile, dry_run,
                                                                  warnings),
                             msg_id=msg_id or MsgIdFactory().next(), text=text,
                             media_url=media_url, caption=caption, filename=filename)
    body = payload.to_wire()
    awaiting = AwaitFlags(await_callbacks, until, callback_timeout, listen)
    return _request(awaiting, body, warnings, dry_run, load, to, timeout, deadline,
                    _endpoint_of(inv, profile_name, profile, endpoint=endpoint, auth=auth,
                                 username=username, password=password, token=token,
                                 header_name=header_name, headers=header))


# --- validate-endpoint -----------------------------------------------------------------------


def validate_endpoint(
    ctx: typer.Context,
    wrapped: Annotated[bool, typer.Option(
        "--wrapped", help='Send the spec\'s {"body": {...}} form (ERRATA 13).')] = False,
    to: Annotated[str, typer.Option("--to", help="Recipient of the dummy message.")] =
    "918900000000",
    waba: WabaOpt = None,
    msg_id: Annotated[str, typer.Option("--msg-id", help="msgId of the dummy message.")] =
    "0|0|0|0",
    dry_run: DryRunOpt = False,
    endpoint: EndpointOpt = None,
    auth: AuthOpt = None,
    username: UsernameOpt = None,
    password: PasswordOpt = None,
    token: TokenOpt = None,
    header_name: HeaderNameOpt = None,
    header: HeaderOpt = None,
    timeout: TimeoutOpt = 10.0,
    deadline: DeadlineOpt = 1.0,
    count: CountOpt = None,
    duration: DurationOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = None,
    workers: WorkersOpt = None,
    to_file: ToFileOpt = None,
    await_callbacks: AwaitOpt = False,
    until: UntilOpt = "delivered",
    callback_timeout: CallbackTimeoutOpt = 60.0,
    listen: ListenOpt = "127.0.0.1:8787",
    report: ReportOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Send the validation payload CleverTap sends when a provider is saved.

    CleverTap saves the provider only if the endpoint answers {"status": "success"} within
    one second.
    """
    inv = of(ctx)
    _finish(inv, validation_request(inv, **_options(locals())))


def validation_request(
    inv: Invocation, *, wrapped, to, waba, msg_id, dry_run, endpoint, auth, username, password,
    token, header_name, header, timeout, deadline, count, duration, rate, concurrency, workers,
    to_file, await_callbacks, until, callback_timeout, listen, report, junit, **_: Any
) -> SendRequest:
    """The request ``validate-endpoint`` makes of its options (also what `ctwa load export
    --locust` exports)."""
    from ctwa.wire.numbers import check_phone
    from ctwa.wire.outbound import validation_payload

    profile_name, profile = inv.profile()
    given_waba = check_phone(waba, "--waba") if waba else None
    body: Any = validation_payload(to=check_phone(to), waba=given_waba or profile.waba_number
                                   or "919900000000", msg_id=msg_id).to_wire()
    if wrapped:
        body = {"body": body}
    load = LoadFlags(count, duration, rate, concurrency, workers, to_file, report, junit)
    awaiting = AwaitFlags(await_callbacks, until, callback_timeout, listen)
    return _request(awaiting, body, [], dry_run, load, to, timeout, deadline,
                    _endpoint_of(inv, profile_name, profile, endpoint=endpoint, auth=auth,
                                 username=username, password=password, token=token,
                                 header_name=header_name, headers=header))


#: Each send command's request builder, by command name (`ctwa load export --locust`).
REQUESTS = {"send-template": template_request, "send-freeform": freeform_request,
            "validate-endpoint": validation_request}


def register(app: typer.Typer) -> None:
    app.command("send-template")(send_template)
    app.command("send-freeform")(send_freeform)
    app.command("validate-endpoint")(validate_endpoint)

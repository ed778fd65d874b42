"""``ctwa sandbox``: the mock BSP, vendor, CleverTap and Meta Cloud API on 127.0.0.1, until
Ctrl-C."""

from collections.abc import Container
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.context import of
from ctwa.cli.options import float_option, int_option
from ctwa.infra.errors import InputError


def _code_rates(values: list[str], option: str, known: Container[int], usage: str,
                hint: str | None = None) -> dict[int, float]:
    """``OPTION CODE=RATE`` values: a share (0 to 1) for each code in ``known``; anything else
    is one line naming the option and the value, then ``usage``."""
    rates: dict[int, float] = {}
    for raw in values:
        code, sep, rate = raw.partition("=")
        try:
            number, probability = int(code), float(rate)
        except ValueError:
            number, probability = 0, -1.0
        if not sep or number not in known or not 0 <= probability <= 1:
            raise InputError(f"{option} {raw!r}: {usage}", hint=hint)
        rates[number] = probability
    return rates


def _fail_rates(values: list[str]) -> dict[int, float]:
    return _code_rates(values, "--fail", range(2000, 2005),
                       "write CODE=RATE, e.g. 2004=0.05 (codes 2000-2004)")


def _latency(raw: str | None) -> tuple[float, float]:
    from ctwa.infra.durations import parse_duration

    if not raw:
        return (0.0, 0.0)
    low, _, high = raw.partition("-")
    first = parse_duration(low, "--latency", bare_unit="ms")
    second = parse_duration(high, "--latency", bare_unit="ms") if high else first
    if second < first:
        raise InputError(f"--latency {raw!r}: the range runs low-high, e.g. 20ms-80ms")
    return (first, second)


#: What a sandbox config file may set: each option by its long name, and its type.
FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "host": str, "port": int, "latency": (str, int, float), "fail": dict,
    "max-concurrency": int, "reply-rate": (int, float), "templates": str, "status-url": str,
    "inbound-url": str, "misbehave": (str, list), "simulate-user": bool,
    "meta-webhook-url": str, "meta-mps": (int, float), "meta-tap-prefix": (str, list),
    "meta-window": str, "meta-fail": dict, "meta-latency": (str, int, float),
    "meta-batch": int, "meta-fault": dict,
}
_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", dict: "a mapping",
               list: "a list", bool: "true or false"}


def _settings_from_file(path: Path) -> dict[str, Any]:
    """The file's settings, checked like every user file: unknown keys (with a "did you
    mean"), wrong types and out-of-range values are one clear line naming the key."""
    import difflib

    from ctwa.infra.textfiles import load_yaml, read_text

    data = load_yaml(read_text(path), str(path)) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings",
                         hint=f"keys: {', '.join(FILE_KEYS)}")
    for key, value in data.items():
        if key not in FILE_KEYS:
            close = difflib.get_close_matches(str(key), list(FILE_KEYS), n=1)
            raise InputError(f"{path}: unknown setting {key!r}",
                             hint=f"did you mean {close[0]!r}?" if close
                             else f"settings: {', '.join(FILE_KEYS)}")
        wanted = FILE_KEYS[key]
        kinds = wanted if isinstance(wanted, tuple) else (wanted,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            words = " or ".join(_TYPE_WORDS[k] for k in kinds)
            raise InputError(f"{path}: {key} must be {words}, got {value!r}")
    if "port" in data and not 0 <= data["port"] <= 65535:
        raise InputError(f"{path}: port must be between 0 and 65535, got {data['port']}")
    if "max-concurrency" in data and data["max-concurrency"] < 1:
        raise InputError(f"{path}: max-concurrency must be at least 1")
    if "reply-rate" in data and not 0 <= data["reply-rate"] <= 1:
        raise InputError(f"{path}: reply-rate must be between 0 and 1")
    if "meta-mps" in data and data["meta-mps"] < 0:
        raise InputError(f"{path}: meta-mps must be 0 (no limit) or more")
    if "meta-batch" in data and not 1 <= data["meta-batch"] <= 1000:
        raise InputError(f"{path}: meta-batch must be between 1 and 1000")
    return data


def _meta_fail_rates(values: list[str]) -> dict[int, float]:
    """``--meta-fail CODE=RATE``: a share of sends failed with a Meta code the mock knows."""
    from ctwa.wire.cloudapi import ERRORS

    return _code_rates(values, "--meta-fail", ERRORS, "write CODE=RATE with a Meta error "
                       "code, e.g. 131026=0.05",
                       hint="codes: " + ", ".join(str(c) for c in sorted(ERRORS)))


def _meta_faults(values: list[str]) -> dict[str, float]:
    """``--meta-fault NAME=RATE``: a share of sends hit by one of the mock's faults."""
    from ctwa.sandbox.meta.mock import FAULTS

    faults: dict[str, float] = {}
    for raw in values:
        name, sep, rate = raw.partition("=")
        try:
            probability = float(rate)
        except ValueError:
            probability = -1.0
        if not sep or name.strip() not in FAULTS or not 0 <= probability <= 1:
            raise InputError(f"--meta-fault {raw!r}: write NAME=RATE, e.g. html=0.05",
                             hint="faults: " + "; ".join(f"{k} ({v})" for k, v in
                                                         FAULTS.items()))
        faults[name.strip()] = probability
    return faults


def _meta_settings(pick: Any, options: dict[str, Any], given: Any, *, webhook_url: str | None,
                   mps: float, tap_prefix: list[str] | None, window: str,
                   fail: list[str] | None, latency: str | None, batch: int,
                   simulated_user: bool, fault: list[str] | None = None) -> Any:
    """The mock Cloud API's settings: flags, then the config file, then defaults; its token,
    app secret and verify token from CTWA_META_TOKEN / CTWA_META_APP_SECRET /
    CTWA_META_VERIFY_TOKEN when set (never argv)."""
    import os

    from ctwa.infra import envvars
    from ctwa.sandbox.meta import MetaSettings

    window = str(pick("meta_window", window))
    if window not in ("open", "strict"):
        raise InputError(f"--meta-window {window!r}: open or strict")
    prefixes = tap_prefix if given("meta_tap_prefix") else options.get("meta-tap-prefix")
    prefixes = [prefixes] if isinstance(prefixes, str) else list(prefixes or [])
    fails = fail if given("meta_fail") or "meta-fail" not in options else [
        f"{k}={v}" for k, v in options["meta-fail"].items()]
    faults = fault if given("meta_fault") or "meta-fault" not in options else [
        f"{k}={v}" for k, v in options["meta-fault"].items()]
    defaults = MetaSettings()
    return MetaSettings(
        faults=_meta_faults(faults or []),
        token=os.environ.get(envvars.META_TOKEN) or defaults.token,
        app_secret=os.environ.get(envvars.META_APP_SECRET) or defaults.app_secret,
        verify_token=os.environ.get(envvars.META_VERIFY_TOKEN) or None,
        webhook_url=pick("meta_webhook_url", webhook_url), mps=float(pick("meta_mps", mps)),
        tap_prefixes=tuple(str(p) for p in prefixes), window=window,
        fail_rates=_meta_fail_rates(fails or []),
        latency=_latency(str(pick("meta_latency", latency) or "") or None),
        webhook_batch=int(pick("meta_batch", batch)), simulated_user=simulated_user)


def _fault_names() -> tuple[str, ...]:
    from ctwa.sandbox.bsp import FAULTS

    return tuple(FAULTS)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether an option was given on the command line (a flag beats the config file)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def sandbox(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, int_option("--port", min=0, max=65535,
                                    help="Port (0: a free one).")] = 8700,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML settings (any option below, by its long name).")] = None,
    latency: Annotated[str | None, typer.Option(
        "--latency", metavar="DURATION",
        help="BSP answer delay: 50ms, or a range 20ms-80ms.")] = None,
    fail: Annotated[list[str] | None, typer.Option(
        "--fail", metavar="CODE=RATE", help="Answer a share of messages with a 2000-2004 "
        "failure, e.g. 2004=0.05 (repeatable).")] = None,
    max_concurrency: Annotated[int, int_option(
        "--max-concurrency", min=1, help="In-flight messages past which the BSP answers 429.")]
    = 2000,
    reply_rate: Annotated[float, float_option(
        "--reply-rate", min=0.0, max=1.0, help="Share of messages that get an inbound reply.")]
    = 0.1,
    templates: Annotated[Path | None, typer.Option(
        "--templates", help="Folder of Meta-format templates the vendor serves.")] = None,
    status_url: Annotated[str | None, typer.Option(
        "--status-url", metavar="URL",
        help="Where the mock BSP sends DLRs (default: the sandbox's own CleverTap).")] = None,
    inbound_url: Annotated[str | None, typer.Option(
        "--inbound-url", metavar="URL",
        help="Where the mock BSP sends replies (default: the sandbox's own CleverTap).")] = None,
    misbehave: Annotated[list[str] | None, typer.Option(
        "--misbehave", metavar="FAULT[=SHARE][,...]",
        autocompletion=lambda: list(_fault_names()),
        help="Make the mock BSP wrong the way real ones are, on a share of messages "
        "(wrong-msgid=10%): slow, slow-ceiling=N, late-dlr, no-dlr, no-read, duplicate-dlr, "
        "out-of-order, meta-format, wrong-msgid, no-msgid-dlr, no-context, bad-codes, "
        "wrong-codes, date-timestamps, wrapped-callbacks, bad-callback-query, "
        "accept-then-drop, empty-200, no-auth, validation-error (README lists each).")]
    = None,
    no_store: Annotated[bool, typer.Option(
        "--no-store", help="Do not keep the callbacks its CleverTap receives in the store.")]
    = False,
    simulate_user: Annotated[bool, typer.Option(
        "--simulate-user", help="A user behind every number who replies to each template "
        "with every message kind and taps its link buttons (for `ctwa certify`), on the mock "
        "BSP and the mock Cloud API.")] = False,
    meta_webhook_url: Annotated[str | None, typer.Option(
        "--meta-webhook-url", metavar="URL", help="Where the mock Cloud API posts its signed "
        "webhooks (the bridge's /webhook); none are sent without it.")] = None,
    meta_mps: Annotated[float, float_option(
        "--meta-mps", min=0.0, help="Messages/s the mock Cloud API takes before it answers "
        "130429 (Meta's default throughput is 80; 0: no limit).")] = 80.0,
    meta_tap_prefix: Annotated[list[str] | None, typer.Option(
        "--meta-tap-prefix", metavar="URL", help="The simulated user taps URL buttons whose "
        "URL starts so (the bridge's public URL and /c/); repeatable.")] = None,
    meta_window: Annotated[str, typer.Option(
        "--meta-window", metavar="open|strict", help="The 24-hour window for non-template "
        "messages: open for every number (but those ending 0047), or strict: only after the "
        "user wrote (else 131047).")] = "open",
    meta_fail: Annotated[list[str] | None, typer.Option(
        "--meta-fail", metavar="CODE=RATE", help="Fail a share of sends with a Meta error "
        "code, e.g. 131026=0.05 or 130429=0.1 (repeatable).")] = None,
    meta_latency: Annotated[str | None, typer.Option(
        "--meta-latency", metavar="DURATION",
        help="Mock Cloud API answer delay: 50ms, or a range 20ms-80ms.")]
    = None,
    meta_batch: Annotated[int, int_option(
        "--meta-batch", min=1, max=1000, help="Updates per webhook POST at most, when they "
        "queue up (Meta batches under load; 1: one per POST always).")] = 100,
    meta_fault: Annotated[list[str] | None, typer.Option(
        "--meta-fault", metavar="NAME=RATE", help="Hit a share of sends with a fault: html "
        "(502 HTML page), hang (sent, answered after 30 s), slow (answered after 2 s), 500 "
        "(131000); e.g. html=0.05 (repeatable).")] = None,
) -> None:
    """Run a mock BSP endpoint, vendor template endpoint, CleverTap (upload API and callback
    URLs) and Meta's WhatsApp Cloud API on one port, printing each URL and credential, until
    Ctrl-C. The mock Cloud API's token and app secret come from CTWA_META_TOKEN and
    CTWA_META_APP_SECRET when set; with CTWA_META_VERIFY_TOKEN it first verifies the webhook
    URL as Meta does (hub.challenge)."""
    from ctwa.sandbox.bsp import FAULTS, BspSettings
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings

    out = of(ctx).out
    options: dict[str, Any] = _settings_from_file(config) if config else {}

    def pick(name: str, flag: Any) -> Any:
        """The flag when given, else the file's value, else the flag's default."""
        key = name.replace("_", "-")
        return flag if _given(ctx, name) or key not in options else options[key]

    fail_given = fail if _given(ctx, "fail") or "fail" not in options else [
        f"{k}={v}" for k, v in options["fail"].items()]
    file_templates = options.get("templates")
    from ctwa.sandbox.bsp import parse_faults

    faults = (misbehave if _given(ctx, "misbehave") else options.get("misbehave")) or []
    names, shares = parse_faults([faults] if isinstance(faults, str) else
                                 [str(f) for f in faults])
    bsp = BspSettings(latency=_latency(str(pick("latency", latency) or "") or None),
                      misbehave=names, shares=shares,
                      simulated_user=bool(pick("simulate_user", simulate_user)),
                      fail_rates=_fail_rates(fail_given or []),
                      max_concurrency=int(pick("max_concurrency", max_concurrency)),
                      reply_rate=float(pick("reply_rate", reply_rate)),
                      status_url=pick("status_url", status_url),
                      inbound_url=pick("inbound_url", inbound_url))
    settings = SandboxSettings(host=pick("host", host), port=int(pick("port", port)), bsp=bsp,
                               templates=templates if _given(ctx, "templates") or not
                               file_templates else Path(file_templates),
                               store_callbacks=not no_store,
                               meta=_meta_settings(
                                   pick, options, lambda name: _given(ctx, name),
                                   webhook_url=meta_webhook_url, mps=meta_mps,
                                   tap_prefix=meta_tap_prefix, window=meta_window,
                                   fail=meta_fail, latency=meta_latency, batch=meta_batch,
                                   simulated_user=bsp.simulated_user, fault=meta_fault))
    from ctwa.infra.ports import check_port_free

    check_port_free(settings.host, settings.port)
    running = RunningSandbox(settings)
    with running as box:
        urls, secrets = box.urls(), box.credentials()
        secrets.update(meta_token=_shown(secrets["meta_token"], "token"),
                       meta_app_secret=_shown(secrets["meta_app_secret"], "app_secret"))
        if out.json_mode:
            out.stdout_json({"urls": urls, "credentials": secrets})
        else:
            out.stderr_line(f"ctwa sandbox on {box.base_url} (Ctrl-C to stop)", "bold")
            for name, url in urls.items():
                out.stderr_line(f"  {name:18} {url}")
            out.stderr_line(
                f"  BSP basic auth     {secrets['bsp_username']} / {secrets['bsp_password']}"
                f"   vendor token {secrets['vendor_token']}")
            out.stderr_line(f"  CleverTap account  {secrets['account_id']}   passcode "
                            f"{secrets['passcode']}")
            meta = settings.meta
            out.stderr_line(
                f"  Meta Cloud API     phone number id {meta.phone_number_id}   WABA id "
                f"{meta.waba_id}   {meta.mps:g} mps")
            out.stderr_line(f"  Meta token         {secrets['meta_token']}   app secret "
                            f"{secrets['meta_app_secret']}")
            out.stderr_line(
                f"  Meta webhooks to   {meta.webhook_url or '(none: --meta-webhook-url)'}"
                + ("   verified first (CTWA_META_VERIFY_TOKEN)" if meta.verify_token
                   else ""))
            if bsp.misbehave:
                out.stderr_line("  misbehaving: " + "; ".join(
                    f"{name}" + (f"={bsp.shares[name]:g}" if name in bsp.shares else "")
                    + f" ({FAULTS[name]})" for name in bsp.misbehave), "yellow")
            out.stderr_line(
                "next, in another terminal (the sandbox's secrets are not secret):", "dim")
            out.stdout_line(profile_command(urls, secrets))
        try:
            while running.thread.is_alive():
                running.thread.join(timeout=0.5)
        except KeyboardInterrupt:
            out.stderr_line("stopping the sandbox")


def _shown(value: str, name: str) -> str:
    """A sandbox default is shown; a value from the environment is not."""
    from ctwa.infra import envvars
    from ctwa.sandbox.meta import MetaSettings

    if value == getattr(MetaSettings(), name):
        return value
    return f"(from {envvars.META_TOKEN if name == 'token' else envvars.META_APP_SECRET})"


def profile_command(urls: dict[str, str], secrets: dict[str, str]) -> str:
    """A ready ``ctwa profile add`` line for this sandbox, secrets by environment variable."""
    import shlex

    args = ["ctwa", "profile", "add", "sandbox", "--endpoint", urls["bsp_endpoint"],
            "--auth", "basic", "--username", secrets["bsp_username"], "--waba", "919999999998",
            "--account-id", secrets["account_id"], "--base-url", urls["clevertap_api"],
            "--status-url", urls["status_callback"], "--inbound-url", urls["inbound_callback"],
            "--import-url", urls["vendor_templates"], "--import-auth", "bearer", "--use"]
    env = (f"export CTWA_PASSWORD={secrets['bsp_password']} "
           f"CTWA_IMPORT_TOKEN={secrets['vendor_token']} CTWA_PASSCODE={secrets['passcode']}")
    return f"{' '.join(shlex.quote(a) for a in args)} && {env}"


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox)

"""``ctwa sandbox``: the mock BSP, vendor and CleverTap on 127.0.0.1, until Ctrl-C."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.output import Output
from ctwa.infra.errors import InputError


def _fail_rates(values: list[str]) -> dict[int, float]:
    rates: dict[int, float] = {}
    for raw in values:
        code, sep, rate = raw.partition("=")
        try:
            number, probability = int(code), float(rate)
        except ValueError:
            number, probability = 0, -1.0
        if not sep or number not in range(2000, 2005) or not 0 <= probability <= 1:
            raise InputError(f"--fail {raw!r}: write CODE=RATE, e.g. 2004=0.05 (codes 2000-2004)")
        rates[number] = probability
    return rates


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


def _settings_from_file(path: Path) -> dict[str, Any]:
    import yaml

    from ctwa.infra.textfiles import read_text, yaml_error

    text = read_text(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings")
    return data


def sandbox(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port (0: a free one).")] = 8700,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML settings (any option below, by its long name).")] = None,
    latency: Annotated[str | None, typer.Option(
        "--latency", help="BSP answer delay: 50ms, or a range 20ms-80ms.")] = None,
    fail: Annotated[list[str] | None, typer.Option(
        "--fail", metavar="CODE=RATE", help="Answer a share of messages with a 2000-2004 "
        "failure, e.g. 2004=0.05 (repeatable).")] = None,
    max_concurrency: Annotated[int, typer.Option(
        "--max-concurrency", min=1, help="In-flight messages past which the BSP answers 429.")]
    = 2000,
    reply_rate: Annotated[float, typer.Option(
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
) -> None:
    """Run a mock BSP endpoint, vendor template endpoint and CleverTap (upload API and
    callback URLs) on one port, printing each URL and credential, until Ctrl-C."""
    from ctwa.sandbox.bsp import BspSettings
    from ctwa.sandbox.server import RunningSandbox, SandboxSettings

    out: Output = ctx.obj
    options: dict[str, Any] = _settings_from_file(config) if config else {}
    bsp = BspSettings(latency=_latency(latency or options.get("latency")),
                      fail_rates=_fail_rates(fail or [f"{k}={v}" for k, v in
                                                      options.get("fail", {}).items()]),
                      max_concurrency=int(options.get("max-concurrency", max_concurrency)),
                      reply_rate=float(options.get("reply-rate", reply_rate)),
                      status_url=options.get("status-url", status_url),
                      inbound_url=options.get("inbound-url", inbound_url))
    settings = SandboxSettings(host=options.get("host", host),
                               port=int(options.get("port", port)), bsp=bsp,
                               templates=Path(options["templates"]) if options.get("templates")
                               else templates)
    from ctwa.infra.ports import check_port_free

    check_port_free(settings.host, settings.port)
    running = RunningSandbox(settings)
    with running as box:
        urls, secrets = box.urls(), box.credentials()
        if out.json_mode:
            out.data({"urls": urls, "credentials": secrets})
        else:
            out.say(f"ctwa sandbox on {box.base_url} (Ctrl-C to stop)", "bold")
            for name, url in urls.items():
                out.say(f"  {name:18} {url}")
            out.say(f"  BSP basic auth     {secrets['bsp_username']} / {secrets['bsp_password']}"
                    f"   vendor token {secrets['vendor_token']}")
            out.say(f"  CleverTap account  {secrets['account_id']}   passcode "
                    f"{secrets['passcode']}")
        try:
            while running.thread.is_alive():
                running.thread.join(timeout=0.5)
        except KeyboardInterrupt:
            out.say("stopping the sandbox")


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox)

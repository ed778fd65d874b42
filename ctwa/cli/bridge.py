"""``ctwa bridge``: CleverTap's Generic WhatsApp endpoint in front of Meta's Cloud API;
``ctwa bridge migrate`` and ``ctwa bridge status``."""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ctwa.cli.commands import Typer
from ctwa.cli.context import of
from ctwa.cli.options import float_option

app = Typer(help="Run the middleware between CleverTap and Meta's WhatsApp Cloud API.",
            invoke_without_command=True, no_args_is_help=False)

StateOpt = Annotated[str | None, typer.Option(
    "--state", metavar="URL",
    help="Where the durable state lives: a file path, sqlite:///path or "
    "postgresql://user@host/db.  [default: bridge.sqlite3 in the data directory]")]


def default_state() -> str:
    from ctwa.infra.config import data_dir

    return str(data_dir() / "bridge.sqlite3")


def advice_state(url: str) -> tuple[str, str | None]:
    """The state URL for a command ctwa prints as advice: runnable as printed, so without a
    password (never shown, not even masked), and where to give the password instead."""
    import shlex
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return shlex.quote(url), None
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit(parts._replace(netloc=netloc))
    return shlex.quote(bare), "the password: PGPASSWORD or ~/.pgpass (libpq reads both)"


def _make_parent(url: str) -> None:
    """A SQLite file's folder is made (the default one in the data directory, or one named)."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" not in path:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _run(coroutine: Any) -> Any:
    import asyncio

    return asyncio.run(coroutine)


def _on_state(url: str, use: Callable[[Any], Awaitable[Any]]) -> Any:
    """What ``use`` returns for the state at ``url``, opened for it and closed after."""
    from ctwa.bridge.state import open_state

    async def go() -> Any:
        opened = await open_state(url)
        try:
            return await use(opened)
        finally:
            await opened.close()

    return _run(go())


@app.callback(invoke_without_command=True)
def bridge(
    ctx: typer.Context,
    listen: Annotated[str | None, typer.Option(
        "--listen", metavar="HOST:PORT",
        help="Where to listen (0.0.0.0:PORT only when asked).  "
        "[default: 127.0.0.1:8780]")] = None,
    graph_url: Annotated[str | None, typer.Option(
        "--graph-url", metavar="URL",
        help="Meta's Graph API base with its version.  "
        "[default: https://graph.facebook.com/v23.0]")] = None,
    phone_number_id: Annotated[str | None, typer.Option(
        "--phone-number-id", metavar="ID", help="The Cloud API phone number id messages are "
        "sent from.")] = None,
    waba_id: Annotated[str | None, typer.Option(
        "--waba-id", metavar="ID", help="The WhatsApp Business Account id (templates are "
        "synced from it).")] = None,
    status_url: Annotated[str | None, typer.Option(
        "--status-url", metavar="URL", help="CleverTap's DLR callback URL (provider "
        "settings).")] = None,
    inbound_url: Annotated[str | None, typer.Option(
        "--inbound-url", metavar="URL", help="CleverTap's inbound callback URL.")] = None,
    username: Annotated[str | None, typer.Option(
        "--username", metavar="NAME", help="The Basic auth username CleverTap sends (the "
        "password: CTWA_BRIDGE_PASSWORD).")] = None,
    state: StateOpt = None,
    mps: Annotated[float | None, float_option(
        "--mps", metavar="N",
        help="Messages per second Meta allows the number.  [default: 80]")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", metavar="URL", help="How CleverTap and Meta reach the bridge (for "
        "media and click links), e.g. https://wa.example.com.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", help="YAML settings: any option above by its name "
        "(phone_number_id: ...), and clicks: {template: destination URL}.")] = None,
) -> None:
    """Serve CleverTap's messaging endpoint (POST /messages) and Meta's webhook (/webhook),
    sending to Meta at --mps and delivering DLRs and replies to CleverTap, until Ctrl-C.
    Secrets from the environment or the keyring only: CTWA_BRIDGE_PASSWORD, CTWA_META_TOKEN,
    CTWA_META_APP_SECRET, CTWA_META_VERIFY_TOKEN."""
    if ctx.invoked_subcommand is not None:
        return
    from ctwa.bridge.config import load_config, load_secrets
    from ctwa.bridge.run import serve, setup_logging
    from ctwa.bridge.state.base import safe_url
    from ctwa.infra.ports import check_port_free

    out = of(ctx).out
    settings = load_config(config, {
        "listen": listen, "graph_url": graph_url, "phone_number_id": phone_number_id,
        "waba_id": waba_id, "status_url": status_url, "inbound_url": inbound_url,
        "username": username, "state": state, "mps": mps, "public_url": public_url})
    settings.state = settings.state or default_state()
    _make_parent(settings.state)
    settings.check()
    secrets = load_secrets()
    secrets.check()
    host, port = settings.host_port()
    check_port_free(host, port)
    setup_logging(out.verbose)

    def ready(bridge: Any, address: tuple[str, int]) -> None:
        out.stderr_line(f"ctwa bridge on http://{address[0]}:{address[1]} (Ctrl-C to stop)", "bold")
        reached = ("as CleverTap and Meta reach it, --public-url" if settings.public_url
                   else "the listen address; no --public-url")
        out.stderr_line(f"  CleverTap endpoint  {settings.base_url()}/messages   templates "
                        f"{settings.base_url()}/templates   ({reached})")
        out.stderr_line(f"  Meta webhook        {settings.base_url()}/webhook")
        if not settings.public_url:
            out.stderr_warn(
                f"no --public-url: media and click links point at {settings.base_url()}, "
                "which CleverTap and Meta may not reach; give --public-url "
                "https://wa.example.com")
        out.stderr_line(f"  state               {safe_url(settings.state)} ({bridge.state.backend})"
                        f"   {settings.mps:g} messages/s to number {settings.phone_number_id}")

    summary = serve(settings, secrets, ready)
    result = {"accepted": summary.accepted, "sent": summary.sent, "failed": summary.failed,
              "retried": summary.retried, "callbacks_delivered": summary.callbacks,
              "seconds": round(summary.seconds, 1)}
    if out.json_mode:
        out.stdout_json(result)
    else:
        out.stderr_line(
            f"stopped after {summary.seconds:.0f} s: {summary.accepted} accepted, "
            f"{summary.sent} sent to Meta, {summary.failed} failed before reaching Meta, "
            f"{summary.callbacks} callbacks delivered; what is queued stays in the state "
            "and goes on at the next start")
        command, note = advice_state(settings.state)
        out.stderr_line(f"  see it with: ctwa bridge status --state {command}", "dim")
        if note:
            out.stderr_line(f"  {note}", "dim")


@app.command("migrate")
def migrate(ctx: typer.Context, state: StateOpt = None) -> None:
    """Create or upgrade the state's schema (both backends; refuses a newer one)."""
    from ctwa.bridge.state.base import safe_url

    out = of(ctx).out
    url = state or default_state()
    _make_parent(url)

    async def migrated(opened: Any) -> Any:
        return await opened.migrate(), opened.backend

    done, backend = _on_state(url, migrated)
    if out.json_mode:
        out.stdout_json({"state": safe_url(url), "backend": backend, "before": done.before,
                         "after": done.after})
    elif done.before == done.after:
        out.stderr_success(f"{safe_url(url)} ({backend}): schema {done.after}, up to date")
    else:
        out.stderr_success(f"{safe_url(url)} ({backend}): schema {done.before} -> {done.after}")


@app.command("status")
def status(ctx: typer.Context, state: StateOpt = None) -> None:
    """The whole cluster from its state: replicas seen, outbox depths, oldest message, lag."""
    from ctwa.bridge.state.base import safe_url

    out = of(ctx).out
    url = state or default_state()
    _must_exist(url)
    cluster = _on_state(url, lambda opened: opened.cluster_status())
    d = cluster.depths
    data = {"state": safe_url(url), "backend": cluster.backend,
            "schema_version": cluster.schema_version,
            "replicas": [{"name": r.name, "age": round(r.age, 1), "info": r.info}
                         for r in cluster.replicas],
            "depths": {"sends_queued": d.sends_queued, "sends_claimed": d.sends_claimed,
                       "sends_in_flight": d.sends_in_flight,
                       "sends_in_doubt": d.sends_in_doubt,
                       "webhooks_pending": d.webhooks_pending,
                       "callbacks_pending": d.callbacks_pending},
            "oldest_send_age": cluster.oldest_send_age, "callback_lag": cluster.callback_lag,
            "sent": cluster.sent, "failed": cluster.failed,
            "callbacks_delivered": cluster.callbacks_delivered}
    if out.json_mode:
        out.stdout_json(data)
        return
    out.stdout_line(f"state {safe_url(url)} ({cluster.backend}, schema {cluster.schema_version})")
    if not cluster.replicas:
        out.stdout_line("replicas: none seen")
    for r in cluster.replicas:
        alive = "alive" if r.age < 30 else "silent"
        out.stdout_line(f"replica {r.name}: {alive}, last seen {r.age:.0f} s ago "
                        f"({r.info.get('listen', '?')}, {r.info.get('mps', '?')} mps)")
    doubt = (f", {d.sends_in_doubt} in doubt (in flight at a crash, waiting for Meta's "
             "status)") if d.sends_in_doubt else ""
    out.stdout_line(
        f"sends: {d.sends_queued} queued, {d.sends_claimed} claimed, {d.sends_in_flight} "
        f"in flight{doubt}; {cluster.sent} sent to Meta (their DLRs may still fail), "
        f"{cluster.failed} failed before reaching Meta")
    out.stdout_line(f"webhooks pending: {d.webhooks_pending}; callbacks pending: "
                    f"{d.callbacks_pending} ({cluster.callbacks_delivered} delivered)")
    oldest = "-" if cluster.oldest_send_age is None else f"{cluster.oldest_send_age:.1f} s"
    lag = "-" if cluster.callback_lag is None else f"{cluster.callback_lag:.1f} s"
    out.stdout_line(f"oldest unsent message: {oldest}; callback lag: {lag}")


def _must_exist(url: str) -> None:
    """A reading command creates no state: a SQLite file that is not there is refused (opening
    it would create it, and its folder). A PostgreSQL database without the bridge's tables
    is refused by the state itself ("not migrated"), creating nothing either."""
    if "://" in url and not url.startswith("sqlite://"):
        return
    from ctwa.bridge.state import StateError
    from ctwa.bridge.state.sqlite import sqlite_path

    path = sqlite_path(url)
    if not path.exists():
        command, _ = advice_state(url)
        raise StateError(f"no bridge state at {path} (the file does not exist)",
                         hint="give --state the state a bridge runs on, or create an empty "
                         f"one: `ctwa bridge migrate --state {command}`")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bridge")

"""``ctwa profile ...``: named settings for an integration, and their secrets in the keyring."""


import sys
from typing import Any

import typer

from ctwa.cli import complete
from ctwa.cli.commands import Typer
from ctwa.cli.context import of
from ctwa.infra.errors import ConfigError, InputError

app = Typer(help="Manage profiles: endpoint, auth, CleverTap account, callback and "
            "import URLs. Secrets go to the OS keyring, never to the config file.",
            no_args_is_help=True, rich_markup_mode=None)

AUTH_KINDS = ("basic", "bearer", "header", "none")
SECRET_WORDS = ("password", "token", "passcode", "import-token", "import-password")

#: Profile field -> the secrets that field's auth choice needs.
_FIELDS: dict[str, str] = {
    "endpoint": "BSP messaging endpoint URL.",
    "auth": f"Endpoint auth: {', '.join(AUTH_KINDS)}.",
    "username": "Basic auth username for the endpoint.",
    "auth_header": "Header name for --auth header (e.g. Token).",
    "waba_number": "Your WhatsApp Business number.",
    "account_id": "CleverTap account id.",
    "region": "CleverTap region: in1, sg1, us1, aps3, mec1, eu.",
    "base_url": "CleverTap API base URL (overrides region; for proxies and tests).",
    "status_callback_url": "CleverTap DLR (status) callback URL.",
    "inbound_callback_url": "CleverTap inbound message callback URL.",
    "import_url": "Vendor template import URL.",
    "import_auth": f"Import auth: {', '.join(AUTH_KINDS)}.",
    "import_username": "Basic auth username for the import URL.",
    "import_header": "Header name for import header auth.",
    "track_clicks": "Click-tracking domain for imported templates.",
}


def _check_auth(value: str | None) -> str | None:
    if value is not None and value not in AUTH_KINDS:
        raise typer.BadParameter(f"use one of {', '.join(AUTH_KINDS)}")
    return value


def _complete_profile(incomplete: str) -> list[str]:
    return complete.profiles(incomplete)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Profile name."),
    endpoint: str = typer.Option(None, help=_FIELDS["endpoint"]),
    auth: str = typer.Option(None, callback=_check_auth, help=_FIELDS["auth"],
                             autocompletion=complete.fixed(*complete.AUTH_KINDS)),
    username: str = typer.Option(None, help=_FIELDS["username"]),
    header_name: str = typer.Option(None, "--header-name", help=_FIELDS["auth_header"]),
    waba: str = typer.Option(None, "--waba", help=_FIELDS["waba_number"]),
    account_id: str = typer.Option(None, help=_FIELDS["account_id"]),
    region: str = typer.Option(None, help=_FIELDS["region"], autocompletion=complete.regions),
    base_url: str = typer.Option(None, help=_FIELDS["base_url"]),
    status_url: str = typer.Option(None, "--status-url", help=_FIELDS["status_callback_url"]),
    inbound_url: str = typer.Option(None, "--inbound-url",
                                    help=_FIELDS["inbound_callback_url"]),
    import_url: str = typer.Option(None, help=_FIELDS["import_url"]),
    import_auth: str = typer.Option(None, callback=_check_auth, help=_FIELDS["import_auth"],
                                    autocompletion=complete.fixed(*complete.AUTH_KINDS)),
    import_username: str = typer.Option(None, help=_FIELDS["import_username"]),
    import_header: str = typer.Option(None, "--import-header-name",
                                      help=_FIELDS["import_header"]),
    track_clicks: str = typer.Option(None, help=_FIELDS["track_clicks"]),
    use: bool = typer.Option(False, "--use", help="Make it the current profile."),
) -> None:
    """Create a profile, or update the given fields of an existing one."""
    from pydantic import ValidationError

    from ctwa.infra.config import Profile

    inv = of(ctx)
    out = inv.out
    given: dict[str, Any] = {
        "endpoint": endpoint, "auth": auth, "username": username, "auth_header": header_name,
        "waba_number": waba, "account_id": account_id, "region": region, "base_url": base_url,
        "status_callback_url": status_url, "inbound_callback_url": inbound_url,
        "import_url": import_url, "import_auth": import_auth,
        "import_username": import_username, "import_header": import_header,
        "track_clicks": track_clicks,
    }
    store = inv.config
    existing = store.load().profiles.get(name)
    merged = (existing.model_dump() if existing else {}) | {
        k: v for k, v in given.items() if v is not None
    }
    try:
        profile = Profile.model_validate(merged)
    except ValidationError as exc:
        from ctwa.wire.lint import first_problem

        raise InputError(f"profile {name}: {first_problem(exc)}") from exc
    store.put(name, profile, make_current=use)
    verb = "updated" if existing else "created"
    if out.json_mode:
        out.stdout_json({"profile": name, "action": verb, "settings": profile.model_dump()})
        return
    out.stderr_success(f"profile {name!r} {verb} in {store.path}")
    for needed in _secrets_needed(profile):
        out.stderr_line(f"  set its {needed} with: ctwa profile set-secret {name} {needed}")


def _secrets_needed(profile: Any) -> list[str]:
    needed = {"basic": "password", "bearer": "token", "header": "token"}
    out = []
    if profile.auth in needed:
        out.append(needed[profile.auth])
    if profile.account_id:
        out.append("passcode")
    if profile.import_auth == "basic":
        out.append("import-password")
    elif profile.import_auth in ("bearer", "header"):
        out.append("import-token")
    return out


@app.command("list")
def list_profiles(ctx: typer.Context) -> None:
    """List profiles; the current one is marked with *."""
    inv = of(ctx)
    out = inv.out
    config = inv.config.load()
    if out.json_mode:
        out.stdout_json({"current": config.current,
                         "profiles": {n: p.model_dump(exclude_none=True)
                                      for n, p in config.profiles.items()}})
        return
    if not config.profiles:
        out.stderr_line(
            "no profiles yet; create one with `ctwa profile add NAME --endpoint URL ...`")
        return
    from rich.table import Table

    table = Table("", "name", "endpoint", "auth", "CleverTap", box=None)
    for name, profile in config.profiles.items():
        account = " ".join(x for x in (profile.account_id, profile.region) if x)
        table.add_row("*" if name == config.current else "", name, profile.endpoint or "",
                      profile.auth, account)
    out.stdout_table(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(None, autocompletion=_complete_profile,
                               help="Profile (default: the current one)."),
) -> None:
    """Show a profile's settings and where each secret comes from (values masked)."""
    from ctwa.infra.masking import mask_value
    from ctwa.infra.secrets import SecretName, SecretResolver

    inv = of(ctx)
    out = inv.out
    chosen, profile = inv.profile(name)
    if chosen is None:
        raise ConfigError("no profile is selected",
                          hint="create one with `ctwa profile add NAME ...`")
    resolver = SecretResolver(chosen, inv.secrets, interactive=False)
    secrets = {}
    for secret in SecretName:
        found = resolver.resolve(secret)
        secrets[secret.value] = {"set": bool(found.value), "source": found.source.value,
                                 "value": mask_value(found.value), "note": found.note}
    settings = profile.model_dump()
    if out.json_mode:
        out.stdout_json({"profile": chosen, "settings": settings, "secrets": secrets})
        return
    from rich.table import Table

    table = Table(title=f"profile {chosen}", box=None, show_header=False)
    for key, value in settings.items():
        if value is not None:
            table.add_row(key, str(value))
    for key, info in secrets.items():
        note = f" ({info['note']})" if info["note"] else ""
        shown = (f"{info['value']}  from {info['source']}{note}" if info["set"]
                 else f"(not set){note}")
        table.add_row(f"secret {key}", shown)
    out.stdout_table(table)


@app.command("use")
def use(ctx: typer.Context,
        name: str = typer.Argument(..., autocompletion=_complete_profile)) -> None:
    """Make a profile the current one."""

    inv = of(ctx)
    out = inv.out
    inv.config.use(name)
    if out.json_mode:
        out.stdout_json({"current": name})
    else:
        out.stderr_success(f"now using profile {name!r}")


@app.command("remove")
def remove(ctx: typer.Context,
           name: str = typer.Argument(..., autocompletion=_complete_profile)) -> None:
    """Remove a profile and its keyring entries."""
    from ctwa.infra.secrets import SecretName

    inv = of(ctx)
    out = inv.out
    inv.config.remove(name)
    store = inv.secrets
    cleared = [s.value for s in SecretName if store.delete(name, s)]
    if out.json_mode:
        out.stdout_json({"removed": name, "secrets_cleared": cleared})
    else:
        out.stderr_success(f"removed profile {name!r}")


@app.command("set-secret")
def set_secret(
    ctx: typer.Context,
    name: str = typer.Argument(..., autocompletion=_complete_profile, help="Profile name."),
    secret: str = typer.Argument(..., help=f"Which secret: {', '.join(SECRET_WORDS)}."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the value from standard input."),
) -> None:
    """Store a secret for a profile in the OS keyring (prompted, hidden, or from stdin)."""
    from ctwa.infra.secrets import KeyringUnavailable, SecretName

    inv = of(ctx)
    out = inv.out
    try:
        which = SecretName(secret)
    except ValueError:
        raise InputError(f"unknown secret {secret!r}",
                         hint=f"use one of {', '.join(SECRET_WORDS)}") from None
    inv.profile(name)  # the profile must exist
    if stdin:
        value = sys.stdin.readline().strip()  # a CR from a Windows-edited file is no part of it
    elif sys.stdin.isatty():
        value = typer.prompt(f"{which.value} for {name}", hide_input=True)
    else:
        raise InputError("no terminal to prompt on", hint="pass --stdin and pipe the value in")
    if not value:
        raise InputError("empty secret; nothing stored")
    try:
        inv.secrets.set(name, which, value)
    except KeyringUnavailable as exc:
        raise ConfigError(f"the {which.value} was not stored: {exc}",
                          hint=f"export {which.env_var}=... instead, or pass it as a flag") \
            from exc
    if out.json_mode:
        out.stdout_json({"profile": name, "secret": which.value, "stored": "keyring"})
    else:
        out.stderr_success(f"stored the {which.value} of {name!r} in the OS keyring")

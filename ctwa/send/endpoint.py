"""Where and how to reach a service (the BSP's messaging endpoint, a vendor's template import
URL): flags over the profile, secrets resolved in the one order.

The same resolution serves every command, so a flag means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctwa.http import Auth, parse_header
from ctwa.infra.config import Profile
from ctwa.infra.errors import ConfigError, InputError
from ctwa.infra.masking import register_header, register_url
from ctwa.infra.secrets import SecretName, SecretResolver
from ctwa.infra.settings import choose, overrode


@dataclass(frozen=True)
class EndpointFlags:
    """Connection options as given on the command line (None: not given)."""

    endpoint: str | None = None
    auth: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    header_name: str | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    """What a profile says about one service, and which secrets authenticate to it."""

    what: str  # "messaging endpoint", "template import URL"
    url_flag: str
    url: str | None
    auth: str
    username: str | None
    header_name: str | None
    password: SecretName
    token: SecretName

    @classmethod
    def messaging(cls, profile: Profile) -> Service:
        return cls("messaging endpoint", "--endpoint", profile.endpoint, profile.auth,
                   profile.username, profile.auth_header, SecretName.PASSWORD, SecretName.TOKEN)

    @classmethod
    def template_import(cls, profile: Profile) -> Service:
        return cls("template import URL", "--url", profile.import_url, profile.import_auth,
                   profile.import_username, profile.import_header, SecretName.IMPORT_PASSWORD,
                   SecretName.IMPORT_TOKEN)


@dataclass(frozen=True)
class Endpoint:
    url: str
    auth: Auth = field(default_factory=Auth)
    headers: tuple[tuple[str, str], ...] = ()
    #: which profile values the options given overrode (printed with -v)
    notes: tuple[str, ...] = field(default=(), compare=False)


def check_url(url: str, what: str) -> None:
    """An http(s) URL with nothing a request line cannot carry (a CR or LF would split it)."""
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise InputError(f"{what} holds a space or a control character (CR, LF, tab...)",
                         hint="check the URL for a pasted line break")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{what} {url!r} is not an http(s) URL")


def parse_extra_headers(values: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``--header 'Name: value'`` pairs; their values are treated as secrets (ctwa cannot tell
    which are), but for the few well-known headers that never carry one (Content-Type...)."""
    pairs = []
    for raw in values:
        name, value = parse_header(raw)
        register_header(name, value)
        pairs.append((name, value))
    return tuple(pairs)


def _auth_kind(flags: EndpointFlags, service: Service) -> str:
    """The auth to use: as given, as implied by the credentials given, or the profile's.

    A profile's credentials go only to the profile's own URL, never to another one.
    """
    if flags.auth:
        return flags.auth
    if flags.username or flags.password:
        return "basic"
    if flags.token:
        return "header" if flags.header_name else "bearer"
    if flags.endpoint and flags.endpoint != service.url:
        return "none"
    return service.auth


def _overrides(flags: EndpointFlags, service: Service, kind: str) -> tuple[str, ...]:
    """What the options given overrode of the profile, for -v."""
    notes = []
    url_field = "endpoint" if service.url_flag == "--endpoint" else "import_url"
    if flags.endpoint and service.url and flags.endpoint != service.url:
        notes.append(overrode(service.url_flag, flags.endpoint, url_field, service.url))
    if kind != service.auth and service.auth != "none":
        given = ("--auth" if flags.auth else "--username/--password" if kind == "basic"
                 else "--token" if flags.token else service.url_flag)
        notes.append(overrode(given, None, "auth", service.auth) + f": auth {kind} is used"
                     + (", so the profile's credentials are not sent" if kind == "none"
                        else ""))
    return tuple(notes)


def resolve_endpoint(flags: EndpointFlags, service: Service,
                     resolver: SecretResolver, *, secrets: bool = True) -> Endpoint:
    """The endpoint and its auth; with ``secrets=False`` (an export that writes no secret,
    each process taking it from its environment) the password or token is left empty and
    never asked for."""
    url = choose((service.url_flag, flags.endpoint), ("profile", service.url)).value
    if not url:
        raise ConfigError(f"no {service.what} given",
                          hint=f"pass {service.url_flag} URL or set it in the profile")
    check_url(url, service.what)
    register_url(url)  # a password or token in the URL is masked wherever it shows up
    kind = _auth_kind(flags, service)
    headers = parse_extra_headers(flags.headers)
    notes = _overrides(flags, service, kind)
    found = _authenticated(url, kind, flags, service, resolver, headers, secrets)
    return Endpoint(found.url, found.auth, found.headers, notes)


def _authenticated(url: str, kind: str, flags: EndpointFlags, service: Service,
                   resolver: SecretResolver, headers: tuple[tuple[str, str], ...],
                   secrets: bool = True) -> Endpoint:
    if kind == "none":
        return Endpoint(url, Auth(), headers)
    if kind == "basic":
        username = flags.username or service.username
        if not username:
            raise ConfigError("basic auth needs a username",
                              hint="pass --username or set it in the profile")
        password = (resolver.require(service.password, flags.password).value if secrets
                    else "")
        return Endpoint(url, Auth("basic", username, password), headers)
    if kind not in ("bearer", "header"):
        raise InputError(f"unknown auth kind {kind!r}", hint="use basic, bearer, header or none")
    token = resolver.require(service.token, flags.token).value if secrets else ""
    if kind == "bearer":
        return Endpoint(url, Auth("bearer", secret=token), headers)
    name = flags.header_name or service.header_name
    if not name:
        raise ConfigError("header auth needs a header name",
                          hint="pass --header-name (e.g. Token) or set it in the profile")
    return Endpoint(url, Auth("header", secret=token, header_name=name), headers)


@dataclass(frozen=True)
class UploadTarget:
    """CleverTap's upload URL for the account's region, and the headers that authenticate."""

    url: str
    headers: dict[str, str]
    #: which profile values the options given overrode (printed with -v)
    notes: tuple[str, ...] = ()


def upload_base_url(profile: Profile, region: str | None,
                    base_url: str | None) -> tuple[str, tuple[str, ...]]:
    """CleverTap's API base: ``--base-url`` or ``--region`` given on the command line decide
    it whole (either beats both of the profile's ``base_url`` and ``region``); else the
    profile's base_url, else its region, else the default region."""
    from ctwa.upload.regions import api_base_url

    if not (region or base_url):
        return api_base_url(profile.region, profile.base_url), ()
    option, value = ("--base-url", base_url) if base_url else ("--region", region)
    notes = tuple(overrode(option, value, name, mine)
                  for name, mine in (("base_url", profile.base_url), ("region", profile.region))
                  if mine and mine != value)
    return api_base_url(region, base_url), notes


def resolve_upload_target(profile: Profile, resolver: SecretResolver, *,
                          account_id: str | None = None, passcode: str | None = None,
                          region: str | None = None, base_url: str | None = None,
                          require_passcode: bool = True) -> UploadTarget:
    """Flags over ``CTWA_ACCOUNT_ID`` over the profile; the passcode in the secrets order."""
    import os

    from ctwa.infra import envvars

    account = choose(("--account-id", account_id),
                     (envvars.ACCOUNT_ID, os.environ.get(envvars.ACCOUNT_ID)),
                     ("profile", profile.account_id)).value
    if not account:
        raise ConfigError("no CleverTap account id given",
                          hint=f"pass --account-id, export {envvars.ACCOUNT_ID}=..., or set it "
                          "in the profile")
    secret = (resolver.require(SecretName.PASSCODE, passcode) if require_passcode
              else resolver.resolve(SecretName.PASSCODE, passcode))
    base, notes = upload_base_url(profile, region, base_url)
    if account_id and profile.account_id and account_id != profile.account_id:
        notes += (overrode("--account-id", account_id, "account_id", profile.account_id),)
    return UploadTarget(base + "/1/upload", {"X-CleverTap-Account-Id": account,
                                             "X-CleverTap-Passcode": secret.value or ""},
                        notes)

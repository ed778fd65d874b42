"""Where and how to reach a messaging endpoint: flags over the profile, secrets resolved.

The same resolution serves the send commands, load mode and the demo, so a flag means the
same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctwa.config import Profile
from ctwa.errors import ConfigError, InputError
from ctwa.http import Auth, parse_header
from ctwa.masking import register_secret, register_secret_header
from ctwa.secrets import SecretName, SecretResolver

_SECRET_HEADER_WORDS = ("auth", "token", "key", "secret", "pass", "signature", "cookie")


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
class Endpoint:
    url: str
    auth: Auth = field(default_factory=Auth)
    headers: tuple[tuple[str, str], ...] = ()


def parse_extra_headers(values: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``--header 'Name: value'`` pairs; values of auth-like headers are treated as secrets."""
    pairs = []
    for raw in values:
        name, value = parse_header(raw)
        if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
            register_secret_header(name)
            register_secret(value)
        pairs.append((name, value))
    return tuple(pairs)


def _auth_kind(flags: EndpointFlags, profile: Profile) -> str:
    """The auth to use: as given, as implied by the credentials given, or the profile's.

    A profile's credentials go only to the profile's own endpoint, never to another URL.
    """
    if flags.auth:
        return flags.auth
    if flags.username or flags.password:
        return "basic"
    if flags.token:
        return "header" if flags.header_name else "bearer"
    if flags.endpoint and flags.endpoint != profile.endpoint:
        return "none"
    return profile.auth


def resolve_endpoint(flags: EndpointFlags, profile: Profile,
                     resolver: SecretResolver) -> Endpoint:
    url = flags.endpoint or profile.endpoint
    if not url:
        raise ConfigError("no messaging endpoint given",
                          hint="pass --endpoint URL or set one in the profile "
                          "(`ctwa profile add NAME --endpoint URL`)")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"endpoint {url!r} is not an http(s) URL")
    kind = _auth_kind(flags, profile)
    headers = parse_extra_headers(flags.headers)
    if kind == "none":
        return Endpoint(url, Auth(), headers)
    if kind == "basic":
        username = flags.username or profile.username
        if not username:
            raise ConfigError("basic auth needs a username",
                              hint="pass --username or set it in the profile")
        password = resolver.require(SecretName.PASSWORD, flags.password).value
        return Endpoint(url, Auth("basic", username, password), headers)
    token = resolver.require(SecretName.TOKEN, flags.token).value
    if kind == "bearer":
        return Endpoint(url, Auth("bearer", secret=token), headers)
    if kind == "header":
        name = flags.header_name or profile.auth_header
        if not name:
            raise ConfigError("header auth needs a header name",
                              hint="pass --header-name (e.g. Token) or set it in the profile")
        return Endpoint(url, Auth("header", secret=token, header_name=name), headers)
    raise InputError(f"unknown auth kind {kind!r}", hint="use basic, bearer, header or none")

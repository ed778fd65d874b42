"""The bridge's settings: options, a config file for the rest, secrets from env or keyring.

Precedence: command-line option > config file > default. Secrets never come from argv or the
config file: ``CTWA_BRIDGE_PASSWORD`` (CleverTap's Basic auth), ``CTWA_META_TOKEN``,
``CTWA_META_APP_SECRET``, ``CTWA_META_VERIFY_TOKEN``, each from the environment or, when not
set there, from the keyring (service ``ctwa``, user ``bridge:<NAME>``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ctwa.infra.errors import ConfigError, InputError

#: A current Graph API version (Meta's changelog: developers.facebook.com/docs/graph-api/
#: changelog); tests point --graph-url at the sandbox's mock.
DEFAULT_GRAPH_URL = "https://graph.facebook.com/v23.0"
DEFAULT_LISTEN = "127.0.0.1:8780"
DEFAULT_MPS = 80.0
SECRET_NAMES = ("CTWA_BRIDGE_PASSWORD", "CTWA_META_TOKEN", "CTWA_META_APP_SECRET",
                "CTWA_META_VERIFY_TOKEN")
KEYRING_SERVICE = "ctwa"


@dataclass
class BridgeSettings:
    """Everything but the secrets. Names are the options' (``--phone-number-id`` is
    ``phone_number_id`` here and in the config file)."""

    phone_number_id: str = ""
    waba_id: str = ""
    status_url: str = ""
    inbound_url: str = ""
    username: str = ""
    listen: str = DEFAULT_LISTEN
    graph_url: str = DEFAULT_GRAPH_URL
    state: str = ""
    mps: float = DEFAULT_MPS
    public_url: str = ""
    #: CleverTap's ``wabaNumber`` on inbound callbacks when Meta's metadata lacks it
    waba_number: str = ""
    #: per template name: where a tracked URL button (``{public_url}/c/{{1}}``) leads;
    #: ``{value}`` is replaced by the value CleverTap sent for the button
    clicks: dict[str, str] = field(default_factory=dict)
    body_limit: int = 256 * 1024
    media_link_ttl: float = 7 * 86400.0
    template_sync_every: float = 300.0
    meta_timeout: float = 10.0
    callback_timeout: float = 5.0
    #: the longest wait between two deliveries of a callback CleverTap refused
    callback_max_backoff: float = 30.0
    #: a webhook whose statuses name wamids not mapped yet waits this long for the send's
    #: commit before they are skipped as "not sent by the bridge" (longer, by two leases,
    #: while the msgId a status names is still being sent: see in_doubt_window)
    unmapped_wait: float = 30.0
    #: how long a send in flight when a bridge died waits for a status from Meta naming its
    #: msgId (then it is sent, its wamid recorded) before it is failed with 1009 (the crash
    #: rule, ctwa.bridge.state.base)
    in_doubt_window: float = 120.0
    #: how long Meta may stay silent before /health says not ready
    meta_silence: float = 600.0
    replica: str = ""

    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdecimal() or not host:
            raise InputError(f"--listen {self.listen!r}: expected HOST:PORT",
                             hint="e.g. 127.0.0.1:8780")
        return host.strip("[]"), int(port)

    def base_url(self) -> str:
        """How CleverTap and Meta reach the bridge (media links, click links)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = self.host_port()
        return f"http://{host}:{port}"

    def replica_name(self) -> str:
        if self.replica:
            return self.replica
        return f"{socket.gethostname()}:{self.host_port()[1]}:{os.getpid()}"

    def check(self) -> None:
        """Every setting the bridge needs, each named when missing (exit 4)."""
        needed = {"phone_number_id": "--phone-number-id", "waba_id": "--waba-id",
                  "status_url": "--status-url", "inbound_url": "--inbound-url",
                  "username": "--username"}
        missing = [flag for name, flag in needed.items() if not getattr(self, name)]
        if missing:
            raise ConfigError(f"the bridge needs {', '.join(missing)}",
                              hint="give them as options or in the --config file")
        if self.mps <= 0:
            raise InputError(f"--mps {self.mps:g}: must be above 0", hint="e.g. --mps 80")
        for name in ("status_url", "inbound_url", "graph_url", "public_url"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise InputError(f"--{name.replace('_', '-')} {value!r} is not an http(s) URL",
                                 hint="e.g. https://wzrkt.com/...")
        self.host_port()


@dataclass(frozen=True)
class BridgeSecrets:
    password: str = field(default="", repr=False)
    meta_token: str = field(default="", repr=False)
    app_secret: str = field(default="", repr=False)
    verify_token: str = field(default="", repr=False)

    def link_key(self) -> bytes:
        """The key of media and click links: derived from the app secret, so every replica
        signs alike and no new secret has to be shared."""
        return hmac.new(self.app_secret.encode(), b"ctwa-bridge-links", hashlib.sha256).digest()

    def check(self) -> None:
        missing = [name for name, value in zip(SECRET_NAMES, (
            self.password, self.meta_token, self.app_secret, self.verify_token), strict=True)
            if not value]
        if missing:
            raise ConfigError(f"the bridge needs the secret(s) {', '.join(missing)}",
                              hint="set them in the environment or the keyring (never on the "
                              "command line)")


def _secret(name: str) -> str:
    value = os.environ.get(name, "")
    if value:
        return value
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, f"bridge:{name}") or ""
    except Exception:  # a broken keyring is the same as an empty one; env is the fix
        return ""


def load_secrets() -> BridgeSecrets:
    from ctwa.infra.masking import register_secret

    values = [_secret(name) for name in SECRET_NAMES]
    for value in values:
        if any(c in value for c in "\r\n\0"):
            raise ConfigError("a bridge secret holds a line break (a pasted line ending?)",
                              hint="set it again without it")
        register_secret(value)
    return BridgeSecrets(*values)


_FIELDS = {f.name: f for f in fields(BridgeSettings)}
#: Settings that are durations: written with units in the config file (``7d``, ``5m``,
#: ``500ms``; a bare number there is refused, naming the key); in seconds from code.
DURATIONS = frozenset({"media_link_ttl", "template_sync_every", "meta_timeout",
                       "callback_timeout", "callback_max_backoff", "unmapped_wait",
                       "in_doubt_window", "meta_silence"})


_EXPECTED = {bool: "true or false", float: "a number", int: "a whole number",
             dict: "a mapping", str: "text"}
_EXAMPLES = {"mps": "write a number of messages per second, e.g. mps: 80",
             "body_limit": "write a size in bytes, e.g. body_limit: 262144",
             "clicks": "write template name: destination URL lines under clicks:"}


def _unitless(value: Any) -> bool:
    """A bare number (``10``, ``"1.5"``): the config file's durations take units."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return str(value).strip().replace(".", "", 1).isdecimal()


def load_config(path: Path | None, given: dict[str, Any]) -> BridgeSettings:
    """Settings from the config file (YAML), overridden by the options given (not None)."""
    values: dict[str, Any] = {}
    if path is not None:
        from ctwa.infra.textfiles import load_yaml, read_text

        data = load_yaml(read_text(path), str(path)) or {}
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a mapping of settings",
                             hint="e.g. phone_number_id: '1065...'")
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name.upper() in SECRET_NAMES or name in ("password", "meta_token",
                                                        "app_secret", "verify_token"):
                raise InputError(f"{path}: {key}: secrets do not go in the config file",
                                 hint="set it in the environment or the keyring")
            if name not in _FIELDS:
                raise InputError(f"{path}: unknown setting {key!r}",
                                 hint="known: " + ", ".join(sorted(_FIELDS)))
            values[name] = value
    values.update({k: v for k, v in given.items() if v is not None})
    settings = BridgeSettings()
    for name, value in values.items():
        default = getattr(settings, name)
        where = f"{path}: {name}" if path else name
        if name in DURATIONS:
            from ctwa.infra.durations import parse_duration

            if path is not None and _unitless(value):
                raise InputError(f"{where}: {value!r} has no unit",
                                 hint=f"write it with one, e.g. {name}: {value}s (or 500ms, "
                                 "5m, 12h, 7d)")
            setattr(settings, name, parse_duration(value, where))
            continue
        try:
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, float):
                value = float(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, dict):
                if not isinstance(value, dict):
                    raise ValueError("expected a mapping")
                value = {str(k): str(v) for k, v in value.items()}
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: {value!r} is not {_EXPECTED[type(default)]}",
                             hint=_EXAMPLES.get(name, "see the README's \"Run the bridge\"")
                             ) from None
        setattr(settings, name, value)
    return settings


# --- signed links ----------------------------------------------------------------------------


def sign_link(key: bytes, subject: str, expires: int) -> str:
    return hmac.new(key, f"{subject}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def media_link(settings: BridgeSettings, key: bytes, media_id: str,
               now: float | None = None) -> str:
    """An expiring signed link to ``GET /media/{id}`` on the bridge (Meta sends media as
    ids that only the token can fetch; CleverTap needs a URL)."""
    from urllib.parse import quote

    expires = int((time.time() if now is None else now) + settings.media_link_ttl)
    return (f"{settings.base_url()}/media/{quote(media_id, safe='')}?e={expires}"
            f"&s={sign_link(key, media_id, expires)}")


def link_ok(key: bytes, subject: str, expires: str | None, signature: str | None,
            now: float | None = None) -> str | None:
    """None when the link is good, else why not (expired, forged)."""
    if not expires or not expires.isdecimal() or not signature:
        return "the link is not signed"
    if not hmac.compare_digest(sign_link(key, subject, int(expires)), signature):
        return "the link's signature is wrong"
    if int(expires) < (time.time() if now is None else now):
        return "the link has expired"
    return None

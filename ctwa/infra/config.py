"""Profiles on disk: one YAML file under the platformdirs config dir, never holding a secret.

A profile gathers what one integration needs (the BSP endpoint and how to authenticate to it,
the CleverTap account, the callback and import URLs) so commands need few flags. Secrets live in
the OS keyring or the environment instead; see :mod:`ctwa.infra.secrets`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ctwa.infra import envvars
from ctwa.infra.errors import ConfigError, InputError
from ctwa.upload.regions import REGION_HOSTS

AuthKind = Literal["basic", "bearer", "header", "none"]
CONFIG_FILE = "config.yaml"


class Profile(BaseModel):
    """Everything non-secret about one integration; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(None, description="BSP messaging endpoint URL")
    auth: AuthKind = Field("none", description="how to authenticate to the endpoint")
    username: str | None = Field(None, description="Basic auth username")
    auth_header: str | None = Field(None, description="header name for --auth header")
    waba_number: str | None = Field(None, description="the WhatsApp Business number")
    account_id: str | None = Field(None, description="CleverTap account id")
    region: str | None = Field(None, description="CleverTap region")
    base_url: str | None = Field(None, description="CleverTap API base URL (overrides region)")
    status_callback_url: str | None = Field(None, description="DLR callback URL")
    inbound_callback_url: str | None = Field(None, description="inbound message callback URL")
    import_url: str | None = Field(None, description="vendor template import URL")
    import_auth: AuthKind = Field("none", description="how to authenticate to the import URL")
    import_username: str | None = Field(None, description="Basic auth username for imports")
    import_header: str | None = Field(None, description="header name for import header auth")
    track_clicks: str | None = Field(None, description="click-tracking domain for imports")

    @field_validator("endpoint", "base_url", "status_callback_url", "inbound_callback_url",
                     "import_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        if value is not None:
            from urllib.parse import urlsplit

            if urlsplit(value).password is not None:  # config.yaml is no place for secrets
                raise ValueError("the URL holds a password; give the URL without it and "
                                 "store the password with `ctwa profile set-secret`")
        return value

    @field_validator("waba_number")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        """Checked like ``--waba`` (and in ASCII digits only: it is written to a file)."""
        if not value:
            return value
        from ctwa.infra.errors import InputError
        from ctwa.wire.numbers import check_phone

        try:
            cleaned = check_phone(value, "waba_number")
        except InputError:
            cleaned = ""
        if not cleaned.isascii() or not cleaned:
            raise ValueError(f"{value!r} is not a phone number (digits with country code)")
        return cleaned

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in REGION_HOSTS:
            raise ValueError(f"unknown region {value!r}; use one of {', '.join(REGION_HOSTS)}")
        return value.lower() if value else value


class ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current: str | None = None
    profiles: dict[str, Profile] = Field(default_factory=dict)


def config_dir() -> Path:
    """Where the config lives: ``$CTWA_CONFIG_DIR`` or the platform's user config dir."""
    override = os.environ.get(envvars.CONFIG_DIR)
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("ctwa", appauthor=False))


def data_dir() -> Path:
    """Where data (the template library) lives: ``$CTWA_DATA_DIR`` or the user data dir."""
    override = os.environ.get(envvars.DATA_DIR)
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("ctwa", appauthor=False))


class ConfigStore:
    """Reads and writes the profiles file; each write is atomic (temp file, then rename)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / CONFIG_FILE

    def load(self) -> ConfigFile:
        if not self.path.exists():
            return ConfigFile()
        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            return ConfigFile.model_validate(raw)
        except (yaml.YAMLError, ValidationError, OSError) as exc:
            if isinstance(exc, ValidationError):
                from ctwa.wire.lint import first_problem

                first = first_problem(exc)
            else:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"{self.path}: cannot read the ctwa config: {first}",
                hint="fix or delete the file",
            ) from exc

    def save(self, config: ConfigFile) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = config.model_dump(mode="json", exclude_defaults=True)
        text = yaml.safe_dump(data, sort_keys=False)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".config-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, name: str | None) -> tuple[str | None, Profile]:
        """The named profile, else the current one, else an empty profile.

        An explicitly named profile that does not exist is an error, since every command
        would otherwise silently run without the settings the user meant.
        """
        config = self.load()
        chosen = name or os.environ.get(envvars.PROFILE) or config.current
        if chosen is None:
            return None, Profile()
        if chosen not in config.profiles:
            from ctwa.infra.suggest import did_you_mean

            known = ", ".join(sorted(config.profiles)) or "none yet"
            raise ConfigError(
                f"no profile named {chosen!r} (known: {known})",
                hint=did_you_mean(chosen, config.profiles,
                                  otherwise=f"create it with `ctwa profile add {chosen} ...`"),
            )
        return chosen, config.profiles[chosen]

    def put(self, name: str, profile: Profile, *, make_current: bool = False) -> None:
        config = self.load()
        config.profiles[name] = profile
        if make_current or config.current is None:
            config.current = name
        self.save(config)

    def remove(self, name: str) -> None:
        config = self.load()
        if name not in config.profiles:
            raise InputError(f"no profile named {name!r}")
        del config.profiles[name]
        if config.current == name:
            config.current = next(iter(config.profiles), None)
        self.save(config)

    def use(self, name: str) -> None:
        config = self.load()
        if name not in config.profiles:
            from ctwa.infra.suggest import did_you_mean

            raise InputError(f"no profile named {name!r}", hint=did_you_mean(
                name, config.profiles, "ctwa profile use", otherwise="see `ctwa profile list`"))
        config.current = name
        self.save(config)

"""What every command needs, in one place: the output, the profile, the secrets, the store.

The root callback makes one :class:`Invocation` per run of ``ctwa`` and puts it in Typer's
context (``ctx.obj``); a command reaches it with :func:`of` and hands it to the helpers that
need more than the output. Nothing is read or opened before a command asks for it (``ctwa
--help`` and ``lint`` never touch the profiles file or the store):

- ``out``: the :class:`~ctwa.cli.output.Output` of this run (``--json``, ``-v``, ``--debug``);
- :meth:`Invocation.profile`: the profile this run uses, by the one precedence rule
  (``-p`` > ``CTWA_PROFILE`` > the current profile; see :mod:`ctwa.infra.settings`), read
  once;
- ``config`` and ``secrets``: the profiles file and the keyring, for the commands that
  change them (``profile add``, ``profile set-secret``);
- :meth:`Invocation.store`: a connection to the store (``--store`` > ``CTWA_STORE`` > the
  data directory's), read-only for the commands that only read (nothing is created).

This is the only CLI module that constructs a ``ConfigStore``, a ``SecretStore`` or a
``Store`` (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctwa.cli.output import Output

if TYPE_CHECKING:
    from ctwa.infra.config import ConfigStore, Profile
    from ctwa.infra.secrets import SecretStore
    from ctwa.store.db import Store


@dataclass
class Invocation:
    """One run of ``ctwa``: its output, and its profile, secrets and store, made on first
    use."""

    out: Output = field(default_factory=Output)
    #: ``-p/--profile`` as given (None: ``CTWA_PROFILE``, else the current profile)
    profile_name: str | None = None
    _config: ConfigStore | None = field(default=None, repr=False)
    _secrets: SecretStore | None = field(default=None, repr=False)
    _profile: tuple[str | None, Profile] | None = field(default=None, repr=False)

    @property
    def config(self) -> ConfigStore:
        """The profiles file (read when a method of it is called)."""
        if self._config is None:
            from ctwa.infra.config import ConfigStore

            self._config = ConfigStore()
        return self._config

    @property
    def secrets(self) -> SecretStore:
        """ctwa's keyring entries."""
        if self._secrets is None:
            from ctwa.infra.secrets import SecretStore

            self._secrets = SecretStore()
        return self._secrets

    def profile(self, name: str | None = None) -> tuple[str | None, Profile]:
        """The profile's name and settings: ``name`` when a command names one (``profile
        show NAME``), else ``-p``, ``CTWA_PROFILE`` or the current one; an empty profile when
        there is none. A named profile that does not exist is a ``ConfigError``."""
        if name:
            return self.config.get(name)
        if self._profile is None:
            self._profile = self.config.get(self.profile_name)
        return self._profile

    def store(self, *, readonly: bool = False) -> Store:
        """A new connection to the store, to use in a ``with`` block; ``readonly`` for a
        command that only reads."""
        from ctwa.store.db import Store

        return Store(readonly=readonly)


def of(ctx: Any) -> Invocation:
    """The invocation the root callback made, from a command's Typer context (or any
    context under the root); a fresh one where there is none (shell completion, which runs
    before any callback)."""
    found = ctx.find_object(Invocation) if ctx is not None else None
    return found if found is not None else Invocation()

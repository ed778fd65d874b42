"""The scenario file ``ctwa load export --locust`` writes: what to send (CleverTap's payload,
built by ctwa), to whom, where, how to authenticate (environment variables only: no secret is
ever written), and the criteria to judge by."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctwa.infra.errors import ConfigError, InputError

FORMAT = 1
FILE_NAME = "scenario.yaml"
#: The environment variable each auth kind's secret comes from on every Locust process.
SECRET_ENV = {"basic": "CTWA_PASSWORD", "bearer": "CTWA_TOKEN", "header": "CTWA_TOKEN"}


@dataclass
class Scenario:
    url: str
    payload: dict[str, Any]
    recipients: list[str]
    wrapped: bool = False
    deadline: float = 1.0
    timeout: float = 10.0
    concurrency: int = 1500
    auth: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    headers: dict[str, str] = field(default_factory=dict)
    ctwa_version: str = ""

    def as_document(self) -> dict[str, Any]:
        return {"ctwa_scenario": FORMAT, "ctwa_version": self.ctwa_version, "url": self.url,
                "deadline": self.deadline, "timeout": self.timeout,
                "concurrency": self.concurrency, "auth": self.auth, "headers": self.headers,
                "wrapped": self.wrapped, "recipients": self.recipients,
                "payload": self.payload}

    def secret(self, environ: Any) -> str | None:
        """The auth secret from the environment; ConfigError (exit 4) when it is not set."""
        kind = self.auth.get("kind", "none")
        if kind == "none":
            return None
        name = SECRET_ENV[kind]
        value = environ.get(name)
        if not value:
            raise ConfigError(f"{name} is not set on this Locust process: the scenario's "
                              f"{kind} auth reads its secret from it",
                              hint=f"export {name}=... on every worker and the master")
        return str(value).strip()

    def headers_with_auth(self, environ: Any) -> dict[str, str]:
        """Every request header: the scenario's, and the auth from the environment."""
        from ctwa.http import Auth

        auth = Auth(self.auth.get("kind", "none"), self.auth.get("username"),
                    self.secret(environ), self.auth.get("header_name"))
        return auth.apply({"Content-Type": "application/json", **self.headers})


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file, refusing one from another ctwa format in one line."""
    from ctwa import __version__
    from ctwa.infra.textfiles import load_yaml, read_text

    data = load_yaml(read_text(path), str(path))
    if not isinstance(data, dict) or "ctwa_scenario" not in data:
        raise InputError(f"{path}: not a ctwa scenario file",
                         hint="write one with `ctwa load export --locust DIR ...`")
    if data["ctwa_scenario"] != FORMAT:
        raise InputError(f"{path}: scenario format {data['ctwa_scenario']!r} from ctwa "
                         f"{data.get('ctwa_version', '?')}; this ctwa ({__version__}) reads "
                         f"format {FORMAT}", hint="export it again with this ctwa")
    try:
        return Scenario(url=str(data["url"]), payload=dict(data["payload"]),
                        recipients=[str(r) for r in data["recipients"]],
                        wrapped=bool(data.get("wrapped", False)),
                        deadline=float(data.get("deadline", 1.0)),
                        timeout=float(data.get("timeout", 10.0)),
                        concurrency=int(data.get("concurrency", 1500)),
                        auth=dict(data.get("auth") or {"kind": "none"}),
                        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                        ctwa_version=str(data.get("ctwa_version", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: a scenario field is missing or of the wrong type ({exc})",
                         hint="export it again with `ctwa load export --locust`") from exc


LOCUSTFILE = '''"""ctwa's load scenario for Locust (`ctwa load export --locust`, ctwa {version}).

Run on one machine:   locust -f {dir}/locustfile.py --headless --processes 2 \\\\
                          -u {users} -r {users} -t 60s --ctwa-json run.json
Distributed: master   locust -f locustfile.py --headless --master --expect-workers N \\\\
                          -u {users} -r {users} -t 60s --ctwa-json run.json --ctwa-report run.html
             workers  locust -f locustfile.py --worker --master-host MASTER
Secrets come from the environment on every process ({secret_env}); none is in these files.
"""

from pathlib import Path

from ctwa.locust.user import CtwaUser


class CleverTapSender(CtwaUser):
    scenario_file = Path(__file__).with_name("scenario.yaml")
'''


def write_project(folder: Path, scenario: Scenario) -> list[Path]:
    """The locustfile and the scenario, in ``folder`` (made if needed)."""
    import yaml

    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    scenario_path = folder / FILE_NAME
    scenario_path.write_text(
        "# written by `ctwa load export --locust`; secrets come from the environment\n"
        + yaml.safe_dump(scenario.as_document(), sort_keys=False, allow_unicode=True,
                         width=1 << 20), encoding="utf-8")
    locustfile = folder / "locustfile.py"
    secret_env = SECRET_ENV.get(scenario.auth.get("kind", "none"), "no secret needed")
    locustfile.write_text(LOCUSTFILE.format(version=scenario.ctwa_version, dir=folder,
                                            users=scenario.concurrency,
                                            secret_env=secret_env), encoding="utf-8")
    return [locustfile, scenario_path]

"""A throw-away PostgreSQL cluster on 127.0.0.1, for tests and benchmarks (never a mock).

``initdb`` into a temporary directory, ``pg_ctl start`` on a free port with its unix socket in
that directory, one database; ``stop()`` stops it and deletes everything. Run as root (CI
containers), the server runs as the ``postgres`` user through ``runuser``, which owns the
directory (PostgreSQL refuses to run as root).

Debian installs the server under /usr/lib/postgresql/<version>/bin, off the PATH; that is
searched first (newest version), then ``pg_config --bindir``, then the PATH. ``CTWA_TEST_PG_BIN``
names the directory when it lives elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ctwa.infra.ports import free_port


class ClusterUnavailable(Exception):
    """No cluster could be started here; the message says why (tests skip with it)."""


def find_bin_dir() -> Path:
    override = os.environ.get("CTWA_TEST_PG_BIN")
    if override:
        return Path(override)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                    else 0)
    if debian:
        return debian[-1].parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterUnavailable("PostgreSQL's server is not installed (no initdb; Debian: "
                             "apt-get install postgresql)")


@dataclass
class Cluster:
    root: Path
    port: int
    bin_dir: Path
    as_user: str | None
    database: str = "ctwa"

    @property
    def url(self) -> str:
        return f"postgresql://ctwa@127.0.0.1:{self.port}/{self.database}"

    def _cmd(self, *args: str) -> list[str]:
        if self.as_user:
            return ["runuser", "-u", self.as_user, "--", *args]
        return list(args)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True,
                              timeout=timeout, check=False, cwd=self.root)

    def start(self, *, fsync: bool = True) -> None:
        data = self.root / "data"
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.root} -c max_connections=300 "
                   f"-c fsync={'on' if fsync else 'off'} -c shared_buffers=64MB")
        done = self.run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l",
                        str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start",
                        timeout=90)
        if done.returncode != 0:
            log = (self.root / "server.log")
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise ClusterUnavailable(f"pg_ctl start failed: {done.stderr.strip()} {tail}")

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode,
                 "-w", "-t", "30", "stop", timeout=60)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, fsync: bool = True, bin_dir: Path | None = None) -> Cluster:
    """Start one; raises :class:`ClusterUnavailable` with the reason when it cannot."""
    bin_dir = bin_dir or find_bin_dir()
    if not (bin_dir / "initdb").exists():
        raise ClusterUnavailable(f"no initdb in {bin_dir}")
    as_user = None
    root = Path(tempfile.mkdtemp(prefix="ctwa-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise ClusterUnavailable("running as root and there is no `postgres` user to run "
                                     "the server as") from None
        if not shutil.which("runuser"):
            raise ClusterUnavailable("running as root and `runuser` is missing")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o700)
        as_user = "postgres"
    cluster = Cluster(root, free_port(), bin_dir, as_user)
    try:
        done = cluster.run(str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "ctwa",
                           "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C",
                           timeout=120)
        if done.returncode != 0:
            raise ClusterUnavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        cluster.start(fsync=fsync)
        done = cluster.run(str(bin_dir / "createdb"), "-h", str(root), "-p", str(cluster.port),
                           "-U", "ctwa", cluster.database)
        if done.returncode != 0:
            raise ClusterUnavailable(f"createdb failed: {done.stderr.strip()[-500:]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        cluster.destroy()
        raise ClusterUnavailable(f"could not start PostgreSQL: {exc}") from exc
    except ClusterUnavailable:
        cluster.destroy()
        raise
    return cluster

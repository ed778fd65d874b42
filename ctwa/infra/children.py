"""Worker processes die with the run that started them and never hold its output.

After a ``kill -9`` of ``ctwa upload-users``, its checking workers used to live on, holding
the caller's stdout open, so ``$(ctwa upload-users ...)`` never returned. Each worker now asks
the kernel to kill it when its parent goes (Linux's PR_SET_PDEATHSIG; the forkserver that
forks them exits as soon as ctwa does), and points its stdout and stderr at /dev/null: a
worker reports through its queue, never by printing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


#: The modules multiprocessing's forkserver imports before forking workers: the guard makes
#: the forkserver itself die with ctwa.
FORKSERVER_PRELOAD = ["ctwa.infra.forkserver_guard"]


def die_with_parent() -> None:
    """Ask the kernel (Linux) for SIGKILL when this process's parent exits."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent is already gone
            os._exit(1)


def detach_worker() -> None:
    """Call first thing in a worker process (a pool initializer, a process target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    die_with_parent()  # the parent is the forkserver, which dies with ctwa
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)

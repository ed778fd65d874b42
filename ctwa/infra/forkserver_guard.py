"""Imported only by multiprocessing's forkserver (it is in the preload list, and nothing else
imports it): the forkserver asks the kernel to kill it when ctwa, its parent, dies. Without
this, a ``kill -9`` of ctwa left the forkserver, the workers it forked and the resource
tracker running for good, holding the caller's output open (see ``children.py``)."""

from __future__ import annotations

import sys

if sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules:
    from ctwa.infra.children import die_with_parent

    die_with_parent()

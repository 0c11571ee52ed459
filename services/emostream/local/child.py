"""Children that die with their parent: Linux's parent-death signal (``PR_SET_PDEATHSIG``).

The demo and the tests start Tansu, redis-server and services in their own sessions (a terminal's
Ctrl-C reaches only the parent, which stops them in order). A parent killed outright (SIGKILL,
the OOM killer) runs no cleanup: without this, its broker and Redis kept running and held their
ports. With it, the kernel sends each child ``signal`` as soon as the parent is gone.

The signal follows the *thread* that started the child, so it is set only for children started
from the main thread (a thread pool's thread may exit while the child should live on). Elsewhere
than Linux it is not available and children are started as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved in the parent (a child between fork and exec must not load
    libraries: another thread may have held the loader's lock at the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when this process dies; ``None``
    where that is not possible (not Linux, or not on the main thread)."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl, parent = _prctl, os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return preexec

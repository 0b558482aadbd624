"""No process of ours outlives its parent: Linux's parent-death signal (prctl PR_SET_PDEATHSIG).

Standard library only, and loadable by file path, so the `make run` supervisor
(scripts/run.py) uses it without importing the app.
"""
from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send `sig` to this process when its parent exits.

    Linux means the parent *thread*: start these processes from a thread that lives as long as
    the parent (the main thread, as honcho, RQ's WorkerPool and the tests do). Kept across exec.
    """
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's process group is the fallback
        return
    if os.getppid() != parent:  # the parent died while we asked
        os.kill(os.getpid(), sig)

"""Start a child service so that it dies with the process that started it.

``python -m crackershop.children.childexec PARENT_PID -- program args...`` (or the
frozen binary's ``crackershop _exec ...``) asks Linux for a parent-death
signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``), makes sure the parent has not
already died, and then becomes the program (``execv``): the signal survives
the exec, so when the server dies, even by SIGKILL, its embedded database
gets SIGTERM and shuts down cleanly. Twisted's
``spawnProcess`` has no hook to run code between fork and exec; this small
step in front of the program is that hook. Elsewhere than Linux it only
execs; the pid file check at the next start (:mod:`crackershop.children.child`) is
the fallback there.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Optional

PR_SET_PDEATHSIG = 1
EXIT_ORPHANED = 75


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to signal this process when its parent dies (prctl)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def command(argv: Sequence[str], parent: Optional[int] = None) -> list[str]:
    """``argv`` behind this step, for ``spawnProcess`` from process ``parent``."""
    parent = os.getpid() if parent is None else parent
    if getattr(sys, "frozen", False):
        head = [sys.executable, "_exec"]
    else:
        head = [sys.executable, "-m", "crackershop.children.childexec"]
    return [*head, str(parent), "--", *argv]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        sys.stderr.write("usage: crackershop _exec PARENT_PID -- PROGRAM [ARGS...]\n")
        return 2
    parent, program = int(args[0]), args[2:]
    set_parent_death_signal(signal.SIGTERM)
    # The parent may have died before the signal was asked for.
    if os.getppid() != parent:
        sys.stderr.write(f"crackershop: not starting {program[0]}: its server has exited\n")
        return EXIT_ORPHANED
    try:
        os.execv(program[0], program)  # noqa: S606 (the server's own child command line)
    except OSError as e:
        sys.stderr.write(f"crackershop: cannot run {program[0]}: {e.strerror}\n")
        return 127
    return 0  # pragma: no cover (execv does not return)


if __name__ == "__main__":
    sys.exit(main())

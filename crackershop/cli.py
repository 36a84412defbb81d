"""The ``crackershop`` command.

crackershop serve [options]   the server (same options as twistd crackershop);
                              --reload rolls source changes into the workers
crackershop seed              fill an empty database with a demo catalogue
crackershop config            print the effective configuration, secrets masked
crackershop status [--json]   the running server and its workers
crackershop stop              stop the running server gracefully
crackershop restart [--worker N]  rolling restart of the workers (or one)
crackershop scale N           run N workers
crackershop logs [-n N] [-f] [--worker N] [--level L] [--json]  the server's log
crackershop monit             a live view of status, until Ctrl-C
crackershop install-service [--print] [--user U] [--workdir D] [--env-file F]
                              a systemd unit running the server
crackershop twistd [args]     twistd with the crackershop plugin built in
                              (e.g. crackershop twistd -n crackershop --port 8080)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Callable, Optional

from crackershop import __version__

EXIT_USAGE = 2


def _server_options() -> Any:
    """twistd's ServerOptions offering crackershop's ServiceMaker directly, so
    it works where plugin discovery does not (a frozen binary)."""
    from twisted.application.service import ServiceMaker
    from twisted.scripts.twistd import ServerOptions  # type: ignore[attr-defined]

    maker = ServiceMaker(
        "crackershop", "crackershop.tap", "The crackershop shop API server", "crackershop"
    )

    class ShopServerOptions(ServerOptions):  # type: ignore[misc]
        def _getPlugins(self, interface: Any, package: Any = None) -> Any:  # type: ignore[override]
            return [maker]

        def postOptions(self) -> None:
            super().postOptions()
            if frozen() and not self["nodaemon"]:
                raise SystemExit(DAEMON_REFUSED)

    return ShopServerOptions


DAEMON_REFUSED = (
    "crackershop: the single-file binary cannot run as a daemon (it unpacks itself "
    "to a temporary folder that must outlive its workers); add -n (--nodaemon) "
    "and let systemd, Docker or Kubernetes keep it in the background"
)


def frozen() -> bool:
    """True in a PyInstaller build."""
    return bool(getattr(sys, "frozen", False))


def serve(argv: Sequence[str]) -> int:
    """Run twistd in this process, in the foreground, with crackershop as its
    only plugin."""
    # `--reload` is a switch here; the setting behind it takes a value.
    args = ["--reload=true" if arg == "--reload" else arg for arg in argv]
    if frozen() and any(a.startswith("--reload") for a in args):
        print("crackershop: --reload watches source files; the binary has none", file=sys.stderr)
        return EXIT_USAGE
    return _run_twistd(["--nodaemon", "--pidfile=", "crackershop", *args])


def twistd_command(argv: Sequence[str]) -> int:
    """``crackershop twistd [twistd options] crackershop [options]``: the
    ``twistd crackershop`` habit, for the binary too."""
    return _run_twistd(list(argv))


def _run_twistd(argv: list[str]) -> int:
    from twisted.application import app
    from twisted.scripts.twistd import runApp  # type: ignore[attr-defined]

    sys.argv = ["crackershop", *argv]
    app.run(runApp, _server_options())
    return 0


def exec_command(argv: Sequence[str]) -> int:
    """Private: start a child service that dies with its server (frozen builds)."""
    from crackershop.children.childexec import main as exec_main

    return exec_main(argv)


def worker_command(argv: Sequence[str]) -> int:
    """Private: a cluster worker, for builds that cannot run ``python -m``."""
    from crackershop.cluster.worker import main as worker_main

    return worker_main(argv)


def database_command(argv: Sequence[str]) -> int:
    """Private: the embedded database's own process, in the single-file build."""
    from crackershop.children.secantusd import main as database_main

    return database_main(argv)


# The server's own commands; the others operate it (crackershop.ops.commands).
COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "serve": serve,
    "twistd": twistd_command,
    "_worker": worker_command,
    "_exec": exec_command,
    "_database": database_command,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if args[0] in ("-V", "--version", "version"):
        print(f"crackershop {__version__}")
        return 0
    from crackershop.config import ConfigError

    command = COMMANDS.get(args[0])
    if command is None:
        from crackershop.ops.commands import COMMANDS as OPERATIONS

        command = OPERATIONS.get(args[0])
    if command is None:
        print(f"crackershop: unknown command {args[0]!r}; see crackershop --help", file=sys.stderr)
        return EXIT_USAGE
    try:
        return command(args[1:])
    except ConfigError as e:
        print(f"crackershop: {e}", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = quiet_broken_pipe()
    sys.exit(code)


def quiet_broken_pipe() -> int:
    """The reader of our output went away (``crackershop logs | head``): stop
    without a traceback, as other command-line tools do (128 + SIGPIPE).
    Standard output is pointed at /dev/null so the interpreter's last flush
    at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141

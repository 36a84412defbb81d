"""``crackershop status|stop|restart|scale|logs|monit|config``: operating a
running server from the command line, through its control socket and its
log files, and showing the configuration it would run with."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Callable

from crackershop.config import Config, declarations, from_argv
from crackershop.ops.seed import seed_command
from crackershop.ops.systemd import install_service_command


def _options(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"crackershop {prog}",
        description=description
        + " Server settings (e.g. --run-dir, --log-dir) may follow, or come from the environment.",
    )


def _call(config: Config, request: dict[str, Any], timeout: float = 10.0) -> Any:
    from crackershop.ops.control import call

    return call(config.run_dir, request, timeout)


def _run(body: Any) -> int:
    from crackershop.ops.control import ControlError, NoServer

    try:
        return int(body())
    except NoServer as e:
        print(f"crackershop: {e}", file=sys.stderr)
        return 1
    except ControlError as e:
        print(f"crackershop: {e}", file=sys.stderr)
        return 1


def status_command(argv: Sequence[str]) -> int:
    parser = _options("status", "Show the running server and its workers.")
    parser.add_argument("--json", action="store_true", help="print the raw status as JSON")
    args, rest = parser.parse_known_args(argv)
    config = from_argv(rest)

    def body() -> int:
        from crackershop.ops.control import render_status

        status = _call(config, {"cmd": "status"})
        if args.json:
            print(json.dumps(status, indent=2, sort_keys=True))
        else:
            print(render_status(status))
        return 0

    return _run(body)


def stop_command(argv: Sequence[str]) -> int:
    parser = _options("stop", "Stop the running server gracefully.")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for it to exit"
    )
    args, rest = parser.parse_known_args(argv)
    config = from_argv(rest)

    def body() -> int:
        from crackershop.ops.control import wait_gone

        result = _call(config, {"cmd": "stop"})
        pid = result.get("pid") if isinstance(result, dict) else None
        print(f"stopping crackershop (pid {pid})...")
        if not wait_gone(config.run_dir, pid, args.timeout):
            print(f"crackershop: still running after {args.timeout:.0f}s", file=sys.stderr)
            return 1
        print("stopped")
        return 0

    return _run(body)


def restart_command(argv: Sequence[str]) -> int:
    parser = _options("restart", "Rolling restart of every worker, or of one.")
    parser.add_argument("--worker", type=int, default=None, help="restart only this worker id")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the restart"
    )
    args, rest = parser.parse_known_args(argv)
    config = from_argv(rest)

    def body() -> int:
        result = _call(config, {"cmd": "restart", "worker": args.worker}, args.timeout)
        if result.get("message"):
            print(result["message"])
            for name in result.get("kept", []):
                print(f"{name} changed: it takes effect when the server is started again")
            return 0
        replaced = ", ".join(str(i) for i in result.get("replaced", [])) or "none"
        now = ", ".join(str(i) for i in result.get("workers", []))
        print(f"restarted: replaced workers {replaced}; now serving: workers {now}")
        return 0

    return _run(body)


def scale_command(argv: Sequence[str]) -> int:
    parser = _options("scale", "Run N workers.")
    parser.add_argument("count", type=int, help="number of workers")
    args, rest = parser.parse_known_args(argv)
    config = from_argv(rest)
    if args.count < 1:
        print("crackershop: the worker count must be at least 1", file=sys.stderr)
        return 2

    def body() -> int:
        result = _call(config, {"cmd": "scale", "count": args.count})
        print(f"scaled from {result['before']} to {result['after']} workers")
        return 0

    return _run(body)


def logs_command(argv: Sequence[str]) -> int:
    from crackershop.ops import logview

    parser = _options("logs", "Show the server's merged JSON log (LOG_DIR/crackershop.log).")
    parser.add_argument("-n", type=int, default=20, help="how many last lines (default 20)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--worker", type=int, default=None, help="only this worker id (0: master)")
    parser.add_argument(
        "--level", choices=list(logview.LEVELS), default=None, help="only this level and above"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON events")
    args, rest = parser.parse_known_args(argv)
    config = from_argv(rest)
    view = logview.LogView(config.log_dir, logview.Filter(args.worker, args.level))
    if not view.files():
        print(f"crackershop: no log file in {config.log_dir}", file=sys.stderr)
        return 1
    show = logview.raw if args.json else logview.pretty
    for event, line in view.last(max(args.n, 0)):
        print(show(event, line), flush=True)
    if args.follow:
        try:
            for event, line in view.follow():
                print(show(event, line), flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


CLEAR = "\x1b[H\x1b[2J"


def monit_command(
    argv: Sequence[str],
    sleep: Any = None,
    out: Any = None,
) -> int:
    """A live view of ``status``, redrawn every second until Ctrl-C."""
    import time

    parser = _options("monit", "A live view of the server and its workers (Ctrl-C to quit).")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    args, rest = parser.parse_known_args(argv)
    config = from_argv(rest)
    wait = sleep or time.sleep
    stream = out or sys.stdout

    def body() -> int:
        from crackershop.ops.control import render_status

        shown = 0
        try:
            while not args.count or shown < args.count:
                status = _call(config, {"cmd": "status"})
                stamp = time.strftime("%H:%M:%S")
                stream.write(f"{CLEAR}crackershop monit  {stamp}  (Ctrl-C to quit)\n\n")
                stream.write(render_status(status) + "\n")
                stream.flush()
                shown += 1
                if not args.count or shown < args.count:
                    wait(max(args.interval, 0.1))
        except KeyboardInterrupt:
            stream.write("\n")
        return 0

    return _run(body)


def config_command(argv: Sequence[str]) -> int:
    """The effective configuration, secrets masked (``--markdown``: the settings table)."""
    if "--markdown" in argv:
        from crackershop.config import markdown_table

        print(markdown_table(), end="")
        return 0
    from crackershop.config import SECRET_FILE, from_environment, parse_argv, unset_settings

    given = parse_argv(argv)
    config, _ = from_environment(given)
    unset = unset_settings(given)
    shown = dict(config.masked(unset))
    if "JWT_SECRET" in unset and not config.production:
        where = os.path.join(config.data_dir, SECRET_FILE)
        shown["JWT_SECRET"] = f"not set (development: the secret kept in {where})"
    width = max(len(decl.env) for _, decl in declarations())
    for env, value in shown.items():
        print(f"{env.ljust(width)}  {value}")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "status": status_command,
    "stop": stop_command,
    "restart": restart_command,
    "scale": scale_command,
    "logs": logs_command,
    "monit": monit_command,
    "config": config_command,
    "seed": seed_command,
    "install-service": install_service_command,
}

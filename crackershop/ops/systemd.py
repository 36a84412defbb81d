"""``crackershop install-service``: a systemd unit that runs the server in
the foreground under systemd (Restart=on-failure, SIGTERM for a graceful
stop, SIGHUP for a rolling restart)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

UNIT_PATH = Path("/etc/systemd/system/crackershop.service")


def server_command() -> list[str]:
    """How to start the server: the frozen binary itself, or this
    environment's console script (beside the running Python)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "serve"]
    script = Path(sys.executable).with_name("crackershop")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "crackershop.cli", "serve"]


def unit(
    command: Sequence[str],
    user: str,
    workdir: str,
    env_file: Optional[str],
    graceful_timeout: float,
) -> str:
    """The unit file's text. TimeoutStopSec leaves the master time to drain
    its workers (GRACEFUL_TIMEOUT) and stop its helpers before systemd kills."""
    stop_timeout = int(graceful_timeout) + 30
    lines = [
        "[Unit]",
        "Description=crackershop shop API",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={user}",
        f"WorkingDirectory={workdir}",
    ]
    if env_file:
        lines.append(f"EnvironmentFile={env_file}")
    lines += [
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={shlex.join(command)}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        f"TimeoutStopSec={stop_timeout}",
        "Restart=on-failure",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def install_service_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="crackershop install-service",
        description=f"Write a systemd unit to {UNIT_PATH} (or print it).",
    )
    parser.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    parser.add_argument("--user", default=None, help="the account it runs as (default: you)")
    parser.add_argument("--workdir", default=None, help="its working directory (default: here)")
    parser.add_argument("--env-file", default=None, help="an EnvironmentFile with its settings")
    args, rest = parser.parse_known_args(argv)
    from crackershop.config import from_argv

    config = from_argv(rest)
    user = args.user or _current_user()
    workdir = os.path.abspath(args.workdir or os.getcwd())
    env_file = os.path.abspath(args.env_file) if args.env_file else None
    text = unit(server_command() + list(rest), user, workdir, env_file, config.graceful_timeout)
    if args.print:
        print(text, end="")
        return 0
    try:
        UNIT_PATH.write_text(text)
    except OSError as e:
        print(f"crackershop: cannot write {UNIT_PATH}: {e} (try --print)", file=sys.stderr)
        return 1
    print(f"wrote {UNIT_PATH}; now: systemctl daemon-reload && systemctl enable --now crackershop")
    return 0


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name

"""Log observers: JSON lines in production, readable text in development,
filtered by LOG_LEVEL; and the server's JSON log file in LOG_DIR, written by
the one process that serves (single-process mode) or the master (cluster)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, Optional

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python.logfile import LogFile
from zope.interface import provider

LOG_NAME = "crackershop.log"

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}


def make_observer(level: str, json_lines: bool, out: Optional[IO[str]] = None) -> ILogObserver:
    stream = out if out is not None else sys.stdout
    base = jsonFileLogObserver(stream) if json_lines else textFileLogObserver(stream)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    return FilteringLogObserver(base, [predicate])


def server_observer(config: Any) -> tuple[ILogObserver, Optional[LogFile]]:
    """Standard output plus ``LOG_DIR/crackershop.log`` as JSON lines, rotated
    at LOG_MAX_SIZE keeping LOG_MAX_FILES; the file is None (and a line on
    standard error says why) when LOG_DIR cannot be written."""
    stdout = make_observer(config.log_level, config.production)
    observers = [stdout]
    logfile: Optional[LogFile] = None
    try:
        directory = Path(config.log_dir)
        directory.mkdir(parents=True, exist_ok=True)
        logfile = LogFile(
            LOG_NAME,
            str(directory),
            rotateLength=config.log_max_size,
            maxRotatedFiles=config.log_max_files,
        )
    except OSError as e:
        sys.stderr.write(f"crackershop: cannot write logs to {config.log_dir}: {e}\n")
    else:
        predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[config.log_level])
        observers.append(
            FilteringLogObserver(
                jsonFileLogObserver(logfile, recordSeparator=""),  # type: ignore[arg-type]
                [predicate],
            )
        )

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        for observer in observers:
            observer(event)

    # (marked as a new-style observer: twistd would wrap anything else as a
    # legacy one, which loses fields such as "message")
    return observe, logfile  # type: ignore[return-value]

"""Log observers: JSON lines in production, readable text in development,
filtered by LOG_LEVEL."""

from __future__ import annotations

import sys
from typing import IO, Optional

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)

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

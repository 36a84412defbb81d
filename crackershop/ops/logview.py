"""Reading the server's merged JSON log: the last lines (across rotated
files), following it, filtering by worker and level, pretty or raw."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

LOG_NAME = "crackershop.log"
LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "critical": 4}

Line = tuple[dict[str, Any], str]


def level_of(event: dict[str, Any]) -> str:
    level = event.get("log_level")
    if isinstance(level, dict):
        return str(level.get("name", "info"))
    return "info"


class Filter:
    """Which events to show: one worker's (0 is the master's own), at or above a level."""

    def __init__(self, worker: Optional[int] = None, level: Optional[str] = None) -> None:
        self.worker = worker
        self.level = LEVELS[level] if level is not None else None

    def __call__(self, event: dict[str, Any]) -> bool:
        if self.worker is not None and event.get("worker_id", 0) != self.worker:
            return False
        return self.level is None or LEVELS.get(level_of(event), 1) >= self.level


def parse(line: str) -> Optional[dict[str, Any]]:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def message(event: dict[str, Any]) -> str:
    from twisted.logger import eventFromJSON, formatEvent

    try:
        # The fields themselves keep their format specs ({ms:.1f}); the
        # flattened copies are the fallback for fields that were not JSON.
        plain = {k: v for k, v in event.items() if k != "log_flattened"}
        text = formatEvent(eventFromJSON(json.dumps(plain)))
        if text.startswith("Unable to format event"):
            text = formatEvent(eventFromJSON(json.dumps(event)))
    except Exception:
        text = str(event.get("log_format", ""))
    failure = event.get("log_failure")
    if isinstance(failure, dict) and failure.get("traceback"):
        text += "\n" + str(failure["traceback"]).rstrip()
    return text


def pretty(event: dict[str, Any], line: str) -> str:
    when = event.get("log_time")
    stamp = (
        datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(when, (int, float))
        else "-"
    )
    who = f"worker-{event['worker_id']}" if "worker_id" in event else "master"
    return f"{stamp} {who:<9} {level_of(event):<8} {message(event)}"


def raw(event: dict[str, Any], line: str) -> str:
    return line


class LogView:
    def __init__(
        self,
        directory: str,
        keep: Callable[[dict[str, Any]], bool] = lambda e: True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.sleep = sleep

    def files(self) -> list[Path]:
        """The log files, oldest first: crackershop.log.N ... .1, crackershop.log."""
        rotated = []
        for path in self.directory.glob(LOG_NAME + ".*"):
            suffix = path.name[len(LOG_NAME) + 1 :]
            if suffix.isdigit():
                rotated.append((int(suffix), path))
        current = self.directory / LOG_NAME
        ordered = [p for _, p in sorted(rotated, reverse=True)]
        return ordered + ([current] if current.exists() else [])

    def _lines(self, path: Path) -> Iterator[Line]:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                event = parse(line)
                if event is not None and self.keep(event):
                    yield event, line.rstrip("\n")

    def last(self, n: int) -> list[Line]:
        """The last ``n`` matching events, reading rotated files as needed."""
        if n == 0:
            return []
        found: deque[Line] = deque(maxlen=n)
        older: list[Line] = []
        for path in reversed(self.files()):
            found = deque(self._lines(path), maxlen=n - len(older))
            older = list(found) + older
            if len(older) >= n:
                break
        return older[-n:]

    def follow(
        self, interval: float = 0.25, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[Line]:
        """New events as they are written, across rotation."""
        path = self.directory / LOG_NAME
        handle: Any = None
        inode: Optional[int] = None
        buffer = ""
        first = True
        while not stop():
            if handle is None:
                try:
                    handle = path.open(encoding="utf-8", errors="replace")
                    inode = os.fstat(handle.fileno()).st_ino
                    if first:
                        handle.seek(0, os.SEEK_END)
                    first = False
                except FileNotFoundError:
                    first = False
                    self.sleep(interval)
                    continue
            chunk = handle.read()
            if chunk:
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    event = parse(line)
                    if event is not None and self.keep(event):
                        yield event, line
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = True
            if rotated:
                handle.close()
                handle = None
                buffer = ""
                continue
            self.sleep(interval)
        if handle is not None:
            handle.close()

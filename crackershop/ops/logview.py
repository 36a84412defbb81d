"""Reading the server's log: the JSON lines every process of the server
appends to ``LOG_DIR/crackershop.log`` (:mod:`crackershop.server.logs`),
merged in time order across processes and rotated files; the last lines,
following it, filtering by worker and level, pretty or raw.

Each process writes its lines in order, but several processes append to
one file, a turn's worth at a time, and one that has not yet noticed a
rotation still writes to the rotated file for up to a second; so lines
are sorted by ``@timestamp`` (stably: lines of the same millisecond keep
their order), reading one more file than ``-n`` needs, and ``-f`` holds a
line back for half a second before printing it, so a neighbour's later
write of an earlier event still goes before it.

Lines written by earlier versions (Twisted's event dump: ``log_time``,
``log_level``, ``worker_id``) are read too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

LOG_NAME = "crackershop.log"
LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "critical": 4}
# how long -f holds a line back for lines of other processes to catch up
HOLD = 0.5

Line = tuple[dict[str, Any], str]


def level_of(event: dict[str, Any]) -> str:
    level = event.get("log.level")
    if isinstance(level, str):
        return level
    legacy = event.get("log_level")
    if isinstance(legacy, dict):
        return str(legacy.get("name", "info"))
    return "info"


def worker_of(event: dict[str, Any]) -> int:
    worker = event.get("worker", event.get("worker_id", 0))
    return worker if isinstance(worker, int) else 0


def stamp_of(event: dict[str, Any]) -> str:
    """``@timestamp`` (ISO 8601, UTC, milliseconds: sorts as text)."""
    stamp = event.get("@timestamp")
    if isinstance(stamp, str):
        return stamp
    when = event.get("log_time")
    if isinstance(when, (int, float)):
        from crackershop.clock import iso_stamp

        return iso_stamp(when)
    return ""


class Filter:
    """Which events to show: one worker's (0 is the master's own), at or above a level."""

    def __init__(self, worker: Optional[int] = None, level: Optional[str] = None) -> None:
        self.worker = worker
        self.level = LEVELS[level] if level is not None else None

    def __call__(self, event: dict[str, Any]) -> bool:
        if self.worker is not None and worker_of(event) != self.worker:
            return False
        return self.level is None or LEVELS.get(level_of(event), 1) >= self.level


def parse(line: str) -> Optional[dict[str, Any]]:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def message(event: dict[str, Any]) -> str:
    text = event.get("message")
    if isinstance(text, str):
        trace = event.get("error.stack_trace")
        return text + ("\n" + trace.rstrip() if isinstance(trace, str) and trace else "")
    return _legacy_message(event)


def _legacy_message(event: dict[str, Any]) -> str:
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
    stamp = stamp_of(event)
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        shown = when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        shown = "-"
    worker = worker_of(event)
    who = f"worker-{worker}" if worker else "master"
    return f"{shown} {who:<9} {level_of(event):<8} {message(event)}"


def raw(event: dict[str, Any], line: str) -> str:
    return line


def in_time_order(lines: list[Line]) -> list[Line]:
    return sorted(lines, key=lambda item: stamp_of(item[0]))


class LogView:
    def __init__(
        self,
        directory: str,
        keep: Callable[[dict[str, Any]], bool] = lambda e: True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.sleep = sleep
        self.clock = clock

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

    def _lines(self, path: Path) -> list[Line]:
        found = []
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    event = parse(line)
                    if event is not None and self.keep(event):
                        found.append((event, line.rstrip("\n")))
        except FileNotFoundError:  # rotated away while we read
            pass
        return found

    def last(self, n: int) -> list[Line]:
        """The last ``n`` matching events in time order, reading rotated
        files as needed (and one more, whose last lines may be newer than
        the first of the file after it)."""
        if n <= 0:
            return []
        newest_first = list(reversed(self.files()))
        found: list[Line] = []
        for index, path in enumerate(newest_first):
            found = self._lines(path) + found
            if len(found) >= n:
                if index + 1 < len(newest_first):
                    found = self._lines(newest_first[index + 1]) + found
                break
        return in_time_order(found)[-n:]

    def follow(
        self, interval: float = 0.25, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[Line]:
        """New events as they are written, across rotation, in time order
        (each held back HOLD seconds)."""
        path = self.directory / LOG_NAME
        handle: Any = None
        inode: Optional[int] = None
        buffer = ""
        first = True
        held: list[Line] = []
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
                        held.append((event, line))
                held, ready = self._due(held)
                yield from ready
                continue
            held, ready = self._due(held)
            yield from ready
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
        yield from in_time_order(held)
        if handle is not None:
            handle.close()

    def _due(self, held: list[Line]) -> tuple[list[Line], list[Line]]:
        """(lines still held, lines old enough to print in time order)."""
        if not held:
            return held, []
        from crackershop.clock import iso_stamp

        cutoff = iso_stamp(self.clock() - HOLD)
        ordered = in_time_order(held)
        ready = [item for item in ordered if stamp_of(item[0]) <= cutoff]
        return ordered[len(ready) :], ready

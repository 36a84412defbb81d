"""Where a process's log events go: ``LOG_DIR/crackershop.log`` as ECS JSON
lines (:mod:`crackershop.server.logformat`), and standard output (the same
JSON lines in production, readable text in development), filtered by
LOG_LEVEL.

Every serving process writes its own lines (a single process; in a cluster
the master and each worker), so no event crosses a pipe. An event is
formatted once and kept until the end of the reactor's turn, when everything
the turn logged is written at once: one ``write`` per file per turn instead
of one per event. A warning or worse, and anything logged while the reactor
is not running, is written at once.

All processes append to the same file (``O_APPEND``, whole lines per
``write``). Whichever finds it past LOG_MAX_SIZE rotates it while holding a
lock on it (``flock``), keeping LOG_MAX_FILES; the others notice the new
file within a second and reopen it. Lines of different processes are
therefore in time order within each process, and ``crackershop logs``
merges them by ``@timestamp``.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Callable, Optional

from twisted.logger import ILogObserver, LogLevel
from zope.interface import implementer

from crackershop.server.logformat import EcsFormat, TextFormat

LOG_NAME = "crackershop.log"

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}
PRIORITY = {level: n for n, level in enumerate(LEVELS.values())}
# a write of at most this many bytes to a pipe is never interleaved with
# another process's (POSIX PIPE_BUF): several processes share standard output
PIPE_BUF = 4096
# how often a writer checks that the log file has not been rotated away
FOLLOW_EVERY = 1.0


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            return  # a full non-blocking pipe: the rest is dropped, not waited for
        view = view[written:]


def whole_lines(data: bytes, limit: int = PIPE_BUF) -> Iterator[bytes]:
    """``data`` in pieces of at most ``limit`` bytes, cut after a newline
    (a single longer line is one piece)."""
    while len(data) > limit:
        cut = data.rfind(b"\n", 0, limit)
        cut = data.find(b"\n", limit) if cut < 0 else cut
        if cut < 0:
            break
        yield data[: cut + 1]
        data = data[cut + 1 :]
    if data:
        yield data


class FileSink:
    """``directory/crackershop.log``, appended to by every process of the
    server, rotated at ``max_size`` keeping ``max_files``."""

    def __init__(
        self,
        directory: str,
        max_size: int,
        max_files: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(directory) / LOG_NAME
        self.max_size = max_size
        self.max_files = max_files
        self.clock = clock
        self.fd = -1
        self.inode = 0
        self.size = 0
        self._checked = 0.0
        self.reopen()

    def reopen(self) -> None:
        """Open the file again (after another process or tool rotated it)."""
        old = self.fd
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        if old >= 0:
            with contextlib.suppress(OSError):
                os.close(old)
        st = os.fstat(self.fd)
        self.inode, self.size = st.st_ino, st.st_size
        self._checked = self.clock()

    def write(self, data: bytes) -> None:
        write_all(self.fd, data)
        # appending moves the offset to the end: the file's size with every
        # process's lines, for one cheap system call per batch
        self.size = os.lseek(self.fd, 0, os.SEEK_CUR)
        if self.size >= self.max_size:
            self._rotate()
        elif self.clock() - self._checked >= FOLLOW_EVERY:
            self._follow()

    def _current(self) -> Optional[os.stat_result]:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None

    def _follow(self) -> None:
        self._checked = self.clock()
        st = self._current()
        if st is None or st.st_ino != self.inode:
            self.reopen()
        else:
            self.size = st.st_size

    def _rotate(self) -> None:
        """Rotate, unless another process already has (it holds the same lock
        while it does, so one rotation happens per full file)."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            st = self._current()
            if st is not None and st.st_ino == self.inode:
                if st.st_size < self.max_size:
                    self.size = st.st_size
                    return
                self._shift()
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.reopen()

    def _shift(self) -> None:
        """crackershop.log -> .1 -> .2 ..., dropping what is past max_files."""
        name = self.path.name
        for n in range(self.max_files, 0, -1):
            older = self.path.with_name(f"{name}.{n}")
            if not older.exists():
                continue
            if n >= self.max_files:
                older.unlink()
            else:
                older.rename(self.path.with_name(f"{name}.{n + 1}"))
        self.path.rename(self.path.with_name(f"{name}.1"))

    def flush(self) -> None:
        """Nothing is buffered here (see :class:`LogWriter`)."""

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class StreamSink:
    """Standard output (or any stream), written in whole lines of at most
    PIPE_BUF bytes so lines of processes sharing it never mix."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.fd: Optional[int]
        try:
            self.fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None

    def write(self, data: bytes) -> None:
        if self.fd is None:
            self.stream.write(data.decode("utf-8", "replace"))
            self.stream.flush()
            return
        # whatever was printed through the stream goes first
        with contextlib.suppress(Exception):
            self.stream.flush()
        for piece in whole_lines(data):
            write_all(self.fd, piece)

    def close(self) -> None:
        pass


class _Output:
    """One format and the sinks it is written to."""

    def __init__(self, format: Callable[[dict[str, Any]], str], sinks: Sequence[Any]) -> None:
        self.format = format
        self.sinks = list(sinks)
        self.pending: collections.deque[str] = collections.deque()


@implementer(ILogObserver)
class LogWriter:
    """The process's log observer: formats each event at or above ``level``
    once per output, and writes at the end of the reactor's turn."""

    def __init__(
        self,
        level: str,
        outputs: Sequence[tuple[Callable[[dict[str, Any]], str], Sequence[Any]]],
        reactor: Any = None,
    ) -> None:
        self.threshold = PRIORITY[LEVELS[level]]
        self.outputs = [_Output(format, sinks) for format, sinks in outputs]
        self.reactor = reactor
        self._scheduled = False
        self._failed: set[int] = set()

    def __call__(self, event: dict[str, Any]) -> None:
        priority = PRIORITY.get(event.get("log_level"), 1)  # type: ignore[arg-type]
        if priority < self.threshold:
            return
        for output in self.outputs:
            try:
                output.pending.append(output.format(event))
            except Exception:  # noqa: S112 (an event that cannot be formatted is dropped)
                continue
        if priority >= 2:
            self.flush()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        reactor = self.reactor
        if reactor is None or not reactor.running:
            self.flush()
            return
        self._scheduled = True
        from twisted.python.threadable import isInIOThread

        if isInIOThread():
            reactor.callLater(0, self.flush)
        else:
            reactor.callFromThread(self.flush)

    def flush(self) -> None:
        """Write everything pending."""
        self._scheduled = False
        for output in self.outputs:
            pending = output.pending
            count = len(pending)
            if not count:
                continue
            data = "".join([pending.popleft() for _ in range(count)]).encode("utf-8", "replace")
            for sink in output.sinks:
                try:
                    sink.write(data)
                except Exception as e:
                    self._sink_failed(sink, e)

    def _sink_failed(self, sink: Any, error: Exception) -> None:
        """Say once on standard error that a sink cannot be written; never raise."""
        if id(sink) in self._failed:
            return
        self._failed.add(id(sink))
        with contextlib.suppress(Exception):
            sys.stderr.write(f"crackershop: cannot write the log: {error}\n")

    def reopen(self) -> None:
        """SIGUSR1: open the log file again (after an outside tool rotated it)."""
        self.flush()
        for output in self.outputs:
            for sink in output.sinks:
                if isinstance(sink, FileSink):
                    sink.reopen()

    def close(self) -> None:
        self.flush()
        for output in self.outputs:
            for sink in output.sinks:
                sink.close()


def server_observer(
    config: Any, reactor: Any = None, worker: int = 0, out: Optional[IO[str]] = None
) -> tuple[LogWriter, Optional[FileSink]]:
    """The observer of a serving process (``worker`` 0: a single process or
    the master): LOG_DIR's file and standard output. The file is None (and
    a line on standard error says why) when LOG_DIR cannot be written."""
    stream = out if out is not None else sys.stdout
    ecs = EcsFormat(worker)
    stdout = StreamSink(stream)
    logfile: Optional[FileSink] = None
    try:
        Path(config.log_dir).mkdir(parents=True, exist_ok=True)
        logfile = FileSink(config.log_dir, config.log_max_size, config.log_max_files)
    except OSError as e:
        sys.stderr.write(f"crackershop: cannot write logs to {config.log_dir}: {e}\n")
    files = [logfile] if logfile is not None else []
    outputs: list[tuple[Callable[[dict[str, Any]], str], Sequence[Any]]]
    if config.production:
        outputs = [(ecs, [*files, stdout])]
    else:
        outputs = [(ecs, files), (TextFormat(worker), [stdout])]
    writer = LogWriter(config.log_level, outputs, reactor)
    if reactor is not None:
        reactor.addSystemEventTrigger("after", "shutdown", writer.flush)
    atexit.register(writer.flush)
    return writer, logfile

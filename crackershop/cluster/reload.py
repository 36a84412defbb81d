"""``crackershop serve --reload``: watch the package's source files and,
when they change and still import, replace the workers one at a time.

The watching is done by the ``watchdog`` library in its own thread; events
reach the reactor through ``callFromThread``. Changes are gathered for a
short moment, then the new code is checked in a separate interpreter
(compile every module, import the serving entry points); only if that
succeeds does the rolling restart begin, so a syntax error leaves the old
workers serving and the error is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger

log = Logger()
SETTLE = 0.3
CHECK = (
    "import compileall, sys\n"
    "ok = compileall.compile_dir(sys.argv[1], quiet=1)\n"
    "import crackershop.server.site, crackershop.cluster.worker\n"
    "sys.exit(0 if ok else 1)\n"
)


# watchdog's event types that mean a file's content may have changed
WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


def signature(path: Path) -> Optional[tuple[int, int]]:
    """A file's modification time and size, or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def package_dir() -> Path:
    import crackershop

    return Path(crackershop.__file__).resolve().parent


class Reloader(Service):
    """Watches the package's source while the master runs."""

    def __init__(self, reactor: Any, restart: Callable[[], Deferred[Any]], env: dict[str, str]):
        self.reactor = reactor
        self.restart = restart
        self.env = env
        self.root = package_dir()
        self.observer: Any = None
        self._pending: Any = None
        self._busy = False
        self._again = False
        self.known: dict[str, Optional[tuple[int, int]]] = {}
        # for `crackershop status`: the files changed, and what became of them
        self.changed_files: list[str] = []
        self.loaded = 0
        self.refused = 0
        self.error: Optional[str] = None

    def startService(self) -> None:
        super().startService()
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            log.error("--reload needs the watchdog package: pip install 'crackershop[dev]'")
            return
        reloader = self

        class Changed(FileSystemEventHandler):  # type: ignore[misc]
            def on_any_event(self, event: Any) -> None:
                # Reading a file is an event too (opened, closed without
                # writing): every import by a starting worker would count.
                if event.event_type not in WRITES:
                    return
                path = str(getattr(event, "dest_path", "") or event.src_path)
                if path.endswith(".py"):
                    reloader.reactor.callFromThread(reloader.changed, path)

        self.known = {str(p): signature(p) for p in self.root.rglob("*.py")}
        self.observer = Observer()
        self.observer.schedule(Changed(), str(self.root), recursive=True)
        self.observer.daemon = True
        self.observer.start()
        log.info("watching {root} for changes", root=str(self.root))

    def stopService(self) -> None:
        super().stopService()
        if self.observer is not None:
            self.observer.stop()
            self.observer = None
        if self._pending is not None and self._pending.active():
            self._pending.cancel()

    def changed(self, path: str) -> None:
        now = signature(Path(path))
        if self.known.get(path) == now:
            return  # touched, but the same file as before
        self.known[path] = now
        self.changed_files.append(path)
        log.info("changed: {path}", path=path)
        if self._pending is not None and self._pending.active():
            self._pending.reset(SETTLE)
        else:
            self._pending = self.reactor.callLater(SETTLE, self.check)

    def check(self) -> None:
        if self._busy:
            self._again = True
            return
        self._busy = True
        d = getProcessOutputAndValue(
            sys.executable, ["-c", CHECK, str(self.root)], env=self.env, reactor=self.reactor
        )
        d.addCallback(self._checked)
        d.addBoth(self._done)

    def _checked(self, result: tuple[bytes, bytes, int]) -> Any:
        out, err, code = result
        if code != 0:
            text = (out + err).decode("utf-8", "replace").strip()
            self.refused += 1
            self.error = text[-4000:]
            log.error(
                "the changed code does not load, so the workers keep the old code:\n{error}",
                error=text[-4000:],
            )
            return None
        self.loaded += 1
        self.error = None
        log.info("the changed code loads; replacing the workers one at a time")
        return self.restart()

    def _done(self, result: Any) -> None:
        self._busy = False
        if self._again:
            self._again = False
            self.check()

    def describe(self) -> dict[str, Any]:
        """The watcher for `crackershop status`: what it watches, the files
        changed so far, how many changes loaded (and rolled into the
        workers) or were refused, and the last refusal's error."""
        return {
            "watching": str(self.root) if self.observer is not None else None,
            "changed": list(self.changed_files),
            "loaded": self.loaded,
            "refused": self.refused,
            "error": self.error,
        }

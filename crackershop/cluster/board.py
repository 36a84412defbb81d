"""The accept board: each accepting worker's count of open connections, in
memory shared by the master and its workers (a memfd the workers inherit).

A worker about to accept from the shared socket looks at the board and steps
aside for a moment when it already holds more connections than its least
busy sibling, so a burst of connections spreads over the workers instead of
landing on whichever woke first. -1 marks an entry nobody accepts on.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from typing import Optional

ENTRIES = 256
SIZE = ENTRIES * 4


class AcceptBoard:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, SIZE)
        self._view = memoryview(self._map).cast("i")

    @classmethod
    def create(cls) -> AcceptBoard:
        """A fresh board (every entry -1), for the master."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("crackershop-accept-board")
        else:  # not Linux
            handle, path = tempfile.mkstemp(prefix="crackershop-board-")
            os.unlink(path)
            fd = handle
        os.ftruncate(fd, SIZE)
        board = cls(fd)
        for i in range(ENTRIES):
            board._view[i] = -1
        return board

    def set(self, worker_id: int, connections: int) -> None:
        self._view[worker_id % ENTRIES] = connections

    def clear(self, worker_id: int) -> None:
        self.set(worker_id, -1)

    def least_other(self, worker_id: int) -> Optional[int]:
        """The fewest connections any other accepting worker holds."""
        values = self._view.tolist()
        values[worker_id % ENTRIES] = -1
        live = [v for v in values if v >= 0]
        return min(live) if live else None

    def close(self) -> None:
        self._view.release()
        self._map.close()
        os.close(self.fd)

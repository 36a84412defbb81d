"""Rate limits the workers of one server share: the buckets live in memory
the master maps once and every worker inherits, so a check is a few reads
and writes of that memory under a lock, never a round trip.

The memory (:class:`BucketTable`) is a header and then ``groups`` groups
of ``ways`` slots. A slot is one client: a 63-bit fingerprint of its key
(0: never used) and one ``tat`` per policy (see :mod:`gcra`; a ``tat`` at
or before now is a full bucket, the same as none). A client's slot is in
the group its fingerprint names, so a check looks at ``ways`` slots at
most, under that group's lock: a POSIX record lock (``fcntl``) on one
byte, which the kernel releases if its holder dies, so a killed worker
never leaves a group locked.

Exact: every check of a client runs the same arithmetic as the in-process
limiter on the one copy of its buckets, one process at a time, so the
workers together admit exactly what one process would. A slot is reused
only once every bucket in it is full again, which forgets nothing. Only
when all ``ways`` slots of a group hold clients whose buckets are still
refilling does a new client take the slot nearest to full (logged): that
client's last requests are then forgotten early. With the default 4,096
groups of 16 that needs many thousands of clients mid-window at once (see
the README).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from typing import Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from crackershop.ratelimit import gcra
from crackershop.ratelimit.interfaces import MICROS, IRateLimiter, Outcome, Policy

log = Logger()

MAGIC = 0x6C725F70_6F687363  # "cshop_rl", little-endian
VERSION = 1
HEADER_WORDS = 8  # magic, version, groups, ways, width, then unused
GROUPS = 4096
WAYS = 16
WIDTH = 3  # policies a slot holds: global, writes, auth
WORD = 8
# A forgotten client is logged at most this often (seconds).
EVICTION_LOG_EVERY = 60.0


@lru_cache(maxsize=4096)
def fingerprint(key: str) -> int:
    """A stable, non-zero 63-bit number for a client key (the same in every
    process, unlike ``hash``)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 1) or 1


def _anonymous_file(name: str) -> int:
    if hasattr(os, "memfd_create"):
        return int(os.memfd_create(name))
    handle, path = tempfile.mkstemp(prefix=name + "-")  # not Linux
    os.unlink(path)
    return handle


class BucketTable:
    """The shared memory of the buckets, and its group locks."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, size)
        self.words = memoryview(self._map).cast("q")
        magic, version, groups, ways, width = self.words[:5]
        if magic != MAGIC or version != VERSION:
            self.close()
            raise ValueError("not a crackershop rate-limit table")
        self.groups = int(groups)
        self.ways = int(ways)
        self.width = int(width)
        self.stride = 1 + self.width

    @classmethod
    def create(cls, groups: int = GROUPS, ways: int = WAYS, width: int = WIDTH) -> BucketTable:
        """An empty table, for the master; its workers inherit ``fd``."""
        fd = _anonymous_file("crackershop-rate-limits")
        os.ftruncate(fd, WORD * (HEADER_WORDS + groups * ways * (1 + width)))
        os.pwrite(fd, struct.pack("<5q", MAGIC, VERSION, groups, ways, width), 0)
        return cls(fd)

    @property
    def slots(self) -> int:
        return self.groups * self.ways

    def lock(self, group: int) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, group)

    def unlock(self, group: int) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, group)

    def close(self) -> None:
        self.words.release()
        self._map.close()
        os.close(self.fd)


@implementer(IRateLimiter)
class SharedLimiter:
    """The token buckets of :mod:`gcra` in a :class:`BucketTable`. ``names``:
    the policies it keeps, one column of a slot each."""

    def __init__(
        self, clock: IReactorTime, table: BucketTable, names: Sequence[str] = ("global",)
    ) -> None:
        if len(names) > table.width:
            raise ValueError(f"a table of {table.width} columns cannot keep {len(names)} policies")
        self.clock = clock
        self.table = table
        self.columns = {name: 1 + i for i, name in enumerate(names)}
        self.evicted = 0
        self._logged_at: Optional[float] = None

    def check_now(self, key: str, policies: Sequence[Policy], cost: int) -> Outcome:
        table = self.table
        columns = [self.columns[p.name] for p in policies]
        mark = fingerprint(key)
        group = mark % table.groups
        first = HEADER_WORDS + group * table.ways * table.stride
        words = table.words
        table.lock(group)
        try:
            now = int(self.clock.seconds() * MICROS)
            slot = self._find(first, mark)
            if slot is None:
                stored: list[Optional[int]] = [None] * len(columns)
            else:
                stored = [words[slot + c] for c in columns]
            outcome, finals = gcra.check(stored, now, policies, cost)
            if outcome.allowed:
                if slot is None and any(final > now for final in finals):
                    slot = self._claim(first, mark, now)
                if slot is not None:
                    for column, final in zip(columns, finals):
                        words[slot + column] = final
        finally:
            table.unlock(group)
        return Outcome(outcome.allowed, outcome.buckets, shared=False)

    def _find(self, first: int, mark: int) -> Optional[int]:
        words = self.table.words
        stride = self.table.stride
        for slot in range(first, first + self.table.ways * stride, stride):
            if words[slot] == mark:
                return slot
        return None

    def _claim(self, first: int, mark: int, now: int) -> int:
        """A slot for a new client: one never used, else one whose buckets
        are all full again, else (the group is full) the one nearest to full."""
        words = self.table.words
        stride = self.table.stride
        nearest, nearest_due = first, None
        chosen = None
        for slot in range(first, first + self.table.ways * stride, stride):
            if words[slot] == 0:
                chosen = slot
                break
            due = max(words[slot + 1 : slot + stride])
            if due <= now:
                chosen = slot
                break
            if nearest_due is None or due < nearest_due:
                nearest, nearest_due = slot, due
        if chosen is None:
            chosen = nearest
            self._evicted(now)
        # the owner first, then its buckets: a process killed in between
        # leaves the new client with what the old one had used (emptier),
        # never an old owner's buckets reset to full (a full bucket is 0)
        words[chosen] = mark
        for column in range(1, stride):
            words[chosen + column] = 0
        return chosen

    def _evicted(self, now: int) -> None:
        self.evicted += 1
        seconds = now / MICROS
        if self._logged_at is None or seconds - self._logged_at >= EVICTION_LOG_EVERY:
            self._logged_at = seconds
            log.warn(
                "the rate-limit table has no free slot in a group; a client's "
                "buckets were forgotten before they were full ({n} so far in this "
                "process, {slots} slots)",
                n=self.evicted,
                slots=self.table.slots,
            )

    def check(self, key: str, policies: Sequence[Policy], cost: int) -> Deferred[Outcome]:
        return succeed(self.check_now(key, policies, cost))

    def close(self) -> Deferred[None]:
        return succeed(None)

"""A worker's resident memory, read without psutil."""

from __future__ import annotations

import psutil

from crackershop.metrics import resident_bytes


def test_resident_memory_is_read_as_psutil_reads_it() -> None:
    """/proc/self/statm gives the RSS psutil gives (within what a call allocates)."""
    read = resident_bytes()
    ours = read()
    theirs = psutil.Process().memory_info().rss
    assert ours is not None and abs(ours - theirs) < 2 * 2**20

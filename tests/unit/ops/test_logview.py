"""Reading the merged JSON log: last lines across rotation in time order,
filters, follow, and lines of earlier versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from crackershop.clock import iso_stamp
from crackershop.ops.logview import HOLD, Filter, LogView, pretty


def event(n: float, worker: Optional[int] = None, level: str = "info") -> dict[str, Any]:
    """A line as the server writes it (crackershop.server.logformat)."""
    e: dict[str, Any] = {
        "@timestamp": iso_stamp(1700000000 + n),
        "log.level": level,
        "message": f"line {n:g}",
        "n": n,
    }
    if worker is not None:
        e["worker"] = worker
    return e


def legacy(n: int, worker: Optional[int] = None, level: str = "info") -> dict[str, Any]:
    """A line of an earlier version (Twisted's event dump)."""
    e: dict[str, Any] = {
        "log_format": "line {n}",
        "n": n,
        "log_level": {"name": level},
        "log_time": 1700000000 + n,
    }
    if worker is not None:
        e["worker_id"] = worker
    return e


def write(path: Path, events: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def numbers(lines: list[Any]) -> list[int]:
    return [e["n"] for e, _ in lines]


def test_last_reads_back_through_rotated_files(tmp_path: Path) -> None:
    """-n takes the newest lines, continuing into .1 then .2 in order."""
    write(tmp_path / "crackershop.log.2", [event(1), event(2)])
    write(tmp_path / "crackershop.log.1", [event(3), event(4)])
    write(tmp_path / "crackershop.log", [event(5)])
    view = LogView(str(tmp_path))
    assert numbers(view.last(2)) == [4, 5]
    assert numbers(view.last(4)) == [2, 3, 4, 5]
    assert numbers(view.last(50)) == [1, 2, 3, 4, 5]
    assert view.last(0) == []


def test_filters_by_worker_and_level(tmp_path: Path) -> None:
    """--worker keeps that worker's lines (0 the master's); --level drops lower levels."""
    write(
        tmp_path / "crackershop.log",
        [event(1, 1), event(2, 2), event(3), event(4, 1, "error"), event(5, 2, "warn")],
    )
    assert numbers(LogView(str(tmp_path), Filter(worker=1)).last(10)) == [1, 4]
    assert numbers(LogView(str(tmp_path), Filter(worker=0)).last(10)) == [3]
    assert numbers(LogView(str(tmp_path), Filter(level="warn")).last(10)) == [4, 5]
    assert numbers(LogView(str(tmp_path), Filter(worker=2, level="warn")).last(10)) == [5]


def test_lines_of_several_processes_are_merged_in_time_order(tmp_path: Path) -> None:
    """Workers append a turn's lines at a time, and a worker that has not yet
    seen a rotation writes its last lines to the rotated file: -n still gives
    the newest lines in time order."""
    write(tmp_path / "crackershop.log.1", [event(1, 1), event(3, 1), event(2, 2), event(6, 2)])
    write(tmp_path / "crackershop.log", [event(4, 1), event(5, 1), event(7, 2), event(8, 1)])
    view = LogView(str(tmp_path))
    assert numbers(view.last(5)) == [4, 5, 6, 7, 8]
    assert numbers(view.last(50)) == [1, 2, 3, 4, 5, 6, 7, 8]
    same = [event(9, 2), event(9, 1)]  # the same millisecond keeps the file's order
    write(tmp_path / "crackershop.log", same)
    assert [e["worker"] for e, _ in view.last(2)] == [2, 1]


def test_lines_of_earlier_versions_are_read(tmp_path: Path) -> None:
    """Twisted's event dump, in files rotated before an upgrade, still reads and filters."""
    write(tmp_path / "crackershop.log.1", [legacy(1, 1), legacy(2, 2, "warn")])
    write(tmp_path / "crackershop.log", [event(3, 2)])
    assert numbers(LogView(str(tmp_path)).last(5)) == [1, 2, 3]
    assert numbers(LogView(str(tmp_path), Filter(worker=2)).last(5)) == [2, 3]
    line = pretty(legacy(2, 2, "warn"), "")
    assert "worker-2" in line and "warn" in line and line.endswith("line 2")


def test_garbled_lines_are_skipped(tmp_path: Path) -> None:
    """A torn or non-JSON line does not stop the reader."""
    (tmp_path / "crackershop.log").write_text(json.dumps(event(1)) + "\nnot json\n[1]\n")
    assert numbers(LogView(str(tmp_path)).last(5)) == [1]


def test_pretty_names_time_source_level_and_message() -> None:
    """A pretty line shows the worker, level and the formatted message."""
    line = pretty(event(7, 2, "warn"), "")
    assert "worker-2" in line and "warn" in line and line.endswith("line 7")
    assert "master" in pretty(event(7), "")


def test_follow_prints_new_lines_and_survives_rotation(tmp_path: Path) -> None:
    """-f starts at the end, yields appended lines, and continues in a rotated-in file."""
    path = tmp_path / "crackershop.log"
    write(path, [event(1)])
    ticks: list[int] = []

    def sleep(_: float) -> None:
        ticks.append(1)
        if len(ticks) == 1:
            with path.open("a") as f:
                f.write(json.dumps(event(2)) + "\n")
        elif len(ticks) == 2:
            path.rename(tmp_path / "crackershop.log.1")
            write(path, [event(3)])

    view = LogView(str(tmp_path), sleep=sleep)
    got = numbers(list(view.follow(interval=0, stop=lambda: len(ticks) >= 4)))
    assert got == [2, 3]


def test_follow_holds_a_line_back_for_earlier_lines_of_other_workers(tmp_path: Path) -> None:
    """A line is printed once it is HOLD old, after any earlier line another
    worker appends in the meantime."""
    path = tmp_path / "crackershop.log"
    write(path, [])
    now = [1700000010.0]
    ticks: list[int] = []
    printed: list[float] = []

    def sleep(_: float) -> None:
        ticks.append(1)
        if len(ticks) == 1:
            with path.open("a") as f:
                f.write(json.dumps(event(10, 1)) + "\n")
        elif len(ticks) == 2:
            with path.open("a") as f:  # worker 2's turn, written a moment later
                f.write(json.dumps(event(9.9, 2)) + "\n")
        now[0] += 0.1

    view = LogView(str(tmp_path), sleep=sleep, clock=lambda: now[0])
    for e, _ in view.follow(interval=0, stop=lambda: len(ticks) >= 8):
        printed.append(e["n"])
        assert now[0] - (1700000000 + e["n"]) > HOLD - 0.01  # printed once HOLD old
    assert printed == [9.9, 10]

"""The master's own pieces: worker count, the log file it writes for the cluster."""

from __future__ import annotations

import json
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel

from crackershop.cluster.master import Master, worker_count
from crackershop.config import load


def test_auto_means_one_worker_per_usable_core() -> None:
    """--workers=auto resolves to at least one worker; N stays N."""
    auto, _ = load({"workers": "auto"}, {})
    assert worker_count(auto) >= 1
    three, _ = load({"workers": "3"}, {})
    assert worker_count(three) == 3


def test_log_file_is_json_lines_rotated_by_size(tmp_path: Path) -> None:
    """Events become whole JSON lines; past LOG_MAX_SIZE the file rotates, keeping LOG_MAX_FILES."""
    config, _ = load({"log_dir": str(tmp_path), "log_max_size": "2kb", "log_max_files": "2"}, {})
    master = Master(MemoryReactorClock(), config, lambda message: None)
    observe = master.observer()
    for i in range(200):
        observe(
            {
                "log_format": "event {i}",
                "i": i,
                "log_level": LogLevel.info,
                "log_namespace": "test",
                "log_time": 1.0,
                "worker_id": 1,
                "worker_pid": 42,
            }
        )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["crackershop.log", "crackershop.log.1", "crackershop.log.2"]
    for name in names:
        for line in (tmp_path / name).read_text().splitlines():
            event = json.loads(line)
            assert event["worker_id"] == 1 and event["worker_pid"] == 42
    last = (tmp_path / "crackershop.log").read_text().splitlines()[-1]
    assert json.loads(last)["i"] == 199
    master.board.close()

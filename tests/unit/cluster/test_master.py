"""The master's own pieces: worker count, the log file it writes for the cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

from twisted.logger import LogLevel

from crackershop.config import load, worker_count
from crackershop.server.logs import server_observer


def test_auto_means_one_worker_per_usable_core() -> None:
    """--workers=auto is one worker per core this process may use; N stays N;
    a single process, or clustering off, is one."""
    auto, _ = load({"workers": "auto"}, {})
    # (PyPy 3.9's os has no sched_getaffinity: then every core counts)
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert worker_count(auto) == (len(usable) if usable is not None else os.cpu_count())
    three, _ = load({"workers": "3"}, {})
    assert worker_count(three) == 3
    off, _ = load({"workers": "3", "enable_clustering": "false"}, {})
    assert worker_count(off) == 1
    assert worker_count(load({"workers": "0"}, {})[0]) == 1
    assert worker_count(load({"workers": "0", "reload": "true"}, {})[0]) == 1


def test_log_file_is_json_lines_rotated_by_size(tmp_path: Path) -> None:
    """Events become whole ECS JSON lines; past LOG_MAX_SIZE the file rotates, keeping
    LOG_MAX_FILES."""
    config, _ = load({"log_dir": str(tmp_path), "log_max_size": "2kb", "log_max_files": "2"}, {})
    observe, logfile = server_observer(config, worker=1)
    for i in range(200):
        observe(
            {
                "log_format": "event {i}",
                "i": i,
                "log_level": LogLevel.info,
                "log_namespace": "test",
                "log_time": 1.0,
            }
        )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["crackershop.log", "crackershop.log.1", "crackershop.log.2"]
    for name in names:
        for line in (tmp_path / name).read_text().splitlines():
            event = json.loads(line)
            assert event["worker"] == 1 and event["process.pid"] == os.getpid()
            assert event["@timestamp"] == "1970-01-01T00:00:01.000Z"
            assert event["log.level"] == "info" and event["log.logger"] == "test"
    last = (tmp_path / "crackershop.log").read_text().splitlines()[-1]
    assert json.loads(last)["message"] == "event 199"
    assert logfile is not None
    observe.close()

"""The supervisor's decisions, driven with a fake process spawner and a Clock."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest
from twisted.internet import error
from twisted.internet.task import Clock

from crackershop.cluster.link import FROM_MASTER_FD, TO_MASTER_FD, encode
from crackershop.cluster.supervisor import (
    DRAINING,
    READY,
    STARTING,
    Supervisor,
    Worker,
    WorkerPolicy,
    WorkerProcess,
)

MB = 1024 * 1024


class FakeProcess:
    """What spawnProcess returns, recording what the master does to it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.ended = False

    def signalProcess(self, name: str) -> None:
        if self.ended:
            raise error.ProcessExitedAlready()
        self.signals.append(name)

    def writeToChild(self, fd: int, data: bytes) -> None:
        assert fd == FROM_MASTER_FD
        self.sent.append(json.loads(data))


class Cluster:
    def __init__(self, count: int = 2, **policy: Any) -> None:
        self.clock = Clock()
        self.protocols: dict[int, WorkerProcess] = {}
        self.processes: dict[int, FakeProcess] = {}
        self.memory: dict[int, int] = {}
        self.fatal: list[str] = []
        self.supervisor = Supervisor(
            self.clock,
            self.spawn,
            count,
            WorkerPolicy(**policy),
            self.memory.get,
            self.fatal.append,
        )

    def spawn(self, worker: Worker, protocol: WorkerProcess) -> FakeProcess:
        process = FakeProcess(1000 + worker.id)
        self.protocols[worker.id] = protocol
        self.processes[worker.id] = process
        return process

    @property
    def spawned(self) -> list[int]:
        return sorted(self.protocols)

    def say(self, worker_id: int, message: dict[str, Any]) -> None:
        self.protocols[worker_id].childDataReceived(TO_MASTER_FD, encode(message))

    def ready(self, *worker_ids: int) -> None:
        for worker_id in worker_ids:
            self.say(worker_id, {"t": "ready"})

    def exit(
        self, worker_id: int, code: Optional[int] = None, signal: Optional[int] = None
    ) -> None:
        self.processes[worker_id].ended = True
        self.supervisor.exited(self.protocols[worker_id].worker, code, signal)

    def worker(self, worker_id: int) -> Worker:
        return self.protocols[worker_id].worker

    def serving(self) -> list[int]:
        return sorted(s.worker.id for s in self.supervisor.slots if s.worker is not None)

    def advance(self, seconds: float, step: float = 0.5) -> None:
        for _ in range(int(seconds / step)):
            self.clock.advance(step)

    def drained(self, worker_id: int) -> bool:
        return {"t": "drain", "grace": self.supervisor.policy.graceful_timeout} in self.processes[
            worker_id
        ].sent


def started(count: int = 2, **policy: Any) -> Cluster:
    cluster = Cluster(count, **policy)
    cluster.supervisor.start()
    cluster.ready(*cluster.spawned)
    return cluster


def test_start_spawns_count_workers_and_waits_for_ready() -> None:
    """start() spawns N workers and fires only when all report ready."""
    cluster = Cluster(3)
    done = cluster.supervisor.start()
    assert cluster.spawned == [1, 2, 3]
    fired: list[Any] = []
    done.addCallback(fired.append)
    cluster.ready(1, 2)
    assert not fired
    cluster.ready(3)
    assert fired


def test_a_crash_after_a_long_life_is_replaced_at_once() -> None:
    """A worker that dies after min_uptime is replaced immediately."""
    cluster = started(2, min_uptime=5)
    cluster.advance(10)
    cluster.exit(1, signal=9)
    assert cluster.spawned == [1, 2, 3]
    assert cluster.serving() == [2, 3]


def test_quick_crashes_back_off_exponentially_then_give_up() -> None:
    """Repeated quick crashes wait 0, 0.5, 1, 2 s, then the slot is abandoned."""
    cluster = started(2, min_uptime=5, backoff_base=0.5, max_quick_crashes=5)
    victim = 1
    waits = []
    for _ in range(4):
        before = len(cluster.spawned)
        cluster.exit(victim, code=1)
        waited = 0.0
        while len(cluster.spawned) == before:
            cluster.clock.advance(0.25)
            waited += 0.25
            assert waited < 60
        waits.append(waited if waited > 0.25 else 0.0)
        victim = cluster.spawned[-1]
        cluster.ready(victim)
    # the first crash restarts in the same tick (loop above counts one step)
    assert waits == [0.0, 0.5, 1.0, 2.0]
    cluster.exit(victim, code=1)
    cluster.advance(120)
    assert len(cluster.supervisor.slots) == 1
    assert cluster.serving() == [2]
    assert not cluster.fatal


def test_backoff_is_capped() -> None:
    """The back-off never exceeds backoff_cap."""
    policy = WorkerPolicy(backoff_base=0.5, backoff_cap=3)
    assert [policy.backoff(n) for n in range(1, 7)] == [0, 0.5, 1, 2, 3, 3]


def test_a_worker_that_cannot_boot_stops_the_master() -> None:
    """Before any worker was ready, a worker exiting reports its reason as fatal."""
    cluster = Cluster(2)
    cluster.supervisor.start()
    cluster.say(1, {"t": "fatal", "message": "the database at mongodb://x does not answer"})
    cluster.exit(1, code=3)
    assert cluster.fatal == ["the database at mongodb://x does not answer"]
    assert cluster.spawned == [1, 2]


def test_all_slots_giving_up_is_fatal() -> None:
    """When every slot has given up, the master stops."""
    cluster = started(1, max_quick_crashes=2)
    cluster.exit(1, code=1)
    cluster.ready(2)
    cluster.exit(2, code=1)
    assert cluster.fatal and "every worker crashed" in cluster.fatal[0]


def test_silent_worker_is_killed_and_replaced() -> None:
    """A ready worker without heartbeat for heartbeat_timeout gets SIGKILL, then a replacement."""
    cluster = started(2, heartbeat_timeout=10, check_interval=1, min_uptime=5)
    for _ in range(12):
        cluster.clock.advance(1)
        cluster.say(2, {"t": "hb", "stats": {"served": 1}})
    assert cluster.processes[1].signals == ["KILL"]
    assert cluster.processes[2].signals == []
    cluster.exit(1, signal=9)
    assert cluster.spawned == [1, 2, 3]


def test_worker_that_never_gets_ready_is_killed() -> None:
    """A worker still starting after boot_timeout is killed."""
    cluster = Cluster(1, boot_timeout=30)
    cluster.supervisor.start()
    cluster.advance(31, step=1)
    assert cluster.processes[1].signals == ["KILL"]


def test_memory_recycle_starts_replacement_before_draining_old() -> None:
    """Over the limit: a replacement is spawned; the old one drains only once it is ready."""
    cluster = started(2, max_memory=100 * MB, memory_interval=2)
    cluster.memory[1001] = 150 * MB
    cluster.memory[1002] = 50 * MB
    cluster.clock.advance(2)
    assert cluster.spawned == [1, 2, 3]
    assert not cluster.drained(1)
    assert cluster.worker(1).state == READY
    cluster.clock.advance(2)  # no second replacement while one is pending
    assert cluster.spawned == [1, 2, 3]
    cluster.ready(3)
    assert cluster.drained(1)
    assert cluster.worker(1).state == DRAINING
    assert cluster.serving() == [2, 3]
    cluster.exit(1, code=0)
    assert cluster.spawned == [1, 2, 3]  # a drained worker is not replaced


def test_draining_worker_is_killed_at_the_grace_deadline() -> None:
    """A worker still running graceful_timeout after drain gets SIGKILL."""
    cluster = started(1, graceful_timeout=5)
    cluster.supervisor.drain(cluster.worker(1))
    cluster.clock.advance(4.9)
    assert cluster.processes[1].signals == []
    cluster.clock.advance(0.2)
    assert cluster.processes[1].signals == ["KILL"]


def test_rolling_restart_replaces_one_slot_at_a_time() -> None:
    """SIGHUP: new worker, wait for ready, drain old; then the next slot."""
    cluster = started(2)
    done: list[Any] = []
    cluster.supervisor.restart().addCallback(done.append)
    assert cluster.spawned == [1, 2, 3]
    assert not cluster.drained(1)
    cluster.ready(3)
    assert cluster.drained(1)
    assert cluster.spawned == [1, 2, 3, 4]
    assert not cluster.drained(2)
    assert not done
    cluster.ready(4)
    assert cluster.drained(2)
    assert done
    assert cluster.serving() == [3, 4]


def test_rolling_restart_stops_when_a_replacement_fails() -> None:
    """A replacement that dies before ready leaves the old worker serving."""
    cluster = started(2)
    cluster.supervisor.restart()
    cluster.exit(3, code=3)
    assert not cluster.drained(1)
    assert cluster.serving() == [1, 2]
    assert cluster.spawned == [1, 2, 3]


def test_restart_one_worker() -> None:
    """restart(worker_id) replaces only that worker."""
    cluster = started(2)
    cluster.supervisor.restart(2)
    cluster.ready(3)
    assert cluster.drained(2)
    assert not cluster.drained(1)
    with pytest.raises(KeyError):
        cluster.supervisor.restart(99)


def test_scale_up_and_down() -> None:
    """scale adds slots with new workers and retires the highest slots by draining."""
    cluster = started(2)
    cluster.supervisor.add_worker()
    assert cluster.spawned == [1, 2, 3]
    cluster.ready(3)
    cluster.supervisor.scale(1)
    assert cluster.drained(2) and cluster.drained(3)
    assert not cluster.drained(1)
    cluster.exit(2, code=0)
    cluster.exit(3, code=0)
    assert cluster.spawned == [1, 2, 3]
    cluster.supervisor.remove_worker()  # never below one
    assert not cluster.drained(1)


def test_stop_drains_everyone_and_fires_when_all_exited() -> None:
    """stop() drains every worker, kills stragglers at the deadline, fires when all are gone."""
    cluster = started(2, graceful_timeout=5)
    done: list[Any] = []
    cluster.supervisor.stop().addCallback(done.append)
    assert cluster.drained(1) and cluster.drained(2)
    cluster.exit(1, code=0)
    assert not done
    cluster.clock.advance(5)
    assert cluster.processes[2].signals == ["KILL"]
    cluster.exit(2, signal=9)
    assert done
    assert cluster.spawned == [1, 2]


def test_garbled_control_lines_are_ignored() -> None:
    """A line that is not JSON does not break the channel."""
    cluster = Cluster(1)
    cluster.supervisor.start()
    cluster.protocols[1].childDataReceived(TO_MASTER_FD, b"not json\n")
    assert cluster.worker(1).state == STARTING
    cluster.ready(1)
    assert cluster.worker(1).state == READY


def _row(cluster: Cluster, slot: int) -> dict[str, Any]:
    return next(r for r in cluster.supervisor.status() if r["slot"] == slot)


def test_status_counts_restarts_and_names_the_reason() -> None:
    """status() gives each slot's restarts and last reason: crash, heartbeat, rolling restart."""
    cluster = started(2, min_uptime=5, heartbeat_timeout=10, check_interval=1)
    assert _row(cluster, 1)["restarts"] == 0 and _row(cluster, 1)["reason"] is None
    cluster.advance(10)
    cluster.exit(1, signal=9)
    assert (_row(cluster, 1)["restarts"], _row(cluster, 1)["reason"]) == (1, "crash")
    assert _row(cluster, 1)["id"] == 3 and _row(cluster, 1)["state"] == "starting"
    cluster.ready(3)
    for _ in range(12):
        cluster.clock.advance(1)
        cluster.say(3, {"t": "hb", "stats": {"served": 7, "connections": 1}})
    cluster.exit(2, signal=9)
    assert _row(cluster, 2)["reason"] == "heartbeat"
    assert _row(cluster, 1)["served"] == 7
    cluster.supervisor.restart(3)
    assert (_row(cluster, 1)["restarts"], _row(cluster, 1)["reason"]) == (2, "rolling restart")


def test_status_shows_a_backing_off_slot() -> None:
    """A slot waiting out its back-off has a backing-off row without pid."""
    cluster = started(1, min_uptime=5, backoff_base=1)
    cluster.exit(1, signal=9)  # quick crash 1: replaced at once
    cluster.exit(2, signal=9)  # quick crash 2: waits
    rows = cluster.supervisor.status()
    assert [(r["state"], r["pid"], r["restarts"]) for r in rows] == [("backing-off", None, 2)]

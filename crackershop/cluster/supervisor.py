"""The master's decisions about its workers: spawn, replace, restart with
back-off, give up, watch heartbeats and memory, recycle, roll, scale, stop.

Everything that touches processes or time is injected (a ``spawn`` function,
a clock, an RSS sampler), so the policy is unit-tested without processes.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Sequence
from typing import Any, Callable, Optional

import attr
from twisted.internet import error
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from crackershop.cluster.link import FROM_MASTER_FD, TO_MASTER_FD, LineBuffer, encode

log = Logger()

STARTING, READY, DRAINING, EXITED = "starting", "ready", "draining", "exited"


@attr.s(auto_attribs=True, frozen=True)
class WorkerPolicy:
    graceful_timeout: float = 5.0
    check_interval: float = 1.0
    heartbeat_timeout: float = 10.0
    boot_timeout: float = 60.0
    # A worker that dies within min_uptime of starting crashed "quickly".
    min_uptime: float = 5.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_quick_crashes: int = 5
    max_memory: int = 500 * 1024 * 1024
    memory_interval: float = 2.0

    def backoff(self, quick_crashes: int) -> float:
        """The first crash is replaced at once; repeats wait twice as long each time."""
        if quick_crashes <= 1:
            return 0.0
        return float(min(self.backoff_base * 2 ** (quick_crashes - 2), self.backoff_cap))


class BootFailed(Exception):
    """A worker exited before it was ready."""


class Slot:
    """A place for one worker; its worker is replaced, the slot stays."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.worker: Optional[Worker] = None
        self.pending: Optional[Worker] = None  # a replacement not ready yet
        self.quick_crashes = 0
        self.restart: Any = None
        # How often its worker was replaced, and why the last time
        # (crash, memory, heartbeat, rolling restart).
        self.restarts = 0
        self.reason: Optional[str] = None

    def replaced(self, reason: str) -> None:
        self.restarts += 1
        self.reason = reason


class Worker:
    def __init__(self, ident: int, slot: Slot, started: float) -> None:
        self.id = ident
        self.slot = slot
        self.state = STARTING
        self.started = started
        self.last_seen = started
        self.transport = None
        self.fatal: Optional[str] = None
        # Why the master killed it (heartbeat), if it did.
        self.killed_for: Optional[str] = None
        self.stats: dict[str, Any] = {}
        self.killer: Any = None
        self.killed = False
        self.exit_code: Optional[int] = None
        self.exit_signal: Optional[int] = None
        self._ready: list[Deferred[Worker]] = []
        self._exited: list[Deferred[Worker]] = []

    @property
    def transport(self) -> Any:
        return self._transport

    @transport.setter
    def transport(self, transport: Any) -> None:
        self._transport = transport
        self.pid: Optional[int] = getattr(transport, "pid", None)

    @property
    def alive(self) -> bool:
        return self.state != EXITED

    def when_ready(self) -> Deferred[Worker]:
        if self.state in (READY, DRAINING):
            return succeed(self)
        d: Deferred[Worker] = Deferred()
        if self.state == EXITED:
            d.errback(BootFailed(self.fatal or f"worker {self.id} exited before it was ready"))
        else:
            self._ready.append(d)
        return d

    def when_exited(self) -> Deferred[Worker]:
        if self.state == EXITED:
            return succeed(self)
        d: Deferred[Worker] = Deferred()
        self._exited.append(d)
        return d

    def describe_exit(self) -> str:
        if self.exit_signal is not None:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(self.exit_signal).name}"
            return f"killed by signal {self.exit_signal}"
        return f"exit status {self.exit_code}"


class WorkerProcess(ProcessProtocol):
    """The master's end of one worker's process and control channel."""

    def __init__(self, supervisor: Supervisor, worker: Worker) -> None:
        self.supervisor = supervisor
        self.worker = worker
        self.lines = LineBuffer(lambda message: supervisor.received(worker, message))

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == TO_MASTER_FD:
            self.lines.feed(data)

    def processEnded(self, reason: Failure) -> None:
        value: Any = reason.value
        self.supervisor.exited(
            self.worker, getattr(value, "exitCode", None), getattr(value, "signal", None)
        )


Spawn = Callable[[Worker, ProcessProtocol], Any]
SampleRss = Callable[[int], Optional[int]]


class Supervisor:
    """Keeps ``count`` workers serving.

    ``spawn(worker, protocol)`` starts a worker process and returns its
    process transport; ``rss(pid)`` gives its resident memory in bytes (or
    None); ``on_fatal(message)`` is called when the cluster cannot run.
    """

    def __init__(
        self,
        clock: IReactorTime,
        spawn: Spawn,
        count: int,
        policy: WorkerPolicy,
        rss: SampleRss,
        on_fatal: Callable[[str], None],
        not_accepting: Callable[[int], None] = lambda worker_id: None,
    ) -> None:
        self.clock = clock
        self.spawn = spawn
        self.count = count
        self.policy = policy
        self.rss = rss
        self.on_fatal = on_fatal
        # Told when a worker id stops taking connections (the accept board).
        self.not_accepting = not_accepting
        self.slots: list[Slot] = []
        self.workers: dict[int, Worker] = {}  # every live worker, by id
        self.ever_ready = False
        self.stopping = False
        self.failed = False
        self._next_id = 1
        self._rolling: Optional[Deferred[None]] = None
        self._checks: list[LoopingCall] = []
        # Observers for metrics (the master wires them; decisions never depend on them).
        self.on_replaced: Callable[[str], None] = lambda reason: None
        self.on_exit: Callable[[int], None] = lambda pid: None
        self.on_rss: Callable[[int, int], None] = lambda worker_id, rss: None

    # -- lifecycle

    def start(self) -> Deferred[None]:
        """Spawn the workers; fires once all of them are ready."""
        for _ in range(self.count):
            self._add_slot()
        for check, interval in (
            (self._check_heartbeats, self.policy.check_interval),
            (self._check_memory, self.policy.memory_interval),
        ):
            loop = LoopingCall(check)
            loop.clock = self.clock
            loop.start(interval, now=False)
            self._checks.append(loop)
        waiting = [s.worker.when_ready() for s in self.slots if s.worker is not None]
        d: Deferred[None] = DeferredList(
            waiting, fireOnOneErrback=True, consumeErrors=True
        ).addCallback(lambda _: log.info("all {n} workers are ready", n=len(waiting)))
        d.addErrback(lambda _: None)
        return d

    def stop(self) -> Deferred[None]:
        """Drain every worker; kill what is still running after the grace
        period. Fires when every worker has exited."""
        self.stopping = True
        for loop in self._checks:
            if loop.running:
                loop.stop()
        for slot in self.slots:
            if slot.restart is not None and slot.restart.active():
                slot.restart.cancel()
        live = list(self.workers.values())
        for worker in live:
            self.drain(worker)
        done: Deferred[None] = DeferredList([w.when_exited() for w in live]).addCallback(
            lambda _: None
        )
        return done

    # -- operations (signals and the control socket)

    def restart(self, worker_id: Optional[int] = None) -> Deferred[None]:
        """Rolling restart: one slot at a time, start the new worker, wait
        until it is ready, then drain the old one."""
        if worker_id is not None:
            worker = self.workers.get(worker_id)
            if worker is None or worker.slot not in self.slots:
                raise KeyError(worker_id)
            slots = [worker.slot]
        else:
            slots = list(self.slots)
        if self._rolling is not None:
            log.info("a rolling restart is already running")
            return self._rolling
        log.info("rolling restart of {n} workers", n=len(slots))
        self._rolling = Deferred.fromCoroutine(self._roll(slots))

        def done(result: Any) -> Any:
            self._rolling = None
            return result

        self._rolling.addBoth(done)
        return self._rolling

    async def _roll(self, slots: Sequence[Slot]) -> None:
        for slot in slots:
            if self.stopping:
                return
            if slot not in self.slots:
                continue
            try:
                self._replaced(slot, "rolling restart")
                await self.replace(slot)
            except BootFailed as e:
                log.error("rolling restart stopped: {reason}", reason=str(e))
                return
        log.info("rolling restart done")

    def replace(self, slot: Slot) -> Deferred[Worker]:
        """Start a replacement for the slot's worker; the old one is drained
        once the replacement is ready."""
        if slot.pending is not None:
            return slot.pending.when_ready()
        if slot.worker is None or not slot.worker.alive:
            return self._start_worker(slot).when_ready()
        slot.pending = self._new_worker(slot)
        return slot.pending.when_ready()

    def scale(self, count: int) -> None:
        """Add or retire workers until there are ``count``."""
        count = max(1, count)
        self.count = count
        while len(self.slots) < count:
            self._add_slot()
        while len(self.slots) > count:
            slot = self.slots.pop()
            log.info("retiring worker slot {slot}", slot=slot.number)
            if slot.restart is not None and slot.restart.active():
                slot.restart.cancel()
            for worker in (slot.pending, slot.worker):
                if worker is not None and worker.alive:
                    self.drain(worker)

    def add_worker(self) -> None:
        self.scale(len(self.slots) + 1)

    def remove_worker(self) -> None:
        self.scale(len(self.slots) - 1)

    def status(self) -> list[dict[str, Any]]:
        """Every live worker, and every slot waiting to restart its worker
        (backing-off) or given up on (stopped)."""
        now = self.clock.seconds()
        rows = [
            {
                "id": w.id,
                "slot": w.slot.number,
                "pid": w.pid,
                "state": w.state,
                "uptime": now - w.started,
                "restarts": w.slot.restarts,
                "reason": w.slot.reason,
                **w.stats,
            }
            for w in self.workers.values()
        ]
        for slot in self.slots:
            if slot.worker is None and slot.pending is None:
                waiting = slot.restart is not None and slot.restart.active()
                rows.append(
                    {
                        "id": None,
                        "slot": slot.number,
                        "pid": None,
                        "state": "backing-off" if waiting else "stopped",
                        "uptime": None,
                        "restarts": slot.restarts,
                        "reason": slot.reason,
                    }
                )
        return sorted(rows, key=lambda r: (r["slot"], r["id"] or 0))

    # -- workers

    def _add_slot(self) -> Slot:
        taken = {s.number for s in self.slots}
        number = next(n for n in range(1, len(taken) + 2) if n not in taken)
        slot = Slot(number)
        self.slots.append(slot)
        self.slots.sort(key=lambda s: s.number)
        self._start_worker(slot)
        return slot

    def _start_worker(self, slot: Slot) -> Worker:
        slot.restart = None
        slot.worker = self._new_worker(slot)
        return slot.worker

    def _new_worker(self, slot: Slot) -> Worker:
        worker = Worker(self._next_id, slot, self.clock.seconds())
        self._next_id += 1
        self.not_accepting(worker.id)
        self.workers[worker.id] = worker
        worker.transport = self.spawn(worker, WorkerProcess(self, worker))
        log.info(
            "started worker {id} (pid {pid}) in slot {slot}",
            id=worker.id,
            pid=worker.pid,
            slot=slot.number,
        )
        return worker

    def drain(self, worker: Worker) -> None:
        """Tell a worker to stop accepting, finish and exit; kill it if it
        has not exited when the grace period ends."""
        if not worker.alive or worker.killer is not None:
            return
        worker.state = DRAINING
        self.not_accepting(worker.id)
        self._send(worker, {"t": "drain", "grace": self.policy.graceful_timeout})
        worker.killer = self.clock.callLater(self.policy.graceful_timeout, self._deadline, worker)

    def _deadline(self, worker: Worker) -> None:
        worker.killer = None
        if worker.alive:
            log.warn(
                "worker {id} (pid {pid}) did not finish within {grace}s; killing it",
                id=worker.id,
                pid=worker.pid,
                grace=self.policy.graceful_timeout,
            )
            self._kill(worker)

    def _kill(self, worker: Worker) -> None:
        if worker.killed:
            return
        worker.killed = True
        if worker.transport is not None:
            with contextlib.suppress(error.ProcessExitedAlready, OSError):
                worker.transport.signalProcess("KILL")

    def _send(self, worker: Worker, message: dict[str, Any]) -> None:
        if worker.transport is not None:
            with contextlib.suppress(Exception):
                worker.transport.writeToChild(FROM_MASTER_FD, encode(message))

    # -- events from workers

    def received(self, worker: Worker, message: dict[str, Any]) -> None:
        worker.last_seen = self.clock.seconds()
        kind = message.get("t")
        if kind == "hb":
            stats = message.get("stats")
            if isinstance(stats, dict):
                worker.stats = stats
        elif kind == "ready":
            self._ready(worker)
        elif kind == "fatal":
            worker.fatal = str(message.get("message", ""))

    def _ready(self, worker: Worker) -> None:
        if worker.state != STARTING:
            return
        worker.state = READY
        if not self.ever_ready and self._too_big_at_idle(worker):
            return
        self.ever_ready = True
        log.info("worker {id} (pid {pid}) is ready", id=worker.id, pid=worker.pid)
        slot = worker.slot
        if slot.pending is worker:
            old = slot.worker
            slot.worker, slot.pending = worker, None
            if old is not None and old.alive:
                log.info("draining worker {id}, replaced by {new}", id=old.id, new=worker.id)
                self.drain(old)
        elif slot not in self.slots:
            self.drain(worker)
        waiting, worker._ready = worker._ready, []
        for d in waiting:
            d.callback(worker)

    def _too_big_at_idle(self, worker: Worker) -> bool:
        """A first worker already over MAX_MEMORY when ready would be recycled
        for ever: refuse to run instead, saying what the limit must exceed."""
        rss = self.rss(worker.pid) if worker.pid is not None else None
        if rss is None or rss <= self.policy.max_memory:
            return False
        self._fatal(
            f"MAX_MEMORY ({self.policy.max_memory / 2**20:.0f} MB) is below what a worker "
            f"needs when idle ({rss / 2**20:.0f} MB); raise it (e.g. "
            f"MAX_MEMORY={max(256, int(rss / 2**20 * 2))}mb)"
        )
        return True

    def _replaced(self, slot: Slot, reason: str) -> None:
        slot.replaced(reason)
        self.on_replaced(reason)

    def exited(self, worker: Worker, code: Optional[int], signum: Optional[int]) -> None:
        if worker.pid is not None:
            self.on_exit(worker.pid)
        was = worker.state
        worker.state = EXITED
        worker.exit_code, worker.exit_signal = code, signum
        self.workers.pop(worker.id, None)
        self.not_accepting(worker.id)
        if worker.killer is not None and worker.killer.active():
            worker.killer.cancel()
        worker.killer = None
        waiting, worker._ready = worker._ready, []
        for d in waiting:
            d.errback(BootFailed(worker.fatal or f"worker {worker.id} exited before it was ready"))
        exited, worker._exited = worker._exited, []
        for d in exited:
            d.callback(worker)
        slot = worker.slot
        if was == DRAINING or self.stopping or self.failed:
            log.info(
                "worker {id} (pid {pid}) has stopped ({how})",
                id=worker.id,
                pid=worker.pid,
                how=worker.describe_exit(),
            )
            if slot.worker is worker:
                slot.worker = None
            return
        if was == STARTING and not self.ever_ready:
            self._fatal(
                worker.fatal or f"worker {worker.id} could not start ({worker.describe_exit()})"
            )
            return
        if slot not in self.slots:
            return
        self._crashed(worker, was)

    def _crashed(self, worker: Worker, was: str) -> None:
        slot = worker.slot
        uptime = self.clock.seconds() - worker.started
        quick = was == STARTING or uptime < self.policy.min_uptime
        slot.quick_crashes = slot.quick_crashes + 1 if quick else 1
        self._replaced(slot, worker.killed_for or "crash")
        why = worker.fatal or worker.describe_exit()
        if slot.pending is worker:
            # The old worker keeps serving; the replacement is retried later.
            slot.pending = None
            log.error(
                "replacement worker {id} failed ({why}); worker {old} keeps serving",
                id=worker.id,
                why=why,
                old=slot.worker.id if slot.worker else None,
            )
            return
        if slot.worker is not worker:
            return
        if slot.pending is not None:
            slot.worker, slot.pending = slot.pending, None
            log.error("worker {id} died ({why}); its replacement takes over", id=worker.id, why=why)
            return
        slot.worker = None
        if slot.quick_crashes >= self.policy.max_quick_crashes:
            self.slots.remove(slot)
            log.critical(
                "worker {id} in slot {slot} crashed {n} times in a row within {up}s of "
                "starting (last: {why}); not restarting it, {left} workers remain",
                id=worker.id,
                slot=slot.number,
                n=slot.quick_crashes,
                up=self.policy.min_uptime,
                why=why,
                left=len(self.slots),
            )
            if not self.slots:
                self._fatal("every worker crashed repeatedly; see the log above")
            return
        delay = self.policy.backoff(slot.quick_crashes)
        log.error(
            "worker {id} (pid {pid}) died ({why}) after {uptime:.1f}s; restarting in {delay}s",
            id=worker.id,
            pid=worker.pid,
            why=why,
            uptime=uptime,
            delay=delay,
        )
        if delay <= 0:
            self._start_worker(slot)
        else:
            slot.restart = self.clock.callLater(delay, self._restart_slot, slot)

    def _restart_slot(self, slot: Slot) -> None:
        slot.restart = None
        if not self.stopping and slot in self.slots and slot.worker is None:
            self._start_worker(slot)

    def _fatal(self, message: str) -> None:
        if self.failed:
            return
        self.failed = True
        self.on_fatal(message)

    # -- watchdogs

    def _check_heartbeats(self) -> None:
        now = self.clock.seconds()
        for worker in list(self.workers.values()):
            if worker.state == STARTING and now - worker.started > self.policy.boot_timeout:
                worker.fatal = f"not ready within {self.policy.boot_timeout:.0f}s"
                log.error("worker {id} is not ready in time; killing it", id=worker.id)
                self._kill(worker)
            elif worker.state == READY and now - worker.last_seen > self.policy.heartbeat_timeout:
                worker.fatal = f"no heartbeat for {now - worker.last_seen:.1f}s"
                worker.killed_for = "heartbeat"
                log.error(
                    "worker {id} (pid {pid}) sent no heartbeat for {silent:.1f}s; killing it",
                    id=worker.id,
                    pid=worker.pid,
                    silent=now - worker.last_seen,
                )
                self._kill(worker)

    def _check_memory(self) -> None:
        if self.failed or self.stopping:
            return
        for slot in list(self.slots):
            worker = slot.worker
            if worker is None or worker.state != READY or slot.pending is not None:
                continue
            pid = worker.pid
            rss = self.rss(pid) if pid is not None else None
            if rss is None:
                continue
            worker.stats["rss"] = rss
            self.on_rss(worker.id, rss)
            if rss > self.policy.max_memory:
                log.warn(
                    "worker {id} (pid {pid}) uses {mb:.0f} MB, over the {limit:.0f} MB limit; "
                    "recycling it",
                    id=worker.id,
                    pid=pid,
                    mb=rss / 2**20,
                    limit=self.policy.max_memory / 2**20,
                )
                self._replaced(slot, "memory")
                self.replace(slot).addErrback(lambda f: None)

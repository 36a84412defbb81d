"""The worker process's side of the cluster: its link to the master,
readiness, heartbeats, draining and the parent-death guards (it writes its
own log lines, :mod:`crackershop.server.logs`). What it serves is given to
it (:mod:`crackershop.cluster.worker`).
"""

from __future__ import annotations

import os
import signal
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from crackershop.cluster.board import AcceptBoard
from crackershop.cluster.link import BOARD_FD, FROM_MASTER_FD, TO_MASTER_FD, LineBuffer, encode
from crackershop.cluster.serving import AdoptedEndpoint, Balance, Connections, with_headers

log = Logger()

HEARTBEAT = 1.0
EXIT_BOOT_FAILED = 3


class LinkProtocol(Protocol):
    """Messages from the master; losing the link means the master is gone."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.lines = LineBuffer(agent.received)

    def dataReceived(self, data: bytes) -> None:
        self.lines.feed(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.agent.channel_closed()


class Agent(Service):
    """A worker's link to its master, and the first service of its tree (so
    it stops last, once the rest has stopped and logged): reports ready,
    heartbeats, drains on request, exits when drained or orphaned. What it
    serves is given to it (:mod:`crackershop.cluster.worker`)."""

    def __init__(
        self,
        reactor: Any,
        worker_id: int,
        master_pid: int,
        family: int,
        grace: float,
        debug_header: bool,
        accept_cap: int,
    ) -> None:
        self.reactor = reactor
        self.worker_id = worker_id
        self.master_pid = master_pid
        self.family = family
        self.grace = grace
        self.debug_header = debug_header
        self.accept_cap = accept_cap
        self.transport: Any = None
        # the serving process's listening service, once the tree is built
        self.listener: Any = None
        self.serving = False
        self.connections = Connections(reactor)
        self.balance = Balance(_board(), worker_id, self.connections)
        self.exit_code = 0
        self._draining = False
        self._stopping = False
        self._closed = False
        self._channel_closed: list[Deferred[None]] = []
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = reactor

    def open_channel(self) -> None:
        from twisted.internet.stdio import StandardIO

        self.transport = StandardIO(  # type: ignore[call-arg]
            LinkProtocol(self), stdin=FROM_MASTER_FD, stdout=TO_MASTER_FD, reactor=self.reactor
        )

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def endpoint(self) -> AdoptedEndpoint:
        """The shared socket, adopted when the site is ready."""
        return AdoptedEndpoint(
            self.reactor, _listen_fd(), self.family, self.balance, self.accept_cap
        )

    # -- the service

    def startService(self) -> None:
        super().startService()
        self._heartbeat.start(HEARTBEAT, now=True)

    def stopService(self) -> Deferred[None]:
        """Send what is left for the master, then let go."""
        super().stopService()
        if self._heartbeat.running:
            self._heartbeat.stop()
        if self.transport is None or self._closed:
            return succeed(None)
        closed: Deferred[None] = Deferred()
        self._channel_closed.append(closed)
        self.transport.loseConnection()
        return closed.addTimeout(1.0, self.reactor).addErrback(lambda _: None)

    # -- serving: the site is ready, then the socket is adopted

    def watch(self, site: Site) -> Site:
        """Watch ``site``'s connections (to drain and report them)."""
        if self.debug_header:
            with_headers(site, {b"x-worker": str(self.worker_id).encode()})
        self.connections.install(site)
        self.balance.publish()
        return site

    def listening(self, port: Any) -> None:
        if self._draining:
            self.listener.stop_accepting()
            return
        self.serving = True
        log.info("worker {id} serving (pid {pid})", id=self.worker_id, pid=os.getpid())
        self.send(encode({"t": "ready", "pid": os.getpid()}))

    def boot_failed(self, failure: Failure) -> None:
        message = str(failure.value) or repr(failure.value)
        log.error("worker {id} cannot start: {message}", id=self.worker_id, message=message)
        self.send(encode({"t": "fatal", "message": message}))
        self.exit_code = EXIT_BOOT_FAILED
        self._stop()

    def _beat(self) -> None:
        if os.getppid() != self.master_pid:
            self.orphaned("the master process is gone")
            return
        stats = {"connections": len(self.connections.open), "served": self.connections.served}
        self.send(encode({"t": "hb", "stats": stats}))

    def received(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "drain":
            self.drain()

    def orphaned(self, why: str) -> None:
        if not self._draining and not self._stopping:
            log.warn("worker {id}: {why}; exiting", id=self.worker_id, why=why)
        self.drain()

    def drain(self) -> None:
        """Stop accepting, finish in-flight requests, close keep-alive
        connections, exit. The shared socket stays open in the master, so
        connections still queued on it go to the other workers."""
        if self._draining:
            return
        self._draining = True
        if not self.serving:
            self._stop()
            return
        log.info("worker {id} draining", id=self.worker_id)
        self.balance.withdraw()
        self.listener.stop_accepting()
        self.reactor.callLater(self.grace + 1.0, self._stop)
        self.connections.drain(self.grace).addCallback(lambda _: self._stop())

    def channel_closed(self) -> None:
        self._closed = True
        if self._stopping:
            closed, self._channel_closed = self._channel_closed, []
            for d in closed:
                d.callback(None)
        else:
            self.orphaned("the control channel to the master closed")

    def _stop(self) -> None:
        """Stop the process: its tree stops, this service last."""
        if self._stopping:
            return
        self._stopping = True
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.reactor.callWhenRunning(self.reactor.stop)


def _board() -> Optional[AcceptBoard]:
    try:
        return AcceptBoard(BOARD_FD)
    except (OSError, ValueError):
        return None


def _listen_fd() -> int:
    from crackershop.cluster.link import LISTEN_FD

    return LISTEN_FD


def install_signals(agent: Agent) -> None:
    """The master coordinates: a terminal's ^C reaches the whole process
    group, so workers ignore SIGINT; SIGTERM (also the parent-death signal)
    drains."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def term(signum: int, frame: Any) -> None:
        agent.reactor.callFromThread(agent.orphaned, "received SIGTERM")

    signal.signal(signal.SIGTERM, term)


def check_parent(master_pid: int) -> Optional[str]:
    """Why this worker must not run, if its master is already gone."""
    if os.getppid() != master_pid:
        return "started by a master that has already exited"
    return None

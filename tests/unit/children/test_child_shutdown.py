"""A helper child that stops at the same ^C as the server is not an error;
one that stops cleanly on its own still is, and is restarted."""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import Service
from twisted.internet.error import ProcessTerminated
from twisted.python.failure import Failure

from crackershop.children.child import SHUTDOWN_GRACE
from crackershop.children.embedded import EmbeddedMongo
from crackershop.server.root import InOrder
from tests.unit.children.test_child import PORT, FakeProcesses, Ping, ProcessReactor


def ready_database(tmp_path: Path) -> tuple[ProcessReactor, EmbeddedMongo]:
    """The embedded database, ready, in a server's running tree."""
    reactor = ProcessReactor()
    ping = Ping()
    service = EmbeddedMongo(
        reactor,
        str(tmp_path / "db"),
        executable="/bin/secantusd-py",
        processes=FakeProcesses(),
        pick_port=lambda: PORT,
        ping=ping,
    )
    tree = InOrder()
    service.setServiceParent(tree)
    tree.startService()
    ping.answering = True
    reactor.advance(service.probe_interval)
    assert service.ready
    return reactor, service


def interrupted(process: object) -> None:
    """The child ends as a server does on SIGINT."""
    process.protocol.processEnded(Failure(ProcessTerminated(signal=2)))  # type: ignore[attr-defined]


def test_the_same_ctrl_c_is_a_stop_not_a_crash(tmp_path: Path) -> None:
    """The database ending on SIGINT just before the server's shutdown begins: no
    error, no restart."""
    from twisted.logger import globalLogPublisher

    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        reactor, service = ready_database(tmp_path)
        interrupted(reactor.processes[0])
        # the server's tree begins to stop: its root first, this child much later
        Service.stopService(service.parent)  # type: ignore[arg-type]
        reactor.advance(SHUTDOWN_GRACE + 60)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert len(reactor.processes) == 1
    formats = [e.get("log_format", "") for e in events]
    assert not any("unexpectedly" in f for f in formats)
    assert any("has stopped" in f for f in formats)


def test_a_clean_exit_on_its_own_is_restarted(tmp_path: Path) -> None:
    """With no shutdown under way, the same exit is unexpected: restarted after the grace."""
    reactor, _ = ready_database(tmp_path)
    interrupted(reactor.processes[0])
    reactor.advance(SHUTDOWN_GRACE)
    assert len(reactor.processes) == 1
    reactor.advance(0.5)
    assert len(reactor.processes) == 2

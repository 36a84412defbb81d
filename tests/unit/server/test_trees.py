"""Each process is one service tree: what is in it, in which order it starts
and stops, and the listening service that binds only once its site is ready."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from crackershop.config import Config, load
from crackershop.server.listening import ListeningService
from crackershop.server.process import single_process
from crackershop.server.root import InOrder, Refused

SECRET = {"JWT_SECRET": "s" * 40}


def names(tree: Any) -> list[str]:
    return [type(child).__name__ for child in tree]


def config(tmp_path: Path, **given: str) -> Config:
    settings = {"run_dir": str(tmp_path / "run"), "log_dir": str(tmp_path / "logs"), **given}
    loaded, _ = load(settings, SECRET)
    return loaded


def test_a_single_process_is_database_repair_listener(tmp_path: Path) -> None:
    """--workers=0: the embedded database (no MONGO_URI), then the pool, the
    repair sweep and the listener, then the control socket and signals."""
    tree = single_process(MemoryReactorClock(), config(tmp_path), {})
    assert names(tree) == [
        "SingleProcess",
        "EmbeddedMongo",
        "DatabaseService",
        "RepairService",
        "ListeningService",
        "ControlService",
        "SignalService",
    ]
    with_uri = single_process(
        MemoryReactorClock(), config(tmp_path, mongo_uri="mongodb://127.0.0.1:1"), {}
    )
    assert "EmbeddedMongo" not in names(with_uri)


def test_a_certificate_that_does_not_load_refuses_the_tree(tmp_path: Path) -> None:
    """A missing certificate file: nothing is built but a tree that says why."""
    settings = config(
        tmp_path, tls_cert=str(tmp_path / "absent.crt"), tls_key=str(tmp_path / "absent.key")
    )
    tree = single_process(MemoryReactorClock(), settings, {})
    assert isinstance(tree, Refused) and "absent.crt" in tree.reason and list(tree) == []


class FakeSocket:
    family = socket.AF_INET

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 4321)

    def fileno(self) -> int:
        return 99

    def close(self) -> None:
        pass


def test_a_master_stops_its_supervisor_first(tmp_path: Path) -> None:
    """--workers=2: the helpers, control socket and signals, with the
    supervisor last (it stops first); a port it cannot bind refuses the tree."""
    from crackershop.cluster.master import master_service

    reactor = MemoryReactorClock()
    tree = master_service(reactor, config(tmp_path, workers="2"), lambda host, port: FakeSocket())  # type: ignore[arg-type,return-value]
    assert names(tree) == [
        "Master",
        "EmbeddedMongo",
        "ControlService",
        "SignalService",
        "SupervisorService",
    ]

    def taken(host: str, port: int) -> socket.socket:
        raise OSError(98, "Address already in use")

    refused = master_service(reactor, config(tmp_path, workers="2"), taken)
    assert isinstance(refused, Refused) and "cannot listen on" in refused.reason


def test_a_worker_is_its_agent_then_the_serving_tree(tmp_path: Path) -> None:
    """A worker: its link to the master, then the same database -> repair ->
    listener as a single process."""
    from crackershop.cluster.agent import Agent
    from crackershop.cluster.worker import worker_service

    reactor = MemoryReactorClock()
    settings = config(tmp_path, mongo_uri="mongodb://127.0.0.1:1")
    agent = Agent(reactor, 1, 1, socket.AF_INET, 1.0, False, 4)
    tree = worker_service(reactor, settings, agent)
    assert names(tree) == ["Agent", "DatabaseService", "RepairService", "ListeningService"]
    assert agent.listener is list(tree)[-1]


class Recorded(Service):
    def __init__(self, name: str, log: list[str], stopped: Optional[Deferred[None]] = None):
        self.name = name
        self.log = log
        self.stopped = stopped

    def startService(self) -> None:
        super().startService()
        self.log.append(f"start {self.name}")

    def stopService(self) -> Optional[Deferred[None]]:
        super().stopService()
        self.log.append(f"stop {self.name}")
        return self.stopped


def test_children_stop_one_at_a_time_last_first() -> None:
    """The next child is not stopped until the one after it has finished stopping."""
    log: list[str] = []
    slow: Deferred[None] = Deferred()
    tree = InOrder()
    for child in (Recorded("a", log), Recorded("b", log), Recorded("c", log, slow)):
        child.setServiceParent(tree)
    tree.startService()
    done = tree.stopService()
    assert log == ["start a", "start b", "start c", "stop c"] and not done.called
    slow.callback(None)
    assert log[-2:] == ["stop b", "stop a"] and done.called


class Endpoint:
    def __init__(self) -> None:
        self.listened: list[Any] = []

    def listen(self, factory: Any) -> Deferred[Any]:
        self.listened.append(factory)
        return succeed(Port())


class Port:
    stopped = False

    def stopListening(self) -> None:
        self.stopped = True


def test_the_listener_binds_once_the_site_is_ready() -> None:
    """No port before the site; then the site is served through the switch."""
    ready: Deferred[Site] = Deferred()
    endpoint = Endpoint()
    listening: list[Any] = []
    service = ListeningService(
        endpoint,  # type: ignore[arg-type]
        lambda: ready,
        lambda failure: None,
        listening=listening.append,
    )
    service.startService()
    assert endpoint.listened == []
    site = Site(Resource())
    ready.callback(site)
    assert endpoint.listened == [service.switch] and service.switch.current is site
    assert listening == [service.port]
    port = service.port
    service.stopService()
    assert port is not None and port.stopped  # type: ignore[attr-defined]


def test_a_site_that_cannot_be_made_is_reported_and_stopping_early_is_quiet() -> None:
    """The failure reaches ``failed``; a stop while waiting reports nothing."""
    failures: list[Failure] = []
    service = ListeningService(
        Endpoint(),  # type: ignore[arg-type]
        lambda: fail(RuntimeError("the database does not answer")),
        failures.append,
    )
    service.startService()
    assert [str(f.value) for f in failures] == ["the database does not answer"]
    waiting = ListeningService(Endpoint(), Deferred, failures.append)  # type: ignore[arg-type]
    waiting.startService()
    waiting.stopService()
    assert len(failures) == 1

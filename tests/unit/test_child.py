"""Child helper servers (embedded database, private Redis), driven by a fake
process reactor and a Clock."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from crackershop.embedded import EmbeddedMongo, EmbeddedUnavailable
from crackershop.embedded_redis import EmbeddedRedis


class TempDirTestCase(SynchronousTestCase):
    """mktemp under the system's temporary directory, removed afterwards."""

    def mktemp(self) -> str:
        import shutil
        import tempfile

        root = tempfile.mkdtemp(prefix="crackershop-test-")
        self.addCleanup(shutil.rmtree, root, True)
        return str(Path(root) / "temp")


class FakeProcess:
    def __init__(self, protocol: Any, args: list[str]) -> None:
        self.protocol = protocol
        self.args = args
        self.signals: list[int] = []

    def signalProcess(self, signum: int) -> None:
        self.signals.append(signum)

    def say(self, text: bytes) -> None:
        self.protocol.errReceived(text)

    def exit(self, code: int = 0) -> None:
        reason = ProcessDone(0) if code == 0 else ProcessTerminated(code)
        self.protocol.processEnded(Failure(reason))


class ProcessReactor(MemoryReactorClock):
    def __init__(self) -> None:
        super().__init__()
        self.processes: list[FakeProcess] = []

    def spawnProcess(
        self, protocol: Any, executable: str, args: list[str], env: Any = None, **kwargs: Any
    ) -> FakeProcess:
        process = FakeProcess(protocol, args)
        protocol.makeConnection(process)
        self.processes.append(process)
        return process


LISTENING = b"2026-11-28 INFO secantus.server: secantus listening on 127.0.0.1:40123\n"


class EmbeddedMongoTests(TempDirTestCase):
    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.data = Path(self.mktemp()) / "db"
        self.service = EmbeddedMongo(self.reactor, str(self.data), executable="/bin/secantusd-py")

    def test_ready_when_it_says_where_it_listens(self) -> None:
        """The URI comes from the child's output, and is published for seed."""
        self.service.startService()
        ready = self.service.whenReady()
        self.assertNoResult(ready)
        self.reactor.processes[0].say(b"starting...\n" + LISTENING[:20])
        self.assertNoResult(ready)
        self.reactor.processes[0].say(LISTENING[20:])
        self.assertEqual(self.successResultOf(ready), "mongodb://127.0.0.1:40123")
        self.assertIn("--port", self.reactor.processes[0].args)
        self.assertEqual(self.service.uri_file.read_text().strip(), "mongodb://127.0.0.1:40123")

    def test_restarts_on_the_same_port_with_back_off(self) -> None:
        """A crash after start is followed by restarts, each later, on the same port."""
        self.service.startService()
        self.reactor.processes[0].say(LISTENING)
        for expected_delay in (0.5, 1.0, 2.0):
            self.reactor.processes[-1].exit(1)
            count = len(self.reactor.processes)
            self.reactor.advance(expected_delay - 0.01)
            self.assertEqual(len(self.reactor.processes), count)
            self.reactor.advance(0.01)
            self.assertEqual(len(self.reactor.processes), count + 1)
            args = self.reactor.processes[-1].args
            self.assertEqual(args[args.index("--port") + 1], "40123")
        self.reactor.processes[-1].say(LISTENING)
        self.assertEqual(
            self.successResultOf(self.service.whenReady()), "mongodb://127.0.0.1:40123"
        )

    def test_exit_while_starting_fails_clearly(self) -> None:
        """A child that dies before it is ready fails whenReady, naming the data dir."""
        self.service.startService()
        ready = self.service.whenReady()
        self.reactor.processes[0].exit(1)
        failure = self.failureResultOf(ready, EmbeddedUnavailable)
        self.assertIn(str(self.data), str(failure.value))
        self.assertEqual(len(self.reactor.processes), 1)

    def test_too_slow_to_start_is_killed(self) -> None:
        """No ready line within the start timeout: fail and SIGKILL."""
        self.service.startService()
        ready = self.service.whenReady()
        self.reactor.advance(self.service.start_timeout)
        self.failureResultOf(ready, EmbeddedUnavailable)
        self.assertEqual(self.reactor.processes[0].signals, [signal.SIGKILL])

    def test_stop_terms_then_kills(self) -> None:
        """Stopping sends SIGTERM, then SIGKILL after the grace; done when it exits."""
        self.service.startService()
        self.reactor.processes[0].say(LISTENING)
        stopped = self.service.stopService()
        self.assertEqual(self.reactor.processes[0].signals, [signal.SIGTERM])
        self.reactor.advance(self.service.stop_timeout)
        self.assertEqual(self.reactor.processes[0].signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertNoResult(stopped)
        self.reactor.processes[0].exit(-9)
        self.successResultOf(stopped)
        self.assertFalse(self.service.uri_file.exists())
        self.reactor.advance(60)
        self.assertEqual(len(self.reactor.processes), 1)  # no restart after a stop

    def test_not_installed(self) -> None:
        """Without secantusd-py the error says what to install."""
        service = EmbeddedMongo(self.reactor, str(self.data), find=lambda: None)
        ready = service.whenReady()
        service.startService()
        failure = self.failureResultOf(ready, EmbeddedUnavailable)
        self.assertIn("crackershop[embedded]", str(failure.value))

    def test_not_installed_asked_after_start(self) -> None:
        """Asking whenReady after a start that already failed gets the failure
        (as the cluster master does), not a wait for ever."""
        service = EmbeddedMongo(self.reactor, str(self.data), find=lambda: None)
        service.startService()
        failure = self.failureResultOf(service.whenReady(), EmbeddedUnavailable)
        self.assertIn("set MONGO_URI", str(failure.value))


class EmbeddedRedisTests(TempDirTestCase):
    def test_ready_line_of_either_version(self) -> None:
        """Both of Redis's ready lines mark it ready, giving a unix:// URL."""
        reactor = ProcessReactor()
        service = EmbeddedRedis(reactor, self.mktemp(), executable="/bin/redis-server")
        service.startService()
        reactor.processes[0].say(b"1:M * The server is now ready to accept connections at x\n")
        url = self.successResultOf(service.whenReady())
        self.assertEqual(url, f"unix://{service.socket}")
        self.assertEqual(service.url, url)

"""Child helper servers (the embedded database), driven by a fake
process reactor, a fake ping and a Clock."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from crackershop.children import childexec
from crackershop.children.child import Processes
from crackershop.children.embedded import EmbeddedMongo, EmbeddedUnavailable
from crackershop.children.probe import NoAnswer

PORT = 40123


class TempDirTestCase(SynchronousTestCase):
    """mktemp under the system's temporary directory, removed afterwards."""

    def mktemp(self) -> str:
        import shutil
        import tempfile

        root = tempfile.mkdtemp(prefix="crackershop-test-")
        self.addCleanup(shutil.rmtree, root, True)
        return str(Path(root) / "temp")


class FakeProcess:
    def __init__(self, protocol: Any, args: list[str], pid: int) -> None:
        self.protocol = protocol
        self.args = args
        self.pid = pid
        self.signals: list[int] = []

    @property
    def program(self) -> list[str]:
        """The child's own command line, behind the parent-death step."""
        return self.args[self.args.index("--") + 1 :]

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
        process = FakeProcess(protocol, args, 5000 + len(self.processes))
        protocol.makeConnection(process)
        self.processes.append(process)
        return process


class Ping:
    """A fake ping: answers while ``answering``, and counts the asks."""

    def __init__(self) -> None:
        self.answering = False
        self.asked = 0

    def __call__(self, reactor: Any, *where: Any) -> Deferred[None]:
        self.asked += 1
        if self.answering:
            return succeed(None)
        return fail(NoAnswer("connection refused"))


class FakeProcesses(Processes):
    """Running processes by pid -> start time; signals recorded, SIGTERM obeyed."""

    def __init__(self, running: Optional[dict[int, float]] = None, stubborn: bool = False) -> None:
        self.table: dict[int, float] = dict(running or {})
        self.table.setdefault(os.getpid(), 100.0)
        self.sent: list[tuple[int, int]] = []
        self.stubborn = stubborn

    def started(self, pid: int) -> Optional[float]:
        return self.table.get(pid)

    def signal(self, pid: int, signum: int) -> None:
        self.sent.append((pid, signum))
        if signum == signal.SIGKILL or not self.stubborn:
            self.table.pop(pid, None)


class EmbeddedMongoTests(TempDirTestCase):
    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.data = Path(self.mktemp()) / "db"
        self.ping = Ping()
        self.processes = FakeProcesses()
        self.service = self.make()

    def make(self) -> EmbeddedMongo:
        return EmbeddedMongo(
            self.reactor,
            str(self.data),
            executable="/bin/secantusd-py",
            processes=self.processes,
            pick_port=lambda: PORT,
            ping=self.ping,
        )

    def start_ready(self) -> None:
        self.service.startService()
        self.ping.answering = True
        self.reactor.advance(self.service.probe_interval)
        self.assertTrue(self.service.ready)

    def test_ready_when_it_answers_a_ping_not_when_it_logs(self) -> None:
        """Log lines mean nothing; the first answered ping makes it ready, at the
        URI of the port it was given, published for seed."""
        self.service.startService()
        ready = self.service.whenReady()
        self.reactor.processes[0].say(b"secantus listening on 127.0.0.1:40123\n")
        self.reactor.pump([0.2] * 5)
        self.assertNoResult(ready)
        self.assertGreaterEqual(self.ping.asked, 4)
        self.ping.answering = True
        self.reactor.advance(self.service.probe_interval)
        self.assertEqual(self.successResultOf(ready), f"mongodb://127.0.0.1:{PORT}")
        self.assertEqual(self.service.uri_file.read_text().strip(), f"mongodb://127.0.0.1:{PORT}")
        program = self.reactor.processes[0].program
        self.assertEqual(program[program.index("--port") + 1], str(PORT))
        asked = self.ping.asked
        self.reactor.advance(10)
        self.assertEqual(self.ping.asked, asked)  # no pings once ready

    def test_started_behind_the_parent_death_step(self) -> None:
        """The child is exec'd by crackershop.children.childexec, told this process's pid."""
        self.service.startService()
        args = self.reactor.processes[0].args
        self.assertEqual(args[:3], [sys.executable, "-m", "crackershop.children.childexec"])
        self.assertEqual(args[3:5], [str(os.getpid()), "--"])
        self.assertEqual(self.reactor.processes[0].program[0], "/bin/secantusd-py")

    def test_a_restarted_database_is_restarted_once_and_left_alone(self) -> None:
        """After one crash: one restart with the very same command line, ready by ping,
        and never killed again (the old restart changed the log level and was SIGKILLed
        every start_timeout for ever)."""
        self.start_ready()
        first = self.reactor.processes[0]
        first.exit(1)
        self.assertFalse(self.service.ready)
        self.reactor.advance(self.service.first_restart_delay)
        self.assertEqual(len(self.reactor.processes), 2)
        second = self.reactor.processes[1]
        self.assertEqual(second.program, first.program)
        self.reactor.advance(self.service.probe_interval)
        self.assertTrue(self.service.ready)
        self.reactor.pump([1.0] * 300)
        self.assertEqual(second.signals, [])
        self.assertEqual(len(self.reactor.processes), 2)
        self.assertEqual(self.service.restarts, 1)
        self.assertEqual(self.service.describe()["state"], "ready")

    def test_quick_crashes_back_off_and_a_stable_child_starts_over(self) -> None:
        """Crashes soon after each restart wait 0.5, 1, 2 s; after a long stable run
        the next crash waits 0.5 s again."""
        self.start_ready()
        for expected_delay in (0.5, 1.0, 2.0):
            self.reactor.processes[-1].exit(1)
            count = len(self.reactor.processes)
            self.assertEqual(self.service.describe()["state"], "restarting")
            self.reactor.advance(expected_delay - 0.01)
            self.assertEqual(len(self.reactor.processes), count)
            self.reactor.advance(0.01)
            self.assertEqual(len(self.reactor.processes), count + 1)
            self.reactor.advance(self.service.probe_interval)
        self.reactor.advance(self.service.stable_after + 1)
        self.reactor.processes[-1].exit(1)
        count = len(self.reactor.processes)
        self.reactor.advance(0.5)
        self.assertEqual(len(self.reactor.processes), count + 1)
        self.assertEqual(self.service.restarts, 4)

    def test_exit_while_starting_fails_clearly(self) -> None:
        """A child that dies before it is ready fails whenReady, naming the data dir."""
        self.service.startService()
        ready = self.service.whenReady()
        self.reactor.processes[0].exit(1)
        failure = self.failureResultOf(ready, EmbeddedUnavailable)
        self.assertIn(str(self.data), str(failure.value))
        self.assertEqual(len(self.reactor.processes), 1)

    def test_too_slow_to_start_is_killed(self) -> None:
        """No answer within the start timeout: fail and SIGKILL."""
        self.service.startService()
        ready = self.service.whenReady()
        self.reactor.pump([1.0] * int(self.service.start_timeout))
        self.failureResultOf(ready, EmbeddedUnavailable)
        self.assertEqual(self.reactor.processes[0].signals, [signal.SIGKILL])

    def test_stop_terms_then_kills_and_forgets_its_pid(self) -> None:
        """Stopping sends SIGTERM, then SIGKILL after the grace; done when it exits;
        the pid file is written while it runs and removed after."""
        self.start_ready()
        record = json.loads(self.service.pid_file.read_text())
        self.assertEqual((record["pid"], record["server"]), (5000, os.getpid()))
        stopped = self.service.stopService()
        self.assertEqual(self.reactor.processes[0].signals, [signal.SIGTERM])
        self.reactor.advance(self.service.stop_timeout)
        self.assertEqual(self.reactor.processes[0].signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertNoResult(stopped)
        self.reactor.processes[0].exit(-9)
        self.successResultOf(stopped)
        self.assertFalse(self.service.uri_file.exists())
        self.assertFalse(self.service.pid_file.exists())
        self.reactor.advance(60)
        self.assertEqual(len(self.reactor.processes), 1)  # no restart after a stop

    def write_record(self, pid: int, server: int) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": pid, "started": 1.0, "server": server, "server_started": 2.0}
        self.service.pid_file.write_text(json.dumps(record))

    def test_a_leftover_child_of_a_dead_server_is_stopped_first(self) -> None:
        """A child still running from a server that is gone gets SIGTERM and, once
        it has exited, the new one starts."""
        self.processes.table[777] = 1.0  # the leftover; its server (888) is gone
        self.write_record(777, 888)
        self.service.startService()
        self.assertEqual(self.processes.sent, [(777, signal.SIGTERM)])
        self.assertEqual(len(self.reactor.processes), 1)
        self.assertEqual(json.loads(self.service.pid_file.read_text())["pid"], 5000)

    def test_a_stubborn_leftover_is_killed_after_the_grace(self) -> None:
        """A leftover that ignores SIGTERM for stop_timeout is SIGKILLed."""
        self.processes.stubborn = True
        self.processes.table[777] = 1.0
        self.write_record(777, 888)
        self.service.startService()
        self.reactor.pump([0.1] * int(self.service.stop_timeout * 10 + 5))
        self.assertEqual(self.processes.sent, [(777, signal.SIGTERM), (777, signal.SIGKILL)])
        self.assertEqual(len(self.reactor.processes), 1)

    def test_stale_pid_file_is_ignored(self) -> None:
        """A pid file whose server and child are both gone does not stop a start."""
        self.write_record(777, 888)
        self.service.startService()
        self.assertEqual(self.processes.sent, [])
        self.assertEqual(len(self.reactor.processes), 1)

    def test_files_of_a_running_server_are_refused(self) -> None:
        """A data directory whose database belongs to a server still running is refused."""
        self.processes.table.update({777: 1.0, 888: 2.0})
        self.write_record(777, 888)
        ready = self.service.whenReady()
        self.service.startService()
        failure = self.failureResultOf(ready, EmbeddedUnavailable)
        self.assertIn("another running server (pid 888)", str(failure.value))
        self.assertEqual(self.processes.sent, [])
        self.assertEqual(self.reactor.processes, [])

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


def test_exec_step_refuses_an_orphan() -> None:
    """The parent-death step does not start the program if its parent already exited."""
    code = childexec.main([str(os.getppid() + 999_999), "--", "/bin/true"])
    assert code == childexec.EXIT_ORPHANED


def test_exec_step_usage() -> None:
    """The parent-death step needs a parent pid, --, and a program."""
    assert childexec.main(["x"]) == 2
    assert childexec.command(["/bin/secantusd-py", "--port", "0"], parent=42)[-5:] == [
        "42",
        "--",
        "/bin/secantusd-py",
        "--port",
        "0",
    ]

"""The log writer: ECS lines, written once per reactor turn, to one file
that several processes append to and rotate."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from crackershop.config import load
from crackershop.server.logformat import EcsFormat, TextFormat
from crackershop.server.logs import PIPE_BUF, FileSink, LogWriter, server_observer, whole_lines


def request_event(path: str = "/api/v1/products", when: float = 1795980151.0829906) -> Any:
    return {
        "log_namespace": "crackershop.request",
        "log_level": LogLevel.info,
        "log_time": when,
        "log_format": "{method} {path} {status}",
        "method": "GET",
        "path": path,
        "status": 200,
        "duration": 0.000497,
        "client": "203.0.113.9",
        "request_id": "8668ba4d8039-3e8",
    }


def test_a_request_is_one_flat_ecs_line_of_about_300_bytes() -> None:
    """A request's line carries the ECS fields and the worker, in under 300 bytes."""
    line = EcsFormat(worker=2)(request_event())
    assert line.endswith("\n") and len(line.encode()) < 300
    assert json.loads(line) == {
        "@timestamp": "2026-11-29T19:22:31.082Z",
        "log.level": "info",
        "message": "GET /api/v1/products 200",
        "http.request.method": "GET",
        "url.path": "/api/v1/products",
        "http.response.status_code": 200,
        "event.duration": 497000,
        "client.ip": "203.0.113.9",
        "request_id": "8668ba4d8039-3e8",
        "worker": 2,
    }


def test_odd_request_fields_still_make_valid_json() -> None:
    """Quotes, control characters and non-UTF-8 bytes in a path stay one valid JSON line."""
    event = {**request_event('/a"b\\c\n\u00e9'), "status": None, "client": None}
    line = EcsFormat()(event)
    assert line.count("\n") == 1
    parsed = json.loads(line)
    assert parsed["url.path"] == '/a"b\\c\n\u00e9'
    assert parsed["http.response.status_code"] is None and parsed["client.ip"] is None


def test_other_events_have_message_logger_pid_and_error() -> None:
    """Other events: the formatted message, the logger, the pid, the event's own
    fields; a failure's type, message and stack trace."""
    failure = Failure(ZeroDivisionError("division by zero"))
    event = {
        "log_namespace": "crackershop.cluster",
        "log_level": LogLevel.error,
        "log_time": 1.0,
        "log_format": "worker {id} died",
        "id": 3,
        "log_failure": failure,
    }
    parsed = json.loads(EcsFormat(worker=0, pid=42)(event))
    assert parsed["message"] == "worker 3 died" and parsed["log.level"] == "error"
    assert parsed["log.logger"] == "crackershop.cluster" and parsed["process.pid"] == 42
    assert parsed["id"] == 3 and not [k for k in parsed if k.startswith("log_")]
    assert parsed["error.type"] == "ZeroDivisionError"
    assert "division by zero" in parsed["error.message"]
    assert "ZeroDivisionError" in parsed["error.stack_trace"]


class Reactor(MemoryReactorClock):
    def __init__(self) -> None:
        super().__init__()
        self.running = True

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self.callLater(0, f, *args, **kwargs)


def test_lines_are_written_once_per_reactor_turn_and_warnings_at_once(tmp_path: Path) -> None:
    """info lines wait for the end of the turn and go out in one write; a warning
    goes out at once, with whatever was waiting."""
    reactor = Reactor()
    sink = FileSink(str(tmp_path), 10**6, 2)
    writer = LogWriter("info", [(EcsFormat(), [sink])], reactor)
    log = Logger(observer=writer, namespace="test")
    log.debug("not at this level")
    log.info("one")
    log.info("two")
    path = tmp_path / "crackershop.log"
    assert path.read_text() == ""
    assert len(reactor.getDelayedCalls()) == 1
    reactor.advance(0)
    assert [json.loads(x)["message"] for x in path.read_text().splitlines()] == ["one", "two"]
    log.info("three")
    log.warn("four")
    messages = [json.loads(x)["message"] for x in path.read_text().splitlines()]
    assert messages == ["one", "two", "three", "four"]


def test_production_prints_the_json_lines_development_prints_text(tmp_path: Path) -> None:
    """Production: the file's JSON lines on standard output too; development: readable text."""
    for environment in ("production", "development"):
        directory = tmp_path / environment
        config, _ = load(
            {"environment": environment, "log_dir": str(directory)}, {"JWT_SECRET": "s" * 40}
        )
        out = io.StringIO()
        writer, _ = server_observer(config, worker=3, out=out)
        Logger(observer=writer, namespace="test").info("hello {who}", who="you")
        in_file = (directory / "crackershop.log").read_text()
        assert json.loads(in_file)["message"] == "hello you"
        if environment == "production":
            assert out.getvalue() == in_file
        else:
            assert "[worker-3] hello you" in out.getvalue()
        writer.close()


def test_two_processes_share_the_file_and_rotate_it_once(tmp_path: Path) -> None:
    """Two writers appending to one file: every line is kept whole, each full file
    is rotated once, and the other writer follows onto the new file."""
    now = [0.0]
    first = FileSink(str(tmp_path), 1000, 50, clock=lambda: now[0])
    second = FileSink(str(tmp_path), 1000, 50, clock=lambda: now[0])
    written = []
    for n in range(400):
        line = json.dumps({"n": n, "pad": "x" * 20}) + "\n"
        written.append(n)
        (first if n % 2 else second).write(line.encode())
        now[0] += 0.1
    first.close()
    second.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) > 10
    seen = []
    for path in files:
        assert path.stat().st_size < 1000 + 200  # rotated soon after it passed the size
        seen += [json.loads(line)["n"] for line in path.read_text().splitlines()]
    assert sorted(seen) == written


def test_rotation_keeps_log_max_files(tmp_path: Path) -> None:
    """Past LOG_MAX_FILES the oldest rotated file goes."""
    sink = FileSink(str(tmp_path), 100, 2)
    for n in range(50):
        sink.write(b'{"n": %d, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}\n' % n)
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "crackershop.log",
        "crackershop.log.1",
        "crackershop.log.2",
    ]


def test_standard_output_gets_whole_lines_of_at_most_pipe_buf() -> None:
    """Pieces written to a shared pipe are whole lines, each at most PIPE_BUF bytes."""
    data = b"".join(b"%05d %s\n" % (n, b"y" * (n % 300)) for n in range(200))
    pieces = list(whole_lines(data))
    assert b"".join(pieces) == data
    assert all(len(p) <= PIPE_BUF and p.endswith(b"\n") for p in pieces)
    long_line = b"z" * (PIPE_BUF * 2) + b"\n"
    assert list(whole_lines(b"a\n" + long_line)) == [b"a\n", long_line]


def test_text_format_tags_a_workers_lines() -> None:
    """Development text names the worker that wrote a line."""
    event = {"log_format": "hi", "log_level": LogLevel.info, "log_time": 0.0, "log_namespace": "x"}
    assert "[worker-2] hi" in TextFormat(2)(event)
    assert "[x#info] hi" in TextFormat(0)(event)

"""The control protocol over StringTransport, and the status table."""

from __future__ import annotations

import json
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport

from crackershop.ops.control import (
    ControlError,
    ControlFactory,
    duration,
    render_status,
    size,
    table,
)


class Handler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.pending: Optional[Deferred[Any]] = None

    def status(self) -> dict[str, Any]:
        self.calls.append(("status", None))
        return {"pid": 1, "workers": []}

    def stop(self) -> dict[str, Any]:
        self.calls.append(("stop", None))
        return {"pid": 1}

    def restart(self, worker: Optional[int]) -> Deferred[Any]:
        self.calls.append(("restart", worker))
        self.pending = Deferred()
        return self.pending

    def scale(self, count: int) -> Any:
        self.calls.append(("scale", count))
        raise ControlError("no scaling here")


def connect(handler: Handler) -> tuple[Any, StringTransport]:
    protocol = ControlFactory(handler).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def answers(transport: StringTransport) -> list[dict[str, Any]]:
    return [json.loads(line) for line in transport.value().splitlines()]


def test_each_request_line_gets_one_answer_line() -> None:
    """status and stop reach the handler and their results come back as {"ok": true}."""
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.dataReceived(b'{"cmd":"status"}\n{"cmd":"stop"}\n')
    assert answers(transport) == [
        {"ok": True, "result": {"pid": 1, "workers": []}},
        {"ok": True, "result": {"pid": 1}},
    ]
    assert handler.calls == [("status", None), ("stop", None)]


def test_a_deferred_result_is_answered_when_it_fires() -> None:
    """restart answers only once the rolling restart has finished."""
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.dataReceived(b'{"cmd":"restart","worker":2}\n')
    assert transport.value() == b""
    assert handler.pending is not None
    handler.pending.callback({"replaced": [2]})
    assert answers(transport) == [{"ok": True, "result": {"replaced": [2]}}]


def test_bad_requests_are_refused_with_a_reason() -> None:
    """Garbage, unknown commands, bad arguments and handler refusals answer ok=false."""
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.dataReceived(
        b"nonsense\n"
        b'{"cmd":"explode"}\n'
        b'{"cmd":"scale","count":0}\n'
        b'{"cmd":"restart","worker":"x"}\n'
        b'{"cmd":"scale","count":3}\n'
    )
    got = answers(transport)
    assert [a["ok"] for a in got] == [False] * 5
    assert "unknown command" in got[1]["error"]
    assert "at least 1" in got[2]["error"]
    assert "integer" in got[3]["error"]
    assert got[4]["error"] == "no scaling here"
    assert handler.calls == [("scale", 3)]


def test_table_lines_up_every_worker() -> None:
    """The status table has a header and one aligned row per worker, '-' for unknowns."""
    rows: list[dict[str, Any]] = [
        {
            "id": 1,
            "pid": 10,
            "state": "ready",
            "uptime": 3725,
            "restarts": 1,
            "reason": "crash",
            "cpu": 1.25,
            "rss": 80 * 2**20,
            "served": 12,
            "connections": 0,
        },
        {"id": None, "pid": None, "state": "backing-off", "uptime": None, "restarts": 3},
    ]
    lines = table(rows).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert "last restart" in lines[1]
    assert "| 1 " in lines[3] and "1h02m" in lines[3] and "80.0MB" in lines[3]
    assert "crash" in lines[3] and "1.2%" in lines[3]
    assert "backing-off" in lines[4] and "| -  " in lines[4]


def test_units() -> None:
    """Durations and sizes are short and human."""
    assert [duration(5), duration(65), duration(7200), duration(90000)] == [
        "5s",
        "1m05s",
        "2h00m",
        "1d01h",
    ]
    assert [size(512), size(2048), size(3 * 2**30)] == ["512B", "2.0KB", "3.0GB"]


def test_render_status_heads_the_table_with_the_server() -> None:
    """The head names version, pid, address, database and Redis."""
    text = render_status(
        {
            "version": "1",
            "environment": "production",
            "pid": 9,
            "host": "h",
            "port": 80,
            "mode": "cluster",
            "database": "mongodb://***@db",
            "redis": "",
            "workers": [],
        }
    )
    assert "master pid 9" in text and "h:80" in text and "mongodb://***@db" in text

"""Pings that tell a child service is ready: the exchange and the answers
it accepts, over a StringTransport."""

from __future__ import annotations

import pytest
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from txmongo.protocol import MongoDecoder, Msg

from crackershop.children.probe import (
    NoAnswer,
    _Exchange,
    _mongo_complete,
    _mongo_request,
    _redis_complete,
)


def test_redis_pong_is_an_answer_anything_else_is_not() -> None:
    """+PONG is ready; a partial line waits; an error reply (still loading) is not ready."""
    assert _redis_complete(b"+PO") is False
    assert _redis_complete(b"+PONG\r\n") is True
    with pytest.raises(NoAnswer):
        _redis_complete(b"-LOADING Redis is loading the dataset in memory\r\n")


def test_mongo_ping_is_an_op_msg_and_ok_1_is_an_answer() -> None:
    """The request is OP_MSG {ping: 1} on admin; a reply with ok: 1 is ready, ok: 0 is not."""
    decoder = MongoDecoder()
    decoder.feed(_mongo_request())
    request = next(decoder)
    assert isinstance(request, Msg) and request.to_dict() == {"ping": 1, "$db": "admin"}
    ok = Msg.create({"ok": 1.0}, response_to=1).encode(7)
    assert _mongo_complete(ok[:10]) is False
    assert _mongo_complete(ok) is True
    with pytest.raises(NoAnswer):
        _mongo_complete(Msg.create({"ok": 0.0, "errmsg": "starting"}).encode(8))


def test_exchange_sends_reads_and_closes() -> None:
    """The exchange writes its request, fires once the answer is whole, and hangs up."""
    exchange = _Exchange(b"PING\r\n", _redis_complete)
    transport = StringTransport()
    exchange.makeConnection(transport)
    assert transport.value() == b"PING\r\n"
    exchange.dataReceived(b"+PO")
    assert not exchange.answered.called
    exchange.dataReceived(b"NG\r\n")
    assert exchange.answered.called and transport.disconnecting


def test_exchange_closed_without_an_answer_fails() -> None:
    """A connection lost before the answer fails the ping."""
    exchange = _Exchange(b"PING\r\n", _redis_complete)
    exchange.makeConnection(StringTransport())
    failures: list[Failure] = []
    exchange.answered.addErrback(failures.append)
    exchange.connectionLost(None)
    assert failures and failures[0].check(NoAnswer)

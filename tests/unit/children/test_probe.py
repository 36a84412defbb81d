"""Pings that tell a child service is ready: the exchange and the answers
it accepts, over a StringTransport."""

from __future__ import annotations

import pytest
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from txmongo.protocol import MongoDecoder, Msg

from crackershop.children.probe import NoAnswer, _Exchange, _mongo_complete, _mongo_request


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
    exchange = _Exchange(_mongo_request(), _mongo_complete)
    transport = StringTransport()
    exchange.makeConnection(transport)
    assert transport.value() == _mongo_request()
    ok = Msg.create({"ok": 1.0}, response_to=1).encode(7)
    exchange.dataReceived(ok[:10])
    assert not exchange.answered.called
    exchange.dataReceived(ok[10:])
    assert exchange.answered.called and transport.disconnecting


def test_exchange_closed_without_an_answer_fails() -> None:
    """A connection lost before the answer fails the ping."""
    exchange = _Exchange(_mongo_request(), _mongo_complete)
    exchange.makeConnection(StringTransport())
    failures: list[Failure] = []
    exchange.answered.addErrback(failures.append)
    exchange.connectionLost(None)
    assert failures and failures[0].check(NoAnswer)

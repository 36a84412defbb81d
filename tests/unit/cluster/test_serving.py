"""A worker's serving pieces: the accept board, balance, draining, the debug header."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyRequest

from crackershop.cluster import master
from crackershop.cluster.board import AcceptBoard
from crackershop.cluster.serving import (
    DRAIN_UNUSED,
    MAX_DEFERRALS,
    Activity,
    Balance,
    Connections,
    HeaderResource,
)
from crackershop.server.connection import ConnectionLimits
from crackershop.server.site import ShopSite


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"hello"

    render_POST = render_GET


def connect(site: Site) -> tuple[Any, StringTransport]:
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def test_board_reports_least_busy_sibling() -> None:
    """least_other ignores the asking worker and entries nobody accepts on."""
    board = AcceptBoard.create()
    try:
        assert board.least_other(1) is None
        board.set(1, 5)
        board.set(2, 3)
        board.set(3, 7)
        assert board.least_other(1) == 3
        board.clear(2)
        assert board.least_other(1) == 7
        assert board.least_other(3) == 5
    finally:
        board.close()


def test_balance_steps_aside_only_when_ahead_and_not_forever() -> None:
    """A worker ahead of a sibling by more than one waits, at most MAX_DEFERRALS times."""
    board = AcceptBoard.create()
    try:
        connections = Connections(Clock())
        balance = Balance(board, 1, connections)
        board.set(2, 0)
        assert not balance.should_wait()
        connections.open.update({object(): Activity(0), object(): Activity(0)})
        assert [balance.should_wait() for _ in range(MAX_DEFERRALS + 1)] == [True] * (
            MAX_DEFERRALS
        ) + [False]
        board.set(2, 2)
        assert not balance.should_wait()
    finally:
        board.close()


def shop_site(clock: Clock, **limits: Any) -> ShopSite:
    return ShopSite(Hello(), 1000, timeout=60, reactor=clock, limits=ConnectionLimits(**limits))


def test_drain_leaves_idle_connections_to_their_clients_and_finishes_busy_ones() -> None:
    """Draining: a quiet connection is never closed under a client about to reuse it
    (its next request is answered with Connection: close); what is still idle at
    DRAIN_UNUSED of the grace period is closed; busy ones get Connection: close."""
    clock = Clock()
    connections = Connections(clock)
    site = shop_site(clock)
    connections.install(site)
    idle, idle_transport = connect(site)
    idle.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # answered: now idle
    unused, unused_transport = connect(site)
    busy, busy_transport = connect(site)
    busy.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers not finished yet
    late, late_transport = connect(site)
    late.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
    assert len(connections.open) == 4
    drained: list[Any] = []
    connections.drain(grace=5).addCallback(drained.append)
    clock.advance(2.0)  # quiet for two seconds: the client may be sending right now
    assert not idle_transport.disconnecting
    assert not unused_transport.disconnecting  # a request is surely on its way
    idle.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # and it was
    assert idle_transport.value().lower().count(b"connection: close") == 1
    assert idle_transport.disconnecting
    idle.connectionLost(None)
    clock.advance(5 * DRAIN_UNUSED - 2.0)
    assert unused_transport.disconnecting
    unused.connectionLost(None)
    assert not busy_transport.disconnecting
    busy.dataReceived(b"\r\n")
    assert b"hello" in busy_transport.value()
    assert b"connection: close" in busy_transport.value().lower()
    assert busy_transport.disconnecting
    busy.connectionLost(None)
    late.dataReceived(b"{}")  # its headers were read before the drain began
    assert b"connection: close" in late_transport.value().lower()
    assert late_transport.disconnecting
    late.connectionLost(None)
    clock.advance(1)
    assert drained == [None]
    assert connections.served == 4


def test_watching_keeps_the_sites_own_channel_and_limits() -> None:
    """A watched site still answers too many headers with its JSON 431 and a malformed
    head with its JSON 400: watching hooks into the site's channel, never replaces it."""
    clock = Clock()
    connections = Connections(clock)
    site = shop_site(clock, max_headers=10)
    connections.install(site)
    channel, transport = connect(site)
    assert len(connections.open) == 1
    headers = b"".join(b"X-%d: a\r\n" % i for i in range(20))
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ") and json.loads(body)["code"] == "headers_too_large"
    channel.connectionLost(None)
    assert connections.open == {}
    channel, transport = connect(site)
    channel.dataReceived(b"GARBAGE\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and json.loads(body)["code"] == "bad_request"


def test_a_site_without_limits_cannot_be_watched() -> None:
    """Installing on a bare twisted.web Site is refused rather than silently bypassing limits."""
    with pytest.raises(TypeError):
        Connections(Clock()).install(Site(Hello()))


def test_header_resource_names_the_worker() -> None:
    """The debug header wrapper adds its headers and renders the wrapped resource."""
    request = DummyRequest([b""])
    body = HeaderResource(Hello(), {b"x-worker": b"7"}).render(request)
    assert body == b"hello"
    assert request.responseHeaders.getRawHeaders(b"x-worker") == [b"7"]


def test_worker_command_for_python_and_frozen_builds(monkeypatch: Any) -> None:
    """One function decides the worker command: -m normally, `_worker` when frozen."""
    assert master.worker_command()[1][1:] == ["-m", "crackershop.cluster.worker"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert master.worker_command()[1][1:] == ["_worker"]


def test_cluster_code_does_not_import_the_app() -> None:
    """Master, supervisor and agent load without crackershop.app."""
    code = (
        "import sys; import crackershop.cluster.master, crackershop.cluster.agent;"
        "import crackershop.cluster.worker;"
        "print([m for m in sys.modules if m.startswith('crackershop.app')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_worker_entry_refuses_to_run_by_hand() -> None:
    """`crackershop _worker` outside a master exits 2 with a message."""
    code = "from crackershop.cli import main; raise SystemExit(main(['_worker']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert "started by the server's master process" in out.stderr

"""The twistd entry of the ``crackershop`` command as the frozen binary runs it."""

from __future__ import annotations

import sys

import pytest

from crackershop import cli


def test_offers_crackershop_without_plugin_discovery() -> None:
    """ServerOptions offers the crackershop ServiceMaker whatever plugins exist."""
    options = cli._server_options()()
    assert [p.tapname for p in options._getPlugins(None)] == ["crackershop"]
    options.parseOptions(["--nodaemon", "crackershop", "--port", "6123"])
    assert options.subCommand == "crackershop"
    assert options.subOptions.config.port == 6123


def test_frozen_refuses_daemon_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen build refuses twistd daemon mode with a message naming -n."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    options = cli._server_options()()
    with pytest.raises(SystemExit) as raised:
        options.parseOptions(["crackershop"])
    assert raised.value.code == cli.DAEMON_REFUSED


def test_frozen_allows_foreground(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen build runs twistd in the foreground (-n) as usual."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    options = cli._server_options()()
    options.parseOptions(["-n", "crackershop"])
    assert options["nodaemon"]


def test_not_frozen_keeps_daemon_mode() -> None:
    """The installed package keeps twistd's daemon mode."""
    options = cli._server_options()()
    options.parseOptions(["crackershop"])
    assert not options["nodaemon"]

"""Fixtures that start real processes: the embedded database and crackershop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Secantus, Server, make_admin


@pytest.fixture(scope="session")
def secantus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secantus]:
    """A standalone embedded database for tests that talk to it directly."""
    db = Secantus(tmp_path_factory.mktemp("secantus"))
    yield db
    db.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``twistd -n crackershop`` on its embedded default database."""
    workdir: Path = tmp_path_factory.mktemp("server")
    proc = Server(workdir)
    yield proc
    assert proc.stop() == 0, proc.output()[-3000:]


@pytest.fixture(scope="session")
def admin(server: Server) -> str:
    """A token of an admin made by `crackershop seed` on the shared server."""
    return make_admin(server, "root@shop.test", "admin-password-1")

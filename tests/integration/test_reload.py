"""`serve --reload` on a copy of the package: a change rolls into the
workers with no failed request; a broken change keeps the old code serving."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.integration.load import Load
from tests.support import ROOT, Secantus, Server, wait_until


def copy_package(where: Path) -> Path:
    """The crackershop package and its twistd plugin, copied to ``where``."""
    ignore = shutil.ignore_patterns("__pycache__", "dropin.cache")
    shutil.copytree(ROOT / "crackershop", where / "crackershop", ignore=ignore)
    shutil.copytree(ROOT / "twisted", where / "twisted", ignore=ignore)
    return where / "crackershop"


def test_reload_rolls_changes_in_and_keeps_broken_code_out(
    tmp_path: Path, secantus: Secantus
) -> None:
    """Nothing is restarted until a file changes; touch a module: the worker is
    replaced once under load, nothing fails; a syntax error: the error is printed
    and the same worker keeps serving."""
    package = copy_package(tmp_path / "src")
    server = Server(
        tmp_path / "srv",
        env={"PYTHONPATH": str(tmp_path / "src"), "MONGO_URI": secantus.uri + "/reload"},
        args=["--reload=true"],
    )

    def reload(status: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = status["reload"]
        return state

    try:
        server.wait_status(lambda s: reload(s)["watching"], 30, "the watcher")
        with server.client() as c:
            first = c.get("/health").headers["x-worker"]
        # the worker's own imports and the watcher's start read every module
        status = server.status()
        assert status is not None and reload(status)["changed"] == [], status
        assert first == "1"
        module = package / "app" / "service.py"
        with Load(server.url, keepalive=5, fresh=5, limit=60) as load:
            wait_until(lambda: load.ok > 50, 30, "load to start")
            module.write_text(module.read_text() + "\n# changed\n")

            def replaced() -> bool:
                with server.client() as c:
                    return c.get("/health").headers["x-worker"] != first

            wait_until(replaced, 60, "the new worker")
            settled = load.ok
            wait_until(lambda: load.ok > settled + 50, 30, "load after the reload")
        assert load.failures == [], load.failures[:5]
        status = server.status()
        assert status is not None and reload(status)["loaded"] == 1, status
        changed = reload(status)["changed"]
        assert changed and all(path.endswith("service.py") for path in changed), changed
        with server.client() as c:
            second = c.get("/health").headers["x-worker"]
        module.write_text(module.read_text() + "\ndef broken(:\n")
        status = server.wait_status(lambda s: reload(s)["refused"] == 1, 60, "the load error")
        assert "SyntaxError" in reload(status)["error"]
        assert "SyntaxError" in server.output()
        with server.client() as c:
            for _ in range(10):
                r = c.get("/health")
                assert r.status_code == 200 and r.headers["x-worker"] == second
    finally:
        assert server.stop() == 0, server.output()[-3000:]

"""The container image of deploy/Dockerfile, run for real: built by
``scripts/container-image`` (buildah from a debootstrap Debian base, no
Docker engine, no registry), started with its own entrypoint, user and
settings, asked for /health and the product list, stopped with SIGTERM.

Runs where ``scripts/container-image`` built the image (CI does it first, see
.ci/run); skipped otherwise, with the reason the script gave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support import ROOT, Process, Secantus, child_env, free_port, tool, wait_until

BUILT = ROOT / "build" / "container"


def why_skipped() -> str:
    said = BUILT / "skipped"
    if said.is_file():
        return said.read_text().strip()
    return "no container image: run scripts/container-image (root, buildah, debootstrap)"


pytestmark = pytest.mark.skipif(not (BUILT / "image.json").is_file(), reason=why_skipped())


def buildah(info: dict[str, str], *args: str) -> list[str]:
    storage = ["--storage-driver", "vfs", "--root", info["root"], "--runroot", info["runroot"]]
    return ["buildah", *storage, *args]


def run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def entry_process(runner: Process, entrypoint: str) -> psutil.Process:
    """The image's entrypoint process under ``buildah run`` (the binary's
    bootloader, whose child is the master)."""
    for child in psutil.Process(runner.pid).children(recursive=True):
        try:
            if child.cmdline()[:1] == [entrypoint] and child.parent().cmdline()[:1] != [entrypoint]:
                return child
        except psutil.Error:
            continue
    raise AssertionError("the entrypoint is not running")


def test_image_serves_and_stops_gracefully(tmp_path: Path, secantus: Secantus) -> None:
    """The image runs as its unprivileged user with its default workers, serves
    /health and a seeded product list, and exits 0 on SIGTERM after draining."""
    info = json.loads((BUILT / "image.json").read_text())
    image = json.loads(run(buildah(info, "inspect", "--type", "image", info["image"])))
    config: dict[str, Any] = image["Docker"]["config"]
    assert config["User"] == "crackershop" and config["StopSignal"] == "SIGTERM"
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    command = config["Entrypoint"] + config["Cmd"]

    uri = f"{secantus.uri}/container_{uuid.uuid4().hex[:8]}"
    seeded = subprocess.run(
        [tool("crackershop"), "seed", "--admin-password", "container-admin-1"],
        env=child_env({"MONGO_URI": uri}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr

    container = run(buildah(info, "from", "--pull-never", info["image"])).strip()
    port = free_port()
    # chroot isolation shares the host's network: the image's port 5000 may be taken
    settings = {"PORT": str(port), "MONGO_URI": uri, "JWT_SECRET": uuid.uuid4().hex * 2}
    env_args = [arg for name, value in settings.items() for arg in ("--env", f"{name}={value}")]
    runner = Process(
        buildah(info, "run", "--isolation", "chroot", *env_args, container, "--", *command),
        dict(os.environ),
        tmp_path,
        tmp_path / "container.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if runner.proc.poll() is not None:
                raise AssertionError(f"the container exited:\n{runner.output()[-3000:]}")
            return httpx.get(url + "/health", timeout=2).status_code == 200

        wait_until(healthy, 90, "the container's /health")
        health = httpx.get(url + "/health", timeout=5).json()
        assert health["success"] is True and health["environment"] == "production"
        products = httpx.get(url + "/api/v1/products", params={"limit": 5}, timeout=10)
        assert products.status_code == 200, products.text
        assert products.json()["total"] == 150 and len(products.json()["data"]) == 5

        entry = entry_process(runner, command[0])
        assert entry.uids().real != 0
        inside = entry.children(recursive=True)  # master, workers
        names = sorted({p.name() for p in inside})
        began = time.monotonic()
        os.kill(entry.pid, signal.SIGTERM)
        code = runner.proc.wait(60)
        stopped = time.monotonic() - began
        print(f"\ncontainer: {len(inside) + 1} processes {names}; SIGTERM to exit {stopped:.1f}s")
        assert code == 0, runner.output()[-3000:]
        assert "master stopped" in runner.output()
        assert len(inside) >= 3 and "redis-server" not in names
        assert [p.pid for p in [entry, *inside] if p.is_running()] == []
    finally:
        if runner.proc.poll() is None:
            runner.stop()
        subprocess.run(buildah(info, "rm", container), capture_output=True, timeout=60)

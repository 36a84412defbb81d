"""The README's command examples run as written: every ```sh block preceded
by ``<!-- readme-test -->`` is run, line by line, in the folder of a scratch
server (single process, its own database), with ``localhost:5000`` pointing
at that server. Each line must exit 0 without a traceback; text after
``#`` must appear in what the line printed (spaces compared loosely)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import BIN, ROOT, Secantus, Server, child_env

MARKER = "<!-- readme-test -->"


def blocks(text: str) -> list[str]:
    """The marked shell blocks, in order."""
    found = re.findall(re.escape(MARKER) + r"\s*```sh\n(.*?)```", text, re.DOTALL)
    assert text.count(MARKER) == len(found), "a marker not followed by a ```sh block"
    return found


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_marked_blocks_are_found() -> None:
    """The README has marked blocks, and each one has commands."""
    found = blocks((ROOT / "README.md").read_text())
    assert len(found) >= 2 and all(b.strip() for b in found)


def test_readme_commands_run_as_written(tmp_path: Path, secantus: Secantus) -> None:
    """Every line of every marked block succeeds and prints what its comment says."""
    server = Server(tmp_path, env={"MONGO_URI": secantus.uri + "/readme"}, args=["--workers", "0"])
    (tmp_path / ".venv").symlink_to(BIN.parent)  # the commands are in .venv/bin
    try:
        for block in blocks((ROOT / "README.md").read_text()):
            for line in block.splitlines():
                command, _, expected = line.partition("  #")
                if not command.strip():
                    continue
                command = command.replace("localhost:5000", f"127.0.0.1:{server.port}")
                done = subprocess.run(
                    ["bash", "-e", "-c", command],
                    cwd=tmp_path,
                    env=child_env({}),
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                shown = done.stdout + done.stderr
                if done.returncode != 0 or "Traceback" in shown:
                    pytest.fail(f"README command failed ({done.returncode}): {line}\n{shown}")
                assert squeeze(expected) in squeeze(shown), f"{line}\nprinted:\n{shown}"
    finally:
        assert server.stop() == 0, server.output()[-3000:]

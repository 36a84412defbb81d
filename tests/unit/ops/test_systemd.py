"""``crackershop install-service --print``: the systemd unit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from crackershop.cli import main
from crackershop.ops.systemd import unit


def test_unit_runs_the_server_in_the_foreground_with_graceful_signals() -> None:
    """Restart on failure, SIGTERM stop after the graceful timeout, HUP for a rolling restart."""
    text = unit(["/opt/cs/crackershop", "serve"], "shop", "/srv/shop", "/etc/shop.env", 5.0)
    assert "ExecStart=/opt/cs/crackershop serve\n" in text
    assert "User=shop\n" in text and "WorkingDirectory=/srv/shop\n" in text
    assert "EnvironmentFile=/etc/shop.env\n" in text
    assert "Restart=on-failure\n" in text and "KillSignal=SIGTERM\n" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID\n" in text
    assert "TimeoutStopSec=35\n" in text
    assert "EnvironmentFile" not in unit(["/x"], "u", "/w", None, 5.0)


def test_print_passes_systemd_analyze_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed unit (for this environment's console script) is valid for systemd."""
    assert main(["install-service", "--print", "--workdir", str(tmp_path), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("[Unit]") and " serve --workers 2\n" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    path = tmp_path / "crackershop.service"
    path.write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

"""The commands an operator types: option errors, config, serve and seed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import Process, Secantus, child_env, free_port, tool, wait_until


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=child_env(env), cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "abc"], {}, "--port='abc' is invalid: must be an integer from 0 to 65535"),
        (["--no-such-option"], {}, "option --no-such-option not recognized"),
        ([], {"NODE_ENV": "production"}, "JWT_SECRET is not set"),
        ([], {"MAX_REQUEST_SIZE": "lots"}, "MAX_REQUEST_SIZE='lots' is invalid"),
    ],
)
def test_bad_settings_stop_start_up(
    tmp_path: Path, args: list[str], env: dict, message: str
) -> None:
    """twistd crackershop refuses bad settings with one clear line and exit code 2."""
    done = run([tool("twistd"), "-n", "--pidfile=", "crackershop", *args], tmp_path, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"crackershop: {message}"] or message in lines[-1], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_config_masks_secrets(tmp_path: Path) -> None:
    """crackershop config prints every setting, with secrets masked, reading .env."""
    (tmp_path / ".env").write_text("PORT=6123\nJWT_SECRET=" + "k" * 40 + "\n")
    done = run(
        [tool("crackershop"), "config"],
        tmp_path,
        MONGO_URI="mongodb://shop:hunter2secret@db.internal:27017/shop",
    )
    assert done.returncode == 0, done.stderr
    assert "PORT" in done.stdout and "6123" in done.stdout
    assert "k" * 40 not in done.stdout and "hunter2secret" not in done.stdout
    assert "mongodb://shop:********@db.internal:27017/shop" in done.stdout


def test_serve_and_seed(tmp_path: Path, secantus: Secantus) -> None:
    """seed fills an empty database once (--force adds nothing twice); serve serves it."""
    uri = secantus.uri + "/seed_test"
    seeded = run(
        [tool("crackershop"), "seed", "--admin-email", "boss@shop.test"],
        tmp_path,
        MONGO_URI=uri,
        BCRYPT_ROUNDS="4",
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 10 categories and 150 products" in seeded.stdout
    password = seeded.stdout.split("password: ")[1].split()[0]
    refused = run([tool("crackershop"), "seed"], tmp_path, MONGO_URI=uri)
    assert refused.returncode == 1 and "--force" in refused.stderr
    forced = run(
        [tool("crackershop"), "seed", "--force", "--admin-email", "boss@shop.test"],
        tmp_path,
        MONGO_URI=uri,
        BCRYPT_ROUNDS="4",
    )
    assert forced.returncode == 0, forced.stderr
    assert "password:" not in forced.stdout  # the existing admin keeps their password

    port = free_port()
    server = Process(
        [tool("crackershop"), "serve", "--port", str(port), "--host", "127.0.0.1"],
        child_env({"MONGO_URI": uri, "JWT_SECRET": "j" * 40}),
        tmp_path,
        tmp_path / "serve.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/ready").status_code == 200, 60, "serve to be ready")
        products = httpx.get(url + "/api/v1/products", params={"limit": 100}).json()
        assert products["total"] == 150
        categories = httpx.get(url + "/api/v1/categories").json()
        assert len(categories["data"]) == 10
        login = httpx.post(
            url + "/api/v1/auth/login", json={"email": "boss@shop.test", "password": password}
        )
        assert login.status_code == 200 and login.json()["data"]["role"] == "admin"
    finally:
        assert server.stop() == 0, server.output()

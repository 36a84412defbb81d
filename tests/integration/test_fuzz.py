"""Every route of /openapi.json driven with generated input (schemathesis)
against the real server and database, as an admin and as a customer.

Bounded: at most FUZZ_EXAMPLES cases per operation and phase, and
FUZZ_SECONDS of wall-clock per run. Fails on any 5xx, any status or body
that the document does not allow, any traceback or source path in a
response, and any unhandled error in the server's log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.google_keys import CLIENT_ID, FakeGoogle
from tests.integration.test_google import google  # noqa: F401 (a fixture)
from tests.support import ROOT, Secantus, Server, make_admin, register, tool, unique

pytest.importorskip("schemathesis", reason="schemathesis needs Python 3.11+")

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "35"))
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,no_internals"
)


def fuzz(server: Server, token: str, workdir: Path, seed: int) -> tuple[int, str]:
    """One bounded schemathesis run with this bearer token; exit code and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    env["SCHEMATHESIS_HOOKS"] = "tests.integration.fuzz_checks"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [
            tool("schemathesis"),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--max-time",
            str(FUZZ_SECONDS),
            "--workers",
            "1",
            "--seed",
            str(seed),
            "--checks",
            CHECKS,
            "--generation-database",
            "none",
            "--no-color",
        ],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
    )
    return done.returncode, done.stdout + done.stderr


def test_fuzz_every_route(
    tmp_path: Path,
    secantus: Secantus,
    google: tuple[FakeGoogle, str],  # noqa: F811
) -> None:
    """No generated request gets a 5xx, an undocumented status or body, or leaks internals."""
    _, keys_url = google
    server = Server(
        tmp_path / "srv",
        env={
            "MONGO_URI": f"{secantus.uri}/fuzz_{unique('db').replace('-', '_')}",
            "GOOGLE_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CERTS_URL": keys_url,
        },
    )
    try:
        admin = make_admin(server, "fuzz-admin@shop.test", "admin-password-1")
        with server.client() as c:
            customer = register(c, unique("fuzz") + "@example.com")["token"]
            routes = sum(len(ops) for ops in c.get("/openapi.json").json()["paths"].values())
        started = time.monotonic()
        cases = 0
        for seed, token in ((1, admin), (2, customer)):
            code, output = fuzz(server, token, tmp_path, seed)
            sys.stdout.write(output[-1500:])
            assert code == 0, output[-8000:]
            found = re.search(r"(\d+) generated", output)
            assert found, output[-2000:]
            cases += int(found.group(1))
        elapsed = time.monotonic() - started
        sys.stdout.write(f"\nfuzzed {routes} routes with {cases} cases in {elapsed:.0f}s\n")
        assert cases >= routes * 2
    finally:
        assert server.stop() == 0, server.output()[-3000:]
    log = server.output()
    assert "Traceback" not in log, log[-5000:]
    assert "unhandled error" not in log.lower(), log[-5000:]

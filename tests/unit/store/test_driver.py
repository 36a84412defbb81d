"""A serving process's pymongo: the standard library's TLS, without requests."""

from __future__ import annotations

import platform
import subprocess
import sys

PROBE = """
import sys
{prepare}
import pymongo, pymongo.errors, txmongo
from pymongo.uri_parser import parse_uri
parse_uri("mongodb://127.0.0.1:27017/shop?tls=true")
print("requests" in sys.modules, "pymongo.pyopenssl_context" in sys.modules and
      sys.modules["pymongo.pyopenssl_context"] is not None)
"""


def probe(prepare: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(prepare=prepare)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_serving_imports_keep_requests_and_pyopenssl_out_of_pymongo() -> None:
    """After serving_imports, pymongo and txmongo load (a TLS URI still parses)
    without pyOpenSSL's context or requests; without it, CPython's pymongo loads
    both (PyPy's falls back to the standard library by itself)."""
    if platform.python_implementation() == "CPython":
        assert probe("") == "True True"
    prepared = "from crackershop.store.driver import serving_imports; serving_imports()"
    assert probe(prepared) == "False False"

"""pymongo as a serving process uses it.

A serving process talks to MongoDB through txmongo, over Twisted's own
TCP and TLS; of pymongo it uses the errors, BSON and URI parsing only. On
import, pymongo picks a TLS context for its own connections: pyOpenSSL's
when it is installed (it is, for Twisted's TLS), which brings its OCSP
support and, with it, ``requests`` and its dependencies (about 130 modules,
5 MB of memory per process) that such a process never calls. A serving
process therefore keeps pymongo to the standard library's ``ssl``
(:func:`serving_imports`, called before anything imports pymongo). The
commands that connect through pymongo itself (``crackershop seed`` ...)
do not call it, and keep OCSP checking.
"""

from __future__ import annotations

import sys

# the module pymongo tries first; an entry of None makes its import fail
# (ImportError), and pymongo falls back to the standard library
PYOPENSSL_CONTEXT = "pymongo.pyopenssl_context"


def serving_imports() -> None:
    """Before pymongo is imported: let it not load pyOpenSSL's context."""
    if "pymongo" not in sys.modules:
        sys.modules.setdefault(PYOPENSSL_CONTEXT, None)  # type: ignore[arg-type]

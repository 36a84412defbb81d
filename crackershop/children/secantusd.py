"""The embedded database's own process in the single-file binary:
``crackershop _database [secantusd-py options]`` runs SecantusDB's server,
as ``secantusd-py`` does from the installed package.

SecantusDB is GPL-2.0: it is imported here only, in the process this
private sub-command starts, and never into a crackershop server, worker or
command, which start it as a child and speak to it over the MongoDB wire
protocol, as they do to ``secantusd-py``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    try:
        from secantus.cli import main as secantus_main
    except ImportError:
        sys.stderr.write("crackershop: this build does not carry the embedded database\n")
        return 1
    sys.argv = ["secantusd-py", *argv]  # its usage and errors name the program
    return int(secantus_main(list(argv)) or 0)

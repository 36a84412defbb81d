"""The frozen binary's entry point (see scripts/crackershop.spec)."""

from __future__ import annotations

from crackershop.cli import entry

if __name__ == "__main__":
    entry()

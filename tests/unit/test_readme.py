"""The README's settings table is the one the code declares."""

from __future__ import annotations

from pathlib import Path

from crackershop.config import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_table_matches_the_declarations() -> None:
    """Regenerate with `crackershop config --markdown` when a setting changes."""
    text = README.read_text()
    begin = text.index("<!-- settings:begin")
    start = text.index("\n", begin) + 1
    end = text.index("<!-- settings:end -->")
    assert text[start:end] == markdown_table()

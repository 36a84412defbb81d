"""Query-string arguments shared by the list routes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Optional

from crackershop.errors import ValidationFailed

MAX_LIMIT = 100
MAX_SEARCH = 100


def int_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed("Invalid query", {name: f"must be an integer from {low} to {high}"})
    return value


def price_arg(args: Mapping[str, str], name: str) -> Optional[float]:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValidationFailed("Invalid query", {name: "must be a non-negative number"})
    return value


def flag(args: Mapping[str, str], name: str) -> bool:
    raw = args.get(name)
    if raw is None or raw in ("", "false"):
        return False
    if raw == "true":
        return True
    raise ValidationFailed("Invalid query", {name: "must be true or false"})


def search_text(raw: Optional[str]) -> Optional[str]:
    if raw is None:
        return None
    text = raw.strip()
    if len(text) > MAX_SEARCH:
        raise ValidationFailed("Invalid query", {"search": f"at most {MAX_SEARCH} characters"})
    return text or None


def page_args(args: Mapping[str, str]) -> dict[str, int]:
    return {
        "page": int_arg(args, "page", 1, 1, 1_000_000),
        "limit": int_arg(args, "limit", 10, 1, MAX_LIMIT),
    }

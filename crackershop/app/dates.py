"""Calendar days as the shop's admins type them.

The app's savings-scheme screens send a due date as free text: ``""`` (no
date), ``"10th Jan 2026"``, or whatever the admin typed. A text that names
a whole day is read as that day (midnight UTC); anything else stays text.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Optional

FORMATS = (
    "%d %b %Y",  # 10 Jan 2026 (after "10th" becomes "10")
    "%d %B %Y",  # 10 January 2026
    "%b %d %Y",  # Jan 10 2026 (after the comma goes)
    "%B %d %Y",
    "%Y-%m-%d",
    "%d/%m/%Y",  # Indian order: day first
    "%d-%m-%Y",
    "%d.%m.%Y",
)
ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b", re.IGNORECASE)


def parse_day(text: str) -> Optional[datetime]:
    """The day the text names, as midnight UTC; None if it names no whole day."""
    cleaned = ORDINAL.sub(r"\1", text.strip()).replace(",", " ")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        return None
    for pattern in FORMATS:
        try:
            day = datetime.strptime(cleaned, pattern).date()
        except ValueError:
            continue
        return midnight(day)
    try:  # an ISO timestamp, as this server writes dates
        stamp = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        return None
    return midnight(stamp.date())


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def days_until(day: datetime, now: datetime) -> int:
    """Whole calendar days from today to ``day`` (0: today, negative: past)."""
    return (day.date() - now.astimezone(timezone.utc).date()).days

"""Dates as people in England write and read them (en-GB: 14/03/2016), for the hub's pages.

Browsers show an `<input type="date">` in the browser's own locale (a US browser asks for
03/14/2016), so the pages take dates as text and read them here, on the server. The
GraphQL API keeps ISO 8601.
"""

from __future__ import annotations

import re
from datetime import date, datetime

EXAMPLE = "31/01/2020"
_EN_GB = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse(text: str, label: str) -> date:
    """A day written dd/mm/yyyy (ISO yyyy-mm-dd also read). Raises ValueError naming the
    field (`label`) and the expected format, never echoing what was typed."""
    text = text.strip()
    found = _EN_GB.fullmatch(text)
    try:
        if found:
            day, month, year = (int(g) for g in found.groups())
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{label} is not a date: write it as dd/mm/yyyy, e.g. {EXAMPLE}") from None


def day(value: date) -> str:
    """14/03/2016."""
    return value.strftime("%d/%m/%Y")


def moment(value: datetime) -> str:
    """14/03/2016 09:05:00 GMT (in the zone `value` is in)."""
    return value.strftime("%d/%m/%Y %H:%M:%S %Z").strip()

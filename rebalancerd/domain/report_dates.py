"""Dates in research report lines: ``2026-11-15``, ``11/15``, ``Nov 15``, ``November 15th, 2026``.

Pure. A date without a year is resolved against the report's own date: the
earliest such calendar date no more than :data:`DATE_LOOKBACK_DAYS` before it,
so a December report's "Jan 10" is next January and its "Nov 15" last month.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

#: A date without a year may lie at most this many days before the report.
DATE_LOOKBACK_DAYS = 62


_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_DATE_RE = re.compile(
    r"(?<![\w-])(?P<iy>[0-9]{4})-(?P<im>[0-9]{2})-(?P<id>[0-9]{2})(?![\w-])"
    r"|(?<![\w/.$-])(?P<um>[0-9]{1,2})/(?P<ud>[0-9]{1,2})(?:/(?P<uy>[0-9]{4}|[0-9]{2}))?"
    r"(?![\w/%]|\.[0-9])"
    r"|\b(?P<nm>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?\s+(?P<nd>[0-9]{1,2})"
    r"(?:st|nd|rd|th)?(?![\w%]|\s*%|\.[0-9]|:[0-9])(?:,?\s+(?P<ny>(?:19|20)[0-9]{2})\b)?",
    re.IGNORECASE,
)


def resolve_month_day(month: int, day: int, report_date: date) -> date | None:
    """The earliest ``month``/``day`` on or after ``report_date - DATE_LOOKBACK_DAYS``.

    ``None`` when no year around the report has that calendar date (Feb 30).
    """
    earliest = report_date - timedelta(days=DATE_LOOKBACK_DAYS)
    for year in range(report_date.year - 1, report_date.year + 2):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= earliest:
            return candidate
    return None


def dates_in(text: str, report_date: date) -> list[tuple[bool, date, str]]:
    """Every date on the line: (inside parentheses, date, matched text).

    Raises ``ValueError`` (with the token) for a date-shaped token that is no date.
    """
    found: list[tuple[bool, date, str]] = []
    for m in _DATE_RE.finditer(text):
        token = m.group(0)
        year: int | None
        if m["iy"]:
            year, month, day = int(m["iy"]), int(m["im"]), int(m["id"])
        elif m["um"]:
            month, day = int(m["um"]), int(m["ud"])
            if not (1 <= month <= 12 and 1 <= day <= 31):
                continue  # "13/5", "3/45": not date-shaped, just numbers
            year = None if m["uy"] is None else int(m["uy"])
            if year is not None and year < 100:
                year += 2000
        else:
            if m["nm"].islower():
                continue  # "may 20" is prose
            month, day = _MONTHS[m["nm"][:3].lower()], int(m["nd"])
            year = None if m["ny"] is None else int(m["ny"])
        resolved: date | None
        if year is None:
            resolved = resolve_month_day(month, day, report_date)
        else:
            try:
                resolved = date(year, month, day)
            except ValueError:
                resolved = None
        if resolved is None:
            raise ValueError(token)
        inside = text[: m.start()].count("(") > text[: m.start()].count(")")
        found.append((inside, resolved, token))
    return found


def catalyst_date(text: str, report_date: date) -> date | None:
    """The line's catalyst date: the last date in parentheses, else the last date."""
    found = dates_in(text, report_date)
    if not found:
        return None
    in_parens = [d for inside, d, _ in found if inside]
    return in_parens[-1] if in_parens else found[-1][1]

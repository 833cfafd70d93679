"""ISO-8601 durations and timestamps as people write them in templates and configuration.

Durations take weeks, days, hours, minutes and seconds (``P3D``, ``PT12H``, ``P1DT6H30M``, ``P2W``);
years and months are refused because their length varies. Timestamps must carry a time zone, since a
naive one means a different instant in every Region. Error messages start with the value quoted, so a
caller can put the property's name in front of them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# P[nY][nM][nW][nD][T[nH][nM][nS]]; every part optional, whole numbers only.
_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)
_FRACTION = re.compile(r"\d[.,]\d")
_EXAMPLES = "such as P3D, PT12H or P1DT6H30M"


def parse_duration(text: str, *, allow_zero: bool = False) -> timedelta:
    """The length of an ISO-8601 duration in weeks, days, hours, minutes and seconds.

    >>> parse_duration("P1DT6H30M")
    datetime.timedelta(days=1, seconds=23400)
    >>> parse_duration("P1M")
    Traceback (most recent call last):
    ...
    ValueError: 'P1M' counts in years or months, whose length varies; use days or weeks instead, such as P30D.
    """
    cleaned = text.strip().upper()
    if not cleaned:
        raise ValueError(f"is empty; give an ISO-8601 duration {_EXAMPLES}.")
    match = _DURATION.fullmatch(cleaned)
    if match is None or cleaned == "P":
        if _FRACTION.search(cleaned):
            raise ValueError(f"'{text}' has a fraction; use whole numbers of a smaller unit (PT90M, not PT1.5H).")
        raise ValueError(f"'{text}' is not an ISO-8601 duration {_EXAMPLES}.")
    if match["years"] or match["months"]:
        raise ValueError(
            f"'{text}' counts in years or months, whose length varies; use days or weeks instead, such as P30D."
        )
    units = ("weeks", "days", "hours", "minutes", "seconds")
    try:
        length = timedelta(**{unit: int(match[unit]) for unit in units if match[unit]})
    except (OverflowError, ValueError):  # beyond timedelta's range, or beyond int's digit limit
        raise ValueError(f"'{text}' is too long.") from None
    if not allow_zero and length == timedelta(0):
        raise ValueError(f"'{text}' is zero; give a length {_EXAMPLES}.")
    return length


def format_duration(length: timedelta) -> str:
    """The ISO-8601 form of ``length`` in days, hours, minutes and whole seconds (the inverse of parse_duration).

    >>> format_duration(timedelta(days=14)), format_duration(timedelta(minutes=90)), format_duration(timedelta())
    ('P14D', 'PT1H30M', 'PT0S')
    """
    if length < timedelta(0):
        raise ValueError(f"A duration cannot be negative, got {length}.")
    hours, rest = divmod(length.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    day_part = f"{length.days}D" if length.days else ""
    time_part = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if value)
    if not day_part and not time_part:
        return "PT0S"
    return f"P{day_part}" + (f"T{time_part}" if time_part else "")


def parse_timestamp(text: str) -> datetime:
    """An ISO-8601 timestamp with ``Z`` or an offset, as an aware datetime in UTC.

    >>> parse_timestamp("2026-11-22T11:00:00+01:00")
    datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.timezone.utc)
    """
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO-8601 timestamp such as 2026-11-22T10:00:00Z.") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"'{text}' has no time zone; add Z for UTC or an offset such as +01:00.")
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """``moment`` in UTC to the second, as written in tags and shown to people.

    >>> format_timestamp(parse_timestamp("2026-11-22T11:00:00.5+01:00"))
    '2026-11-22T10:00:00Z'
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; only aware datetimes can be written in UTC.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

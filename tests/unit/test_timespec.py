"""ISO-8601 durations and timestamps: what template authors write is read exactly, the rest refused in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aurora_clone.timespec import format_duration, format_timestamp, parse_duration, parse_timestamp


@pytest.mark.parametrize(
    ("text", "length"),
    [
        pytest.param("P3D", timedelta(days=3), id="days"),
        pytest.param("PT12H", timedelta(hours=12), id="hours"),
        pytest.param("P1DT6H30M", timedelta(days=1, hours=6, minutes=30), id="days-hours-minutes"),
        pytest.param("PT90M", timedelta(minutes=90), id="minutes-over-an-hour"),
        pytest.param("P2W", timedelta(weeks=2), id="weeks"),
        pytest.param("P1W2D", timedelta(days=9), id="weeks-and-days"),
        pytest.param("PT45S", timedelta(seconds=45), id="seconds"),
        pytest.param("PT0H30M", timedelta(minutes=30), id="zero-part-nonzero-total"),
        pytest.param("p3d", timedelta(days=3), id="lower-case"),
        pytest.param(" P3D ", timedelta(days=3), id="padded"),
    ],
)
def test_duration_written_by_users_parsed(text: str, length: timedelta) -> None:
    assert parse_duration(text) == length


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("P", "not an ISO-8601 duration", id="designator-only"),
        pytest.param("PT", "not an ISO-8601 duration", id="time-designator-only"),
        pytest.param("P1DT", "not an ISO-8601 duration", id="dangling-time-designator"),
        pytest.param("3D", "not an ISO-8601 duration", id="no-designator"),
        pytest.param("P1D2H", "not an ISO-8601 duration", id="hours-without-T"),
        pytest.param("PT1H2", "not an ISO-8601 duration", id="number-without-unit"),
        pytest.param("-P1D", "not an ISO-8601 duration", id="negative"),
        pytest.param("3 days", "not an ISO-8601 duration", id="words"),
        pytest.param("P1Y", "years or months", id="years"),
        pytest.param("P1M", "years or months", id="months"),
        pytest.param("P1Y2M3D", "years or months", id="years-months-days"),
        pytest.param("P0Y3D", "years or months", id="zero-years-still-years"),
        pytest.param("P1.5D", "fraction", id="fraction-dot"),
        pytest.param("PT1,5H", "fraction", id="fraction-comma"),
        pytest.param("P0D", "zero", id="zero-days"),
        pytest.param("PT0S", "zero", id="zero-seconds"),
        pytest.param("P0DT0H0M", "zero", id="all-parts-zero"),
        pytest.param("P99999999999D", "too long", id="beyond-timedelta"),
        pytest.param("PT" + "9" * 5000 + "S", "too long", id="beyond-int-digits"),
    ],
)
def test_duration_invalid_refused_in_words(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        parse_duration(text)

    message = str(raised.value)
    assert message.endswith(".")
    if text.strip():
        assert message.startswith(f"'{text}'")  # so a caller can put the property's name in front


@pytest.mark.parametrize(
    ("length", "text"),
    [
        pytest.param(timedelta(days=3), "P3D", id="days"),
        pytest.param(timedelta(weeks=2), "P14D", id="weeks-as-days"),
        pytest.param(timedelta(hours=12), "PT12H", id="hours"),
        pytest.param(timedelta(minutes=90), "PT1H30M", id="minutes-carried"),
        pytest.param(timedelta(days=1, hours=6, minutes=30), "P1DT6H30M", id="days-hours-minutes"),
        pytest.param(timedelta(days=2, seconds=5), "P2DT5S", id="days-seconds"),
        pytest.param(timedelta(seconds=59, microseconds=900), "PT59S", id="microseconds-dropped"),
        pytest.param(timedelta(0), "PT0S", id="zero"),
    ],
)
def test_duration_formatted_iso(length: timedelta, text: str) -> None:
    assert format_duration(length) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("P3D", id="days"),
        pytest.param("PT12H", id="hours"),
        pytest.param("P1DT6H30M", id="mixed"),
        pytest.param("P10DT23H59M59S", id="every-part"),
    ],
)
def test_duration_round_trip_unchanged(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_duration_negative_format_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(hours=-1))


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        pytest.param("2026-11-22T10:00:00Z", datetime(2026, 11, 22, 10, tzinfo=UTC), id="zulu"),
        pytest.param("2026-11-22T11:00:00+01:00", datetime(2026, 11, 22, 10, tzinfo=UTC), id="east-offset"),
        pytest.param("2026-11-22T05:00:00-05:00", datetime(2026, 11, 22, 10, tzinfo=UTC), id="west-offset"),
        pytest.param("2026-11-22T10:00:00+00:00", datetime(2026, 11, 22, 10, tzinfo=UTC), id="zero-offset"),
        pytest.param("2026-11-22T10:00:00.250Z", datetime(2026, 11, 22, 10, 0, 0, 250000, tzinfo=UTC), id="fraction"),
        pytest.param("2026-11-22T10:00Z", datetime(2026, 11, 22, 10, tzinfo=UTC), id="no-seconds"),
        pytest.param(" 2026-11-22T10:00:00Z ", datetime(2026, 11, 22, 10, tzinfo=UTC), id="padded"),
    ],
)
def test_timestamp_with_zone_parsed_to_utc(text: str, moment: datetime) -> None:
    parsed = parse_timestamp(text)

    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("2026-11-22T10:00:00", "no time zone", id="naive"),
        pytest.param("2026-11-22", "no time zone", id="date-only"),
        pytest.param("", "not an ISO-8601 timestamp", id="empty"),
        pytest.param("yesterday", "not an ISO-8601 timestamp", id="words"),
        pytest.param("2026-13-01T00:00:00Z", "not an ISO-8601 timestamp", id="month-13"),
        pytest.param("22/11/2026 10:00 UTC", "not an ISO-8601 timestamp", id="local-format"),
    ],
)
def test_timestamp_invalid_refused_in_words(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        parse_timestamp(text)

    assert str(raised.value).startswith(f"'{text}'")


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(datetime(2026, 11, 22, 10, tzinfo=UTC), "2026-11-22T10:00:00Z", id="utc"),
        pytest.param(
            datetime(2026, 11, 22, 11, tzinfo=timezone(timedelta(hours=1))), "2026-11-22T10:00:00Z", id="offset"
        ),
        pytest.param(datetime(2026, 11, 22, 10, 0, 0, 999999, tzinfo=UTC), "2026-11-22T10:00:00Z", id="to-second"),
        pytest.param(
            datetime(2026, 11, 22, 23, 30, tzinfo=timezone(timedelta(hours=-2))),
            "2026-11-23T01:30:00Z",
            id="next-day-in-utc",
        ),
    ],
)
def test_timestamp_formatted_utc(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


def test_timestamp_naive_format_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        format_timestamp(datetime(2026, 11, 22, 10))


def test_timestamp_round_trip_unchanged() -> None:
    text = "2026-11-22T10:00:00Z"

    assert format_timestamp(parse_timestamp(text)) == text

"""The one clock and the one form of time in records: timezone-aware UTC, ISO 8601 in JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (SQLite hands back naive ones, stored as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """`to_utc`, passing None through."""
    return None if moment is None else to_utc(moment)


def iso(moment: datetime | date | None) -> str | None:
    """ISO 8601 text of a datetime (UTC) or date, for JSON."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return to_utc(moment).isoformat()
    return moment.isoformat()

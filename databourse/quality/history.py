"""A dataset's validation history, read back from the reports zone.

Every validation leaves `reports/<provider>/<dataset>/<ingest-id>/quality.json` (the store keeps
them), so the history is those files, newest first; nothing else is written for it. Only
figures are taken from them (date, verdict, rows, counts, scores), each checked for its type,
so a page built from them can hold nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from databourse.errors import StorageError
from databourse.quality.score import DIMENSION_NAMES
from databourse.storage import zones

if TYPE_CHECKING:
    from databourse.storage.store import ObjectStore

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 50  # runs read for a page, newest first


@dataclass(frozen=True)
class PastRun:
    """One validation of a dataset: when, its verdict and figures (never a value of the data)."""

    ingest_id: str
    validated_at: dt.datetime | None
    success: bool | None
    rows: int | None
    passed: int | None
    total: int | None
    overall: float | None
    not_measured: tuple[str, ...] = ()


@dataclass(frozen=True)
class History:
    """The runs read (newest first), how many reports exist and how many could not be read."""

    runs: list[PastRun] = field(default_factory=list)
    found: int = 0
    unreadable: int = 0


def read_history(
    store: ObjectStore, provider: str, dataset: str, limit: int = HISTORY_LIMIT
) -> History:
    """The dataset's past validations from its `quality.json` reports, newest first."""
    base = zones.join("reports", provider, dataset)
    found: list[tuple[str, dt.datetime | None]] = []
    for info in store.list(f"{base}/"):
        parts = info.key.split("/")
        if len(parts) == 5 and parts[4] == "quality.json":
            found.append((info.key, info.modified))
    runs: list[PastRun] = []
    unreadable = 0
    for key, modified in found:
        try:
            runs.append(past_run(key.split("/")[3], json.loads(store.get_bytes(key)), modified))
        except (StorageError, ValueError, TypeError):  # the message may quote the file: not kept
            unreadable += 1
            logger.warning("quality history: %s could not be read", key)
    runs.sort(key=_newest_first)
    return History(runs=runs[:limit], found=len(found), unreadable=unreadable)


def past_run(ingest_id: str, report: dict[str, Any], modified: dt.datetime | None) -> PastRun:
    """The figures of one `quality.json`; a field of the wrong type is left out (None)."""
    if not isinstance(report, dict):
        raise TypeError("a quality report is a JSON object")
    results = report.get("results")
    results = results if isinstance(results, list) else None
    raw_scores = report.get("scores")
    scored: dict[str, Any] = raw_scores if isinstance(raw_scores, dict) else {}
    measured = {k: _number(scored.get(k)) for k in DIMENSION_NAMES}
    return PastRun(
        ingest_id=zones.safe_part(ingest_id),
        validated_at=_moment(report.get("validated_at")) or modified,
        success=report["success"] if isinstance(report.get("success"), bool) else None,
        rows=_count(report.get("rows")),
        passed=None
        if results is None
        else sum(1 for r in results if isinstance(r, dict) and r.get("success") is True),
        total=None if results is None else len(results),
        overall=_number(scored.get("overall")),
        not_measured=tuple(k for k, v in measured.items() if v is None) if scored else (),
    )


def _newest_first(run: PastRun) -> tuple[bool, float, str]:
    when = run.validated_at
    return (when is None, -(when.timestamp() if when else 0.0), run.ingest_id)


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _count(value: Any) -> int | None:
    return (
        int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)

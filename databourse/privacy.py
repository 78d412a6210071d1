"""k-anonymity of a table over its quasi-identifiers: equivalence classes, check, and enforcement.

An equivalence class is the set of records sharing one combination of quasi-identifier values; a
null is a value like any other, so records with a null quasi-identifier form their own class
rather than escaping the count. Enforcement suppresses (removes) every record of a class smaller
than k, within the model's limit on the share of records that may be suppressed.
Reports and errors carry figures and column names only, never a cell value.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import PrivacyModel
from databourse.errors import PrivacyModelFailed

log = logging.getLogger(__name__)

COUNT = "count"
_ROW = "__databourse_row"


@dataclass(frozen=True)
class KAnonymityReport:
    """Figures of one k-anonymity check or enforcement: sizes, classes and whether k holds."""

    k: int
    quasi_identifiers: list[str]
    rows_in: int
    rows_out: int
    suppressed: int
    suppression_rate: float
    classes: int  # equivalence classes in the output
    smallest_class: int  # 0 when the output is empty
    average_class: float  # 0.0 when the output is empty
    max_suppression: float
    satisfied: bool  # output non-empty, every class >= k, suppression within the limit

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (figures and column names only)."""
        return dataclasses.asdict(self)


def _check_columns(table: pa.Table, quasi_identifiers: list[str]) -> None:
    if not quasi_identifiers:
        raise ValueError("k-anonymity needs at least one quasi-identifier")
    missing = [q for q in quasi_identifiers if q not in table.column_names]
    if missing:
        raise PrivacyModelFailed(
            f"quasi-identifier column(s) {missing} are not in the table; check the product's "
            "privacy.quasi_identifiers against its output columns",
            columns=missing,
        )
    if _ROW in quasi_identifiers:
        raise ValueError(f"a quasi-identifier may not be named {_ROW!r}")


def equivalence_classes(table: pa.Table, quasi_identifiers: list[str]) -> pa.Table:
    """One row per class: its quasi-identifier values and its size in column `count`."""
    _check_columns(table, quasi_identifiers)
    if COUNT in quasi_identifiers:
        raise ValueError(f"a quasi-identifier may not be named {COUNT!r}, the class size column")
    grouped = (
        table.select(quasi_identifiers)
        .group_by(quasi_identifiers, use_threads=False)  # deterministic order: first seen
        .aggregate([([], "count_all")])
    )
    return grouped.rename_columns([*quasi_identifiers, COUNT])


def _report(
    model: PrivacyModel, rows_in: int, counts: pa.Array | pa.ChunkedArray
) -> KAnonymityReport:
    """Report on an output whose class sizes are `counts`."""
    rows_out = int(pc.sum(counts).as_py() or 0)
    classes = len(counts)
    smallest = int(pc.min(counts).as_py() or 0)
    suppressed = rows_in - rows_out
    rate = suppressed / rows_in if rows_in else 0.0
    return KAnonymityReport(
        k=model.k,
        quasi_identifiers=list(model.quasi_identifiers),
        rows_in=rows_in,
        rows_out=rows_out,
        suppressed=suppressed,
        suppression_rate=rate,
        classes=classes,
        smallest_class=smallest,
        average_class=rows_out / classes if classes else 0.0,
        max_suppression=model.max_suppression,
        satisfied=rows_out > 0 and smallest >= model.k and rate <= model.max_suppression,
    )


def check_k_anonymity(table: pa.Table, model: PrivacyModel) -> KAnonymityReport:
    """Re-check a table as it is (no suppression): does every class hold at least k records?"""
    classes = equivalence_classes(table, model.quasi_identifiers)
    return _report(model, table.num_rows, classes.column(COUNT))


def enforce_k_anonymity(table: pa.Table, model: PrivacyModel) -> tuple[pa.Table, KAnonymityReport]:
    """Suppress records of classes smaller than k, keeping row order; fail past max_suppression."""
    _check_columns(table, model.quasi_identifiers)
    qis = list(model.quasi_identifiers)
    # Group row numbers by class: group_by keeps nulls as a class of their own (a join would not
    # match them), and the kept row numbers come back without any per-row Python.
    rows = pa.table(
        [*table.select(qis).columns, pa.array(range(table.num_rows), pa.int64())],
        names=[*qis, _ROW],
    )
    grouped = rows.group_by(qis, use_threads=False).aggregate([(_ROW, "list"), ([], "count_all")])
    big = pc.greater_equal(grouped.column("count_all"), model.k)
    kept_classes = grouped.filter(big)
    kept_rows = pc.list_flatten(kept_classes.column(f"{_ROW}_list"))
    kept_rows = pc.take(kept_rows, pc.sort_indices(kept_rows))  # back to input order
    report = _report(model, table.num_rows, kept_classes.column("count_all"))
    log.info(
        "k-anonymity k=%d over %d quasi-identifier(s): %d of %d rows kept, %d suppressed from "
        "%d small class(es), %d classes remain",
        model.k,
        len(qis),
        report.rows_out,
        report.rows_in,
        report.suppressed,
        grouped.num_rows - kept_classes.num_rows,
        report.classes,
    )
    if not report.satisfied:
        raise _failure(report, small_classes=grouped.num_rows - kept_classes.num_rows)
    return table.take(kept_rows), report


def _failure(report: KAnonymityReport, small_classes: int) -> PrivacyModelFailed:
    """The error for a model that cannot be met, with the report's figures as attributes."""
    hint = (
        "; generalize the quasi-identifiers further (wider bands, coarser dates, shorter "
        "prefixes) or raise max_suppression"
    )
    if report.rows_in == 0:
        why, hint = "the table is empty: nothing to publish", ""
    elif report.rows_out == 0:
        why = f"all {report.rows_in} records fall in classes smaller than k: nothing to publish"
    else:
        why = (
            f"suppressing {report.suppressed} of {report.rows_in} records "
            f"({report.suppression_rate:.1%}) exceeds the limit of {report.max_suppression:.1%}"
        )
    return PrivacyModelFailed(
        f"k-anonymity with k={report.k} over {report.quasi_identifiers} cannot be met: {why}{hint}",
        k=report.k,
        suppressed=report.suppressed,
        rows=report.rows_in,
        classes=report.classes,
        small_classes=small_classes,
        suppression_rate=report.suppression_rate,
        max_suppression=report.max_suppression,
        report=report.to_json(),
    )

"""k-anonymity of a table over its quasi-identifiers: equivalence classes, check, and enforcement.

An equivalence class is the set of records sharing one combination of quasi-identifier values; a
null is a value like any other, so records with a null quasi-identifier form their own class
rather than escaping the count. Enforcement suppresses (removes) every record of a class that
breaks the model (k, l, t; the rule is `criteria.release`), within the model's limit on the
share of records that may be suppressed; a failure names the criterion that cannot be met.
Reports and errors carry figures and column names only, never a cell value.

Every decision is made on grouped counts (`databourse.grouping`): the distinct combinations
of the quasi-identifier and sensitive values with their number of records, so a table decided in
partitions gets the decision, and the figures to the last bit, of the whole; `kept_rows` then
applies it to any batch of records, in row order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from databourse.config import PrivacyModel
from databourse.errors import PrivacyModelFailed
from databourse.grouping import WEIGHT, ClassIndex, group_counts, merge_groups
from databourse.privacy.criteria import Release, distance, diversity, release

log = logging.getLogger(__name__)

COUNT = "count"


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
    satisfied: bool  # output non-empty, every class meets the model, suppression within limit
    sensitive_attributes: list[str] = dataclasses.field(default_factory=list)
    l: int | None = None  # noqa: E741
    l_diversity: str | None = None
    lowest_l: float | None = None  # distinct: fewest values in a class; entropy: min exp(entropy)
    t: float | None = None
    highest_t: float | None = None  # largest distance of a class to the whole output table

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (figures and column names only)."""
        return dataclasses.asdict(self)


def check_model_columns(
    names: Sequence[str], quasi_identifiers: list[str], other: Sequence[str] = ()
) -> None:
    """PrivacyModelFailed naming the model's columns missing from `names`."""
    if not quasi_identifiers:
        raise ValueError("k-anonymity needs at least one quasi-identifier")
    missing = [q for q in [*quasi_identifiers, *other] if q not in names]
    if missing:
        raise PrivacyModelFailed(
            f"quasi-identifier column(s) {missing} are not in the table; check the product's "
            "privacy.quasi_identifiers against its output columns",
            columns=missing,
        )
    if WEIGHT in [*quasi_identifiers, *other]:
        raise ValueError(f"a quasi-identifier may not be named {WEIGHT!r}")


def model_columns(model: PrivacyModel) -> list[str]:
    """The columns a model is decided on: its quasi-identifiers, then sensitive attributes."""
    return [*model.quasi_identifiers, *model.sensitive_attributes]


def equivalence_classes(table: pa.Table, quasi_identifiers: list[str]) -> pa.Table:
    """One row per class: its quasi-identifier values and its size in column `count`."""
    check_model_columns(table.column_names, quasi_identifiers)
    if COUNT in quasi_identifiers:
        raise ValueError(f"a quasi-identifier may not be named {COUNT!r}, the class size column")
    grouped = (
        table.select(quasi_identifiers)
        .group_by(quasi_identifiers, use_threads=False)  # deterministic order
        .aggregate([([], "count_all")])
    )
    return pa.table(
        [*(grouped.column(q) for q in quasi_identifiers), grouped.column("count_all")],
        names=[*quasi_identifiers, COUNT],
    )


def _report(
    model: PrivacyModel,
    rows_in: int,
    counts: np.ndarray,
    sensitive: tuple[float | None, float | None] = (None, None),
) -> KAnonymityReport:
    """Report on an output whose class sizes are `counts`; `sensitive` is (lowest l, highest t)."""
    rows_out = int(counts.sum())
    classes = len(counts)
    smallest = int(counts.min()) if classes else 0
    suppressed = rows_in - rows_out
    rate = suppressed / rows_in if rows_in else 0.0
    lowest_l, highest_t = sensitive
    diverse = model.l is None or (lowest_l is not None and lowest_l >= model.l - 1e-9)
    close = model.t is None or (highest_t is not None and highest_t <= model.t + 1e-9)
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
        satisfied=rows_out > 0
        and smallest >= model.k
        and rate <= model.max_suppression
        and diverse
        and close,
        sensitive_attributes=list(model.sensitive_attributes),
        l=model.l,
        l_diversity=model.l_diversity if model.l is not None else None,
        lowest_l=lowest_l,
        t=model.t,
        highest_t=highest_t,
    )


@dataclass(frozen=True)
class Suppression:
    """A model decided on grouped counts: the classes, which are kept, and the report."""

    classes: pa.Table  # one row per class: quasi-identifier values and WEIGHT, first seen first
    keep: np.ndarray  # per class
    report: KAnonymityReport

    def kept_classes(self) -> pa.Table:
        """The classes whose records are published."""
        return self.classes.filter(pa.array(self.keep))


def _classes(groups: pa.Table, model: PrivacyModel) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Classes of grouped counts, each group's class and each class's size."""
    check_model_columns(
        groups.column_names, list(model.quasi_identifiers), model.sensitive_attributes
    )
    qis = list(model.quasi_identifiers)
    classes = group_counts(groups, qis, weights=WEIGHT)
    cls = ClassIndex(classes, qis).lookup(groups)
    return classes, cls, np.asarray(classes.column(WEIGHT), dtype=np.int64)


def check_groups(groups: pa.Table, model: PrivacyModel) -> KAnonymityReport:
    """Does every class of grouped counts meet the model (nothing suppressed)?"""
    _, cls, sizes = _classes(groups, model)
    keep = np.ones(len(sizes), dtype=bool)
    return _report(model, int(sizes.sum()), sizes, _figures(groups, model, cls, keep))


def check_k_anonymity(table: pa.Table, model: PrivacyModel) -> KAnonymityReport:
    """Re-check a table as it is (no suppression): does every class meet the model?"""
    check_model_columns(
        table.column_names, list(model.quasi_identifiers), model.sensitive_attributes
    )
    return check_groups(group_counts(table, model_columns(model)), model)


def verify(table: pa.Table | str | Path, model: PrivacyModel) -> KAnonymityReport:
    """Recompute the model on a released table (or Parquet file) from its values alone."""
    if isinstance(table, pa.Table):
        return check_k_anonymity(table, model)
    columns = model_columns(model)
    # A file, or a product folder (hive partition folders included), read batch by batch.
    data = ds.dataset(str(table), format="parquet", partitioning="hive")
    check_model_columns(
        data.schema.names, list(model.quasi_identifiers), model.sensitive_attributes
    )
    parts = (
        group_counts(pa.Table.from_batches([b]), columns)
        for b in data.to_batches(columns=columns, batch_size=65_536, use_threads=False)
        if b.num_rows
    )
    groups = merge_groups(parts)
    if groups is None:  # no rows: the grouping of an empty table
        groups = group_counts(data.schema.empty_table().select(columns), columns)
    return check_groups(groups, model)


def sensitive_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int, bool]:
    """Codes of a sensitive column (by sorted value when numeric), how many, and orderedness."""
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    ordered = pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
    distinct = pc.unique(array).drop_null()
    if ordered:
        distinct = distinct.take(pc.sort_indices(distinct))
    codes = pc.index_in(array, value_set=distinct).fill_null(len(distinct))
    return np.asarray(codes, dtype=np.int64), len(distinct) + 1, ordered


def _sa_counts(
    groups: pa.Table, model: PrivacyModel, cls: np.ndarray, n: int
) -> list[tuple[np.ndarray, bool]]:
    """Per sensitive attribute: records by class and value (n classes), and orderedness."""
    weights = np.asarray(groups.column(WEIGHT), dtype=np.float64)
    out = []
    for name in model.sensitive_attributes:
        codes, size, ordered = sensitive_codes(groups.column(name))
        counts = np.zeros((n, size))
        np.add.at(counts, (cls, codes), weights)  # whole numbers: exact in any order
        out.append((counts, ordered))
    return out


def _figures(
    groups: pa.Table, model: PrivacyModel, cls: np.ndarray, keep: np.ndarray
) -> tuple[float | None, float | None]:
    """Lowest l and highest t over the kept classes, measured on the kept records alone."""
    if not model.sensitive_attributes:
        return None, None
    kept_groups = keep[cls]
    remap = np.cumsum(keep) - 1
    n = int(keep.sum())
    sensitive = _sa_counts(groups.filter(pa.array(kept_groups)), model, remap[cls[kept_groups]], n)
    lows = [diversity(c, model.l_diversity) for c, _ in sensitive]
    highs = [distance(c, c.sum(axis=0) / max(c.sum(), 1), o) for c, o in sensitive]
    lowest = float(np.min(lows)) if n else 0.0
    return (lowest if model.l is not None else None), (
        float(np.max(highs)) if model.t is not None and n else None
    )


def enforce_groups(groups: pa.Table, model: PrivacyModel) -> Suppression:
    """Decide which classes to suppress (k, l, t; see `release`) from grouped counts; fail
    naming the criterion that cannot be met."""
    classes, cls, sizes = _classes(groups, model)
    decided = release(sizes, _sa_counts(groups, model, cls, len(sizes)), model)
    keep = decided.keep
    report = _report(model, int(sizes.sum()), sizes[keep], _figures(groups, model, cls, keep))
    small = int((~keep).sum())
    log.info(
        "privacy model k=%d l=%s t=%s over %d quasi-identifier(s): %d of %d rows kept, "
        "%d suppressed from %d class(es) (k %d, l %d, t %d), %d classes remain",
        model.k, model.l, model.t, len(model.quasi_identifiers), report.rows_out, report.rows_in,
        report.suppressed, small, decided.by_k, decided.by_l, decided.by_t, report.classes,
    )  # fmt: skip
    if not report.satisfied:
        raise _failure(report, small_classes=small, decided=decided)
    return Suppression(classes=classes, keep=keep, report=report)


def kept_rows(table: pa.Table | pa.RecordBatch, index: ClassIndex, keep: np.ndarray) -> np.ndarray:
    """Which records of a table (or a batch of it) belong to a kept class."""
    cls = index.lookup(table)
    if (cls < 0).any():
        raise PrivacyModelFailed(
            f"{int((cls < 0).sum())} record(s) fall in no class the model was decided on; "
            "the input changed between the passes",
            rows=table.num_rows,
        )
    return keep[cls]


def enforce_k_anonymity(table: pa.Table, model: PrivacyModel) -> tuple[pa.Table, KAnonymityReport]:
    """Suppress records of classes breaking the model (k, l, t; see `release`), keeping row
    order; fail naming the criterion that cannot be met."""
    check_model_columns(
        table.column_names, list(model.quasi_identifiers), model.sensitive_attributes
    )
    decided = enforce_groups(group_counts(table, model_columns(model)), model)
    if decided.keep.all():
        return table, decided.report  # nothing suppressed: no copy
    index = ClassIndex(decided.classes, list(model.quasi_identifiers))
    return table.filter(pa.array(kept_rows(table, index, decided.keep))), decided.report


enforce_model = enforce_k_anonymity  # the name for models with l-diversity or t-closeness too


def _failure(
    report: KAnonymityReport, small_classes: int, decided: Release | None = None
) -> PrivacyModelFailed:
    """The error for a model that cannot be met, naming the criterion (k, l, t or the
    suppression limit) with its figures; the report's figures are attributes."""
    hint = (
        "; generalize the quasi-identifiers further (wider bands, coarser dates, shorter "
        "prefixes) or raise max_suppression"
    )
    by = ""
    if decided is not None:
        parts = [
            f"{decided.by_k} in classes smaller than k={report.k}" if decided.by_k else "",
            f"{decided.by_l} in classes below {report.l_diversity} l={report.l}"
            if decided.by_l
            else "",
            f"{decided.by_t} in classes farther than t={report.t} from the released records"
            if decided.by_t
            else "",
        ]
        by = "; ".join(p for p in parts if p)
    criterion = "k"
    if report.rows_in == 0:
        why, hint = "the table is empty: nothing to publish", ""
    elif report.rows_out == 0:
        why = (
            f"all {report.rows_in} records are suppressed ({by or 'classes smaller than k'}): "
            "nothing to publish"
        )
        criterion = _main_criterion(decided)
    elif report.suppression_rate > report.max_suppression:
        # The criterion that suppressed most records is the one the limit cannot accommodate.
        criterion = _main_criterion(decided)
        why = (
            f"{criterion} cannot be met within the suppression limit of "
            f"{report.max_suppression:.1%}: it suppresses {report.suppressed} of "
            f"{report.rows_in} records ({report.suppression_rate:.1%})" + (f": {by}" if by else "")
        )
    elif report.l is not None and (report.lowest_l or 0) < report.l - 1e-9:
        why = f"a released class has {report.l_diversity} l={report.lowest_l:.3g} < l={report.l}"
        criterion = "l"
    elif report.t is not None and (report.highest_t or 0) > report.t + 1e-9:
        why = (
            f"a released class lies at distance {report.highest_t:.3f} > t={report.t} from the "
            "released records"
        )
        criterion = "t"
    else:
        why = f"the smallest released class has {report.smallest_class} < k={report.k} records"
        criterion = "k"
    return PrivacyModelFailed(
        f"privacy model over {report.quasi_identifiers} cannot be met ({criterion}): {why}{hint}",
        criterion=criterion,
        k=report.k,
        suppressed=report.suppressed,
        suppressed_by_k=decided.by_k if decided else None,
        suppressed_by_l=decided.by_l if decided else None,
        suppressed_by_t=decided.by_t if decided else None,
        rows=report.rows_in,
        classes=report.classes,
        small_classes=small_classes,
        suppression_rate=report.suppression_rate,
        max_suppression=report.max_suppression,
        report=report.to_json(),
    )


def _main_criterion(decided: Release | None) -> str:
    """The criterion that suppressed most records (k when nothing is known)."""
    if decided is None:
        return "k"
    counts = {"k": decided.by_k, "l": decided.by_l, "t": decided.by_t}
    return max(counts, key=lambda c: counts[c])

"""From a staged dataset to a product table: rules, privacy model, aggregates, risk, re-scan.

The privacy model is decided (`privacy_decision`) on grouped counts of the product's
quasi-identifiers and sensitive attributes (`privacy.group_counts`), never on the records
themselves, so the same decision comes from a whole table (`productize`) or from partitions whose
counts were merged (`databourse.product.partitions`). Applying it (`apply_decision`) is a per-record
filter. Everything decided is returned as figures for the manifest (never values). The privacy model
is re-verified independently after the Parquet is written (`verify_written`), from the files alone,
streaming.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from databourse.config import DIRECT_IDENTIFIERS, PrivacyModel, ProductSpec
from databourse.errors import PersonalDataFound, PrivacyModelFailed
from databourse.grouping import WEIGHT, ClassIndex, group_counts, merge_groups
from databourse.pii.detect import scan_batches
from databourse.pii.dirty_columns import DIRTY_THRESHOLD
from databourse.pii.screening import EMBEDDED_MAX_SHARE, check_embedded, direct_identifiers
from databourse.pii.text_spans import placeholder
from databourse.privacy import lattice
from databourse.privacy.aggregate import aggregate
from databourse.privacy.anonymize import apply_rules
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.k_anonymity import check_groups, enforce_groups, model_columns
from databourse.privacy.pseudonyms import Keys, key_fingerprints
from databourse.privacy.risk import risk_of_classes
from databourse.transfer.policy import remaining_personal_data

log = logging.getLogger(__name__)
VERIFY_BATCH_ROWS = 65_536


@dataclass
class Productized:
    """The product table and the evidence about it."""

    table: pa.Table
    privacy: dict[str, Any] = field(default_factory=dict)
    personal_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What the privacy model decided: figures, the searched levels, the classes published."""

    privacy: dict[str, Any]  # for the manifest: model, report, search, risk (figures only)
    levels: dict[str, int] = field(default_factory=dict)  # searched column -> hierarchy level
    kept: pa.Table | None = None  # quasi-identifier values of the published classes

    @property
    def suppresses(self) -> bool:
        """Whether any record is suppressed (else applying it is only the levels)."""
        return self.kept is not None and bool(self.privacy.get("suppressed"))


def decision_columns(product: ProductSpec) -> list[str]:
    """The output columns the privacy decision needs grouped counts of (none without a model)."""
    return model_columns(product.privacy) if product.privacy is not None else []


def privacy_decision(
    groups: pa.Table | None, product: ProductSpec, hierarchies: dict[str, Hierarchy]
) -> Decision:
    """The product's privacy decision from grouped counts of `decision_columns` (see privacy)."""
    model = product.privacy
    if model is None or groups is None:
        return Decision(privacy={"model": None})
    levels: dict[str, int] = {}
    search = None
    if any(r.hierarchy and r.level is None for r in product.columns.values()):
        result = lattice.search(groups, hierarchies, model, metric=model.metric, weights=WEIGHT)
        levels = {q: lv for q, lv in result.transformation.items() if q in hierarchies}
        generalized = lattice.apply_levels(groups, hierarchies, levels)
        groups = group_counts(generalized, model_columns(model), weights=WEIGHT)
        search = result.to_json()
    decided = enforce_groups(groups, model)
    privacy: dict[str, Any] = {
        "model": "lattice-search" if search is not None else "k-anonymity",
        **({"search": search} if search is not None else {}),
        **decided.report.to_json(),
    }
    kept = decided.kept_classes()
    qis = list(model.quasi_identifiers)
    sizes = np.asarray(kept.column(WEIGHT), dtype=np.int64)
    privacy["risk"] = risk_of_classes(sizes, qis).to_json()
    return Decision(privacy=privacy, levels=levels, kept=kept.select(qis))


def apply_decision(
    table: pa.Table,
    decision: Decision,
    hierarchies: dict[str, Hierarchy],
    index: ClassIndex | None = None,
) -> pa.Table:
    """The records the decision publishes, generalized to its levels, in their order."""
    out = lattice.apply_levels(table, hierarchies, decision.levels)
    if not decision.suppresses or decision.kept is None:
        return out
    index = index or ClassIndex(decision.kept, decision.kept.column_names)
    return out.filter(pa.array(index.lookup(out) >= 0))  # in a published class


def remaining_columns(product: ProductSpec, declared: dict[str, str]) -> dict[str, str]:
    """Output columns still holding personal data, with their category (none in aggregates)."""
    if product.type == "aggregate":
        return {}  # cells, not records: no column holds an individual's data
    return remaining_personal_data(product, declared)


def personal_figures(
    product: ProductSpec, declared: dict[str, str], key: Keys | None, individuals: int
) -> dict[str, Any]:
    """The manifest's personal-data section (the re-scan's result is `verify_written`'s)."""
    remaining = remaining_columns(product, declared)
    return {
        "remaining": remaining,
        "individuals": individuals if remaining else 0,
        "pseudonym_keys": key_fingerprints(product, key) if key else {},
        "rescan_direct_identifiers": 0,
    }


def productize(
    table: pa.Table,
    product: ProductSpec,
    declared: dict[str, str],
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
) -> Productized:
    """Apply the product's rules and privacy model to a whole table (see partitions for more)."""
    out = apply_rules(table, product, key, hierarchies)
    columns = decision_columns(product)
    groups = group_counts(out, columns) if columns else None
    decision = privacy_decision(groups, product, hierarchies)
    out = apply_decision(out, decision, hierarchies)
    privacy = dict(decision.privacy)
    if product.type == "aggregate" and product.aggregate is not None:
        out, agg = aggregate(out, product.aggregate, key if isinstance(key, bytes) else None)
        privacy["aggregate"] = agg.to_json()
    remaining = remaining_columns(product, declared)
    pseudonyms = [c for c in remaining if c in out.column_names]
    individuals = max((pc.count_distinct(out[c]).as_py() for c in pseudonyms), default=0)
    log.info("%s: %d rows out, model %s", product.id, out.num_rows, privacy["model"])
    return Productized(
        table=out,
        privacy=privacy,
        personal_data=personal_figures(product, declared, key, individuals),
    )


def written_dataset(path: Path) -> ds.Dataset:
    """The written files as `pyarrow.parquet.read_table` would read them (hive folders)."""
    hive = ds.HivePartitioning.discover(infer_dictionary=True)
    return ds.dataset(str(path), format="parquet", partitioning=hive)


def redacted_columns(product: ProductSpec) -> list[str]:
    """Output columns whose rule redacts the identifiers inside their text."""
    return [r.rename or n for n, r in product.columns.items() if r.embedded == "redact"]


@dataclass(frozen=True)
class Rescan:
    """What the re-scan of the written files found: privacy figures, identifiers in text."""

    privacy: dict[str, Any] | None  # the privacy model's re-check, None without a model
    embedded: dict[str, Any]  # the manifest's personal_data.embedded (counts only)


def verify_written(
    parquet_dir: Path,
    product: ProductSpec,
    pii_threshold: float = 0.8,
    sample_rows: int = 2000,
    *,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> dict[str, Any] | None:
    """`rescan_written`'s privacy figures (None without a model); raises what it raises."""
    rescan = rescan_written(
        parquet_dir, product, pii_threshold, sample_rows, dirty_threshold=dirty_threshold
    )
    return rescan.privacy


def rescan_written(
    parquet_dir: Path,
    product: ProductSpec,
    pii_threshold: float = 0.8,
    sample_rows: int = 2000,
    embedded_max_share: float = EMBEDDED_MAX_SHARE,
    *,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> Rescan:
    """The last checks before a version can exist, on the written files alone, streaming.

    No direct identifier may be found in them, whole or inside text beyond `check_embedded`'s
    limits (PersonalDataFound), and the privacy model must hold (PrivacyModelFailed). One pass
    over record batches: the identifier scan sees every column, the model check keeps grouped
    counts of its columns only, and the placeholders of redacted columns are counted.
    """
    dataset = written_dataset(parquet_dir)
    model = product.privacy if product.type != "aggregate" else None
    counts = _ModelCounts(model, dataset.schema)
    redacted = _Placeholders(redacted_columns(product))

    def batches() -> Iterator[pa.RecordBatch]:
        # Threaded scans decode ahead of a slow consumer without bound (measured: +55 MiB
        # per million rows); the identifier scan has its own threads.
        for batch in dataset.to_batches(
            batch_size=VERIFY_BATCH_ROWS, batch_readahead=1, fragment_readahead=1, use_threads=False
        ):
            counts.add(batch)
            redacted.add(batch)
            yield batch

    findings = scan_batches(
        batches(),
        dataset.schema,
        threshold=pii_threshold,
        sample_rows=sample_rows,
        dirty_threshold=dirty_threshold,  # settings.pii_dirty_threshold, as the ingest's scan
    )
    found = direct_identifiers(findings)
    if found:
        raise PersonalDataFound(
            f"{product.id}: the written files hold direct identifiers in "
            f"{[f['column'] for f in found]}; no version is made",
            product=product.id,
        )
    embedded = _embedded_gate(product, findings, redacted, embedded_max_share)
    if model is None:
        return Rescan(None, embedded)
    report = check_groups(counts.groups, model)  # a missing model column is named here
    if not report.satisfied:
        raise PrivacyModelFailed(
            f"{product.id}: the written files break the privacy model (k={report.k}, smallest "
            f"class {report.smallest_class}); no version is made",
            product=product.id,
        )
    return Rescan(report.to_json(), embedded)


def _embedded_gate(
    product: ProductSpec, findings: list[Any], redacted: _Placeholders, max_share: float
) -> dict[str, Any]:
    """Identifiers inside the written text: PersonalDataFound beyond the limits, else figures."""
    check = check_embedded(findings, redacted.columns, max_share)
    if not check.ok:
        first = check.refused[0]
        raise PersonalDataFound(
            f"{product.id}: identifiers inside the written text: {check.reason()}; no version is "
            "made. Drop or pseudonymize the column, or set `embedded: redact` on its rule",
            product=product.id,
            column=first["column"],
            category=first["category"],
            values=first["values"],
            checked=first["checked"],
            refused=check.refused,
        )
    return {
        "max_share": max_share,
        "redacted": redacted.counts,  # column -> category -> values holding its placeholder
        "left": check.left,  # tolerated below max_share (never in a redacted column)
        "left_in_redacted": 0,
    }


class _Placeholders:
    """Values of the redacted columns that hold each category's placeholder, over batches."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.counts: dict[str, dict[str, int]] = {c: {} for c in columns}

    def add(self, batch: pa.RecordBatch) -> None:
        """Count one more batch."""
        for column in self.columns:
            if column not in batch.schema.names:
                continue
            values = _decoded(pa.chunked_array([batch.column(column)]))
            for category in sorted(DIRECT_IDENTIFIERS):
                hits = pc.sum(pc.match_substring(values, placeholder(category))).as_py() or 0
                if hits:
                    seen = self.counts[column]
                    seen[category] = seen.get(category, 0) + hits


class _ModelCounts:
    """Grouped counts of a model's columns over a stream of batches (the ones present)."""

    def __init__(self, model: PrivacyModel | None, schema: pa.Schema) -> None:
        wanted = model_columns(model) if model is not None else []
        self.columns = [c for c in wanted if c in schema.names]
        self.groups = self._group(schema.empty_table())

    def _group(self, table: pa.Table) -> pa.Table:
        if not self.columns:
            return pa.table({})
        plain = [_decoded(table.column(c)) for c in self.columns]  # hive columns: dictionaries
        return group_counts(pa.table(plain, names=self.columns), self.columns)

    def add(self, batch: pa.RecordBatch) -> None:
        """Count one more batch."""
        if self.columns:
            part = self._group(pa.Table.from_batches([batch]))
            self.groups = merge_groups([self.groups, part]) or part


def _decoded(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(values.type):
        return pc.cast(values, values.type.value_type)
    return values

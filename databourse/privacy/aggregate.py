"""Aggregated analytical products: one row per cell of the dimensions, small cells suppressed.

Statistics per cell: `count` of records, and per measure `sum`, `mean`, `min`, `max` and the
percentiles `p25`...`p99` (pyarrow's t-digest: approximate). A cell with fewer records than
`min_cell` is suppressed (primary): its count and statistics become null and `suppressed` is
true. Complementary (secondary) suppression: along each dimension, the cells that share the
values of all other dimensions form a margin whose total a reader may know; a margin with exactly
one suppressed cell would give it away by subtraction, so its smallest unsuppressed cell is
suppressed too, repeated until no margin has exactly one.

With `epsilon`, every published count (the record `count` and each measure's `<column>_count`)
gets Laplace noise; one record changes each count by at most 1, so with n count columns the
scale is b = n/epsilon and the release spends epsilon in all. Sums, means, minima, maxima and
percentiles are published exact: they are not noised and not differentially private (the report
names both lists). Suppression is decided on the true counts.

The noise of a release is independent of every other release's: its generator is seeded by
HMAC-SHA256(key, the aggregate spec and a digest of the true cells), and each cell takes its own
draws. A rebuild from the same records gives the same cells, hence the same noise (the content
hash and a re-run stay as they were); records that differ by one person give fresh noise in
every cell, so subtracting two versions, or rescaling one under another epsilon, cancels
nothing. Releases of overlapping data still compose: k releases at epsilon each spend k*epsilon.
The digest never leaves this module (it would let a guess of the true cells be confirmed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import AggregateSpec

log = logging.getLogger(__name__)

_NOISE_MESSAGE = b"databourse/aggregate-noise/v2"
_PERCENTILES = {"p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "p99": 0.99}
_FUNCTIONS = {"sum": "sum", "mean": "mean", "min": "min", "max": "max", "count": "count"}


@dataclass(frozen=True)
class AggregateReport:
    """Figures of one aggregation: cells, suppressed cells, noise."""

    dimensions: list[str]
    records: int
    cells: int
    min_cell: int
    primary_suppressed: int
    secondary_suppressed: int
    epsilon: float | None
    noise_scale: float | None = None  # b of the Laplace noise on each noised column
    noised: list[str] = dataclasses.field(default_factory=list)  # count columns, noised
    exact: list[str] = dataclasses.field(default_factory=list)  # other statistics: not private

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _statistics(table: pa.Table, spec: AggregateSpec) -> pa.Table:
    """Group by the dimensions: count and each measure's statistics, named `<column>_<stat>`."""
    aggs: list[tuple[Any, ...]] = [([], "count_all")]
    names = ["count"]
    for m in spec.measures:
        for stat in m.stats:
            if stat in _PERCENTILES:
                aggs.append((m.column, "tdigest", pc.TDigestOptions(q=_PERCENTILES[stat])))
            else:
                aggs.append((m.column, _FUNCTIONS[stat]))
            names.append(f"{m.column}_{stat}")
    grouped = table.group_by(spec.dimensions, use_threads=False).aggregate(aggs)
    out = grouped.select(spec.dimensions)
    for i, ((_, func, *_), name) in enumerate(zip(aggs, names, strict=True)):
        values = grouped.column(len(spec.dimensions) + i)  # the keys first, then aggregates
        if func == "tdigest":
            values = pc.list_element(values, 0)
        out = out.append_column(name, values)
    return out.sort_by([(d, "ascending") for d in spec.dimensions])


def _complementary(
    cells: pa.Table, dims: list[str], counts: np.ndarray, hidden: np.ndarray
) -> None:
    """Suppress more cells (in place) until no margin has exactly one suppressed cell."""
    codes = [_codes(cells.column(d)) for d in dims]
    changed = True
    while changed:
        changed = False
        for along in range(len(dims)):
            others = [c for i, c in enumerate(codes) if i != along]
            margin = np.zeros(len(counts), dtype=np.int64)
            for c in others:
                margin = margin * (int(c.max(initial=0)) + 2) + c + 1
            for m in np.unique(margin):
                members = np.flatnonzero(margin == m)
                if hidden[members].sum() == 1 and len(members) > 1:
                    open_cells = members[~hidden[members]]
                    hidden[open_cells[np.argmin(counts[open_cells])]] = True
                    changed = True


def aggregate(
    table: pa.Table, spec: AggregateSpec, key: bytes | None = None
) -> tuple[pa.Table, AggregateReport]:
    """The cells of the spec's dimensions with their statistics, small cells suppressed."""
    if spec.epsilon is not None and key is None:
        raise ValueError("aggregate noise (epsilon) needs the key that seeds it")
    cells = _statistics(table, spec)
    counts = np.asarray(cells.column("count"), dtype=np.int64)
    primary = counts < spec.min_cell
    hidden = primary.copy()
    _complementary(cells, spec.dimensions, counts, hidden)
    stats = [n for n in cells.column_names if n not in spec.dimensions]
    noised = _count_columns(spec) if spec.epsilon is not None else []
    scale = len(noised) / spec.epsilon if spec.epsilon is not None else None
    if scale is not None and key is not None:
        cells = _noisy(cells, noised, scale, _generator(cells, spec, key))
    mask = pa.array(hidden)
    for name in stats:
        column = cells.column(name)
        nulls = pa.nulls(len(cells), column.type)
        cells = cells.set_column(
            cells.schema.get_field_index(name), name, pc.if_else(mask, nulls, column)
        )
    cells = cells.append_column("suppressed", mask)
    report = AggregateReport(
        dimensions=list(spec.dimensions),
        records=table.num_rows,
        cells=len(cells),
        min_cell=spec.min_cell,
        primary_suppressed=int(primary.sum()),
        secondary_suppressed=int(hidden.sum() - primary.sum()),
        epsilon=spec.epsilon,
        noise_scale=scale,
        noised=noised,
        exact=[n for n in stats if n not in noised],
    )
    log.info(
        "aggregated %d records into %d cells: %d suppressed under %d, %d complementary",
        report.records, report.cells, report.primary_suppressed, spec.min_cell,
        report.secondary_suppressed,
    )  # fmt: skip
    return cells, report


def _count_columns(spec: AggregateSpec) -> list[str]:
    """The statistics that count records: one record changes each by at most 1."""
    return ["count", *(f"{m.column}_count" for m in spec.measures if "count" in m.stats)]


def _generator(cells: pa.Table, spec: AggregateSpec, key: bytes) -> np.random.Generator:
    """The release's noise generator: keyed, and seeded by the spec and the true cells."""
    digest = hashlib.sha256(spec.model_dump_json().encode())
    for name in cells.column_names:  # sorted by the dimensions: the same cells, the same bytes
        column = cells.column(name)
        digest.update(
            json.dumps([name, str(column.type), column.to_pylist()], default=str).encode()
        )
    seed = hmac.new(key, _NOISE_MESSAGE + digest.digest(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(seed, "big"))


def _noisy(cells: pa.Table, names: list[str], scale: float, rng: np.random.Generator) -> pa.Table:
    """The count columns plus Laplace(scale) noise per cell, rounded and floored at 0."""
    draws = rng.laplace(0.0, scale, (len(cells), len(names)))  # row i: cell i's own draws
    for j, name in enumerate(names):
        true = np.asarray(pc.fill_null(cells.column(name), 0), dtype=np.int64)
        noisy = np.maximum(np.rint(true + draws[:, j]), 0).astype(np.int64)
        at = cells.schema.get_field_index(name)
        cells = cells.set_column(at, name, pa.array(noisy))
    return cells


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """Integer code of each value of a dimension (nulls get one code of their own)."""
    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    return np.asarray(encoded.indices, dtype=np.int64)

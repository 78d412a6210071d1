"""What one part of a dataset adds to each expectation, and a validation finished from the parts.

A validation's expectations are routed (`batches.route`). Five routes are tallied per part of
the dataset (a partition of the staged file, or the whole of it): `per-batch` (GX's counts),
`between` and `nulls` (pyarrow's counts), `min-max` (the part's extreme value) and `unique` (pass
1: each kept row's key hash with its dataset row, in a key file). Tallies of consecutive parts
merge into the tally of the whole: counts summed, extremes compared, key files spilled together
by hash. So a report does not depend on how the dataset was cut, nor on where the parts ran.
`finish` merges the parts' tallies and computes the rest on the whole dataset: `schema` (GX once
on an empty table), `row-count` (metadata), `unique` pass 2 (the candidates' values only) and
`whole` (GX on a projection).

A tally holds values read from the data (an extreme, key hashes): it lives in files of a work
folder (`Tally.save`, `Tally.load`), never in a run's state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.feather as feather

from databourse.errors import ConfigError
from databourse.quality.counts import (
    Counts,
    better,
    between_counts,
    counted_result,
    extreme,
    key_columns,
    key_hashes,
    min_max_result,
    not_evaluated,
    null_columns,
    null_counts,
    plain_type,
    row_count_result,
    unique_result,
)
from databourse.quality.expectations import ExpectationResult, ExpectationSpec, referenced_columns
from databourse.quality.gx import gx_combined, gx_counts, gx_results
from databourse.quality.report import QualityReport, make_report

if TYPE_CHECKING:
    import great_expectations.expectations as gxe

    from databourse.quality.batches import BatchSource

TALLIED = ("per-batch", "between", "nulls", "min-max", "unique")  # the routes a part tallies
Routes = dict[str, list[int]]  # route: indices of the expectations it computes


@dataclass
class Tally:
    """What one part of a dataset (or several consecutive parts) added to each expectation."""

    rows: int
    counts: dict[int, Counts] = field(default_factory=dict)  # per-batch, between, nulls
    extremes: dict[int, Any] = field(default_factory=dict)  # min-max: the extreme (None: none)
    keys: dict[int, tuple[int, int]] = field(default_factory=dict)  # unique: rows, skipped
    key_files: dict[int, list[Path]] = field(default_factory=dict)  # unique: pass 1's hashes
    suite: str = ""  # the suite it was tallied with (`suite_digest`)

    def save(self, folder: Path, stem: str, types: dict[int, pa.DataType]) -> list[str]:
        """Write the tally as `<stem>.json` and `<stem>-extremes.arrow` (each extreme with its
        column's `types`) in `folder`, beside its key files; the names of every file it is."""
        names = [f"{stem}.json"]
        counted = {i: c.to_json() for i, c in self.counts.items()}
        keys = {i: [*k, [p.name for p in self.key_files[i]]] for i, k in self.keys.items()}
        (folder / names[0]).write_text(
            json.dumps({"rows": self.rows, "counts": counted, "keys": keys, "suite": self.suite})
        )
        if self.extremes:
            columns = {f"e{i}": pa.array([v], types[i]) for i, v in self.extremes.items()}
            names.append(f"{stem}-extremes.arrow")
            feather.write_feather(pa.table(columns), str(folder / names[-1]))
        return names + [p.name for files in self.key_files.values() for p in files]

    @classmethod
    def load(cls, folder: Path, stem: str) -> Tally:
        """The tally `save` wrote (its files checked by the caller)."""
        data = json.loads((folder / f"{stem}.json").read_text())
        extremes: dict[int, Any] = {}
        if (folder / f"{stem}-extremes.arrow").is_file():
            table = feather.read_table(str(folder / f"{stem}-extremes.arrow"))
            extremes = {int(n[1:]): table[n][0].as_py() for n in table.column_names}
        return cls(
            data["rows"],
            {int(i): Counts.from_json(c) for i, c in data["counts"].items()},
            extremes,
            {int(i): (k[0], k[1]) for i, k in data["keys"].items()},
            {int(i): [folder / n for n in k[2]] for i, k in data["keys"].items()},
            data["suite"],
        )

    def merged(self, later: Tally, specs: list[ExpectationSpec]) -> Tally:
        """This tally followed by the next part's."""
        want_max = {i: specs[i].name == "ExpectColumnMaxToBeBetween" for i in self.extremes}
        return Tally(
            self.rows + later.rows,
            {i: c.merged(later.counts[i]) for i, c in self.counts.items()},
            {i: better(v, later.extremes[i], want_max[i]) for i, v in self.extremes.items()},
            {i: (k[0] + later.keys[i][0], k[1] + later.keys[i][1]) for i, k in self.keys.items()},
            {i: files + later.key_files[i] for i, files in self.key_files.items()},
            self.suite,
        )


def tally(
    source: BatchSource,
    offset: int,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
    routes: Routes,
    folder: Path,
    stem: str,
) -> Tally:
    """The tallied routes over `source`, a part of the dataset whose first row is row `offset`
    of the whole; key files are written to `folder` (named after `stem`)."""
    names = set(source.schema.names)
    found = Tally(source.rows, suite=suite_digest(specs))
    for i in routes.get("between", []):
        found.counts[i] = between_counts(source.batches([specs[i].kwargs["column"]]), built[i])
    if nulls := routes.get("nulls"):
        found.counts |= null_counts(source.batches(null_columns(specs, nulls)), specs, nulls)
    if per_batch := routes.get("per-batch"):
        columns = columns_of([specs[i] for i in per_batch], names)
        found.counts |= gx_counts(source.batches(columns), specs, built, per_batch, names)
    for i in routes.get("min-max", []):
        if (column := str(specs[i].kwargs["column"])) in names:
            want_max = specs[i].name == "ExpectColumnMaxToBeBetween"
            found.extremes[i] = extreme(source.batches([column]), want_max)
    for i in routes.get("unique", []):
        if all(k in names for k in key_columns(specs[i])):
            path = folder / f"{stem}-key{i}.bin"
            found.keys[i] = key_hashes(
                source.batches(key_columns(specs[i])), specs[i], offset, path
            )
            found.key_files[i] = [path]
    return found


def extreme_types(
    source: BatchSource, specs: list[ExpectationSpec], tallied: Tally
) -> dict[int, pa.DataType]:
    """The type each extreme of `tallied` is saved with (its column's, dictionary decoded)."""
    return {
        i: plain_type(source.schema.field(str(specs[i].kwargs["column"])).type)
        for i in tallied.extremes
    }


def finish(
    source: BatchSource,
    dataset_name: str,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
    routes: Routes,
    tallies: Iterable[Tally],
) -> QualityReport:
    """The report of every expectation over the whole dataset `source`, from the tallies of its
    parts in dataset order and what is computed on the whole."""
    parts = list(tallies)
    if other := [p for p in parts if p.suite != suite_digest(specs)]:
        raise ConfigError(
            [
                f"{dataset_name}: {len(other)} of {len(parts)} partition(s) were checked with"
                " another quality suite than this one (the dataset's contract changed during the"
                " validation): run the validation again"
            ]
        )
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merged(part, specs)
    names = set(source.schema.names)
    results: dict[int, ExpectationResult] = {}
    for i in routes.get("row-count", []):
        results[i] = row_count_result(specs[i], built[i], source.rows)
    if schema := routes.get("schema"):
        results |= gx_combined([], source.schema.empty_table(), specs, built, schema, names)
    for i in routes.get("between", []) + routes.get("nulls", []):
        c = merged.counts[i]
        results[i] = counted_result(specs[i], c.element, c.missing, c.unexpected)
    if per_batch := routes.get("per-batch"):
        empty = source.schema.empty_table().select(columns_of([specs[i] for i in per_batch], names))
        results |= gx_results({i: merged.counts[i] for i in per_batch}, empty, specs, built, names)
    for i in routes.get("min-max", []):
        if i not in merged.extremes:
            results[i] = not_evaluated(specs[i], "missing column")
        else:
            results[i] = min_max_result(specs[i], built[i], merged.extremes[i])
    for i in routes.get("unique", []):
        if i not in merged.keys:
            missing = [k for k in key_columns(specs[i]) if k not in names]
            results[i] = not_evaluated(specs[i], f"missing column(s) {missing}")
        else:
            element, skipped = merged.keys[i]
            results[i] = unique_result(source, specs[i], merged.key_files[i], element, skipped)
    for i in routes.get("whole", []):
        columns = columns_of([specs[i]], names) or source.schema.names
        empty = source.schema.empty_table().select(columns)
        whole = pa.Table.from_batches(list(source.batches(columns)), empty.schema)
        results |= gx_combined([whole], empty, specs, built, [i], names)
    return make_report(dataset_name, source.rows, [results[i] for i in range(len(specs))])


def suite_digest(specs: list[ExpectationSpec]) -> str:
    """A digest of the suite (names, parameters, severities, dimensions, in order): the parts
    of one validation must all be tallied with the suite that finishes them."""
    text = json.dumps(
        [[s.name, s.kwargs, s.severity, s.dimension] for s in specs], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def columns_of(specs: list[ExpectationSpec], names: set[str]) -> list[str]:
    """The existing columns the specs name, in first-seen order."""
    found: dict[str, None] = {}
    for spec in specs:
        found |= {c: None for c in referenced_columns(spec.kwargs) if c in names}
    return list(found)

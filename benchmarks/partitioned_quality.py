"""The validation's quality suite: one pass over the whole staged file against partitions.

    python benchmarks/partitioned_quality.py                    # 2M rows, partitions of 500k
    python benchmarks/partitioned_quality.py --rows 5000000 --partition-rows 1000000 --dask 2

The orders table and the 20-expectation suite (contract + config) of benchmarks/quality.py,
in row groups of 250k rows. The suite then runs the ways the validate-dataset flow can run it,
calling the functions its tasks call (databourse.quality.tally through
databourse.steps.scanning.tally_partition's steps, and validate_parquet's finish):
  - baseline: one pass (`validate_parquet` without tallies: the whole file tallied as one part
    and finished);
  - partitioned, one thread: every partition tallied in turn (work files written and read back),
    then finished on the whole file;
  - partitioned, on threads (one per CPU; GX runs one batch at a time in a process) and, with
    --dask N, on a Dask LocalCluster of N single-threaded worker processes.
Printed: seconds of each way, the ratio to the baseline, the finish's share, and whether every
way's report equals the baseline's (it must). The machine (cores, memory) heads the table.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from partition_ways import arguments, print_table, timed_ways  # noqa: E402  (benchmarks/ on the path above)

NOW = dt.datetime(2026, 12, 1)


def suite() -> list[Any]:
    from quality import CONTRACT

    from databourse.config import DatasetSpec
    from databourse.quality.suite import suite_from_contract

    return suite_from_contract(DatasetSpec.model_validate(CONTRACT), now=NOW)


def part_tally(path: str, part: dict[str, int], folder: str) -> str:
    """One partition's tally, as the tally-quality task makes it (module-level: Dask pickles it);
    the stem of its work files."""
    from databourse.quality.batches import partition_source, routes_of
    from databourse.quality.gx_inputs import build_expectations
    from databourse.quality.tally import TALLIED, extreme_types, tally

    specs = suite()
    built = build_expectations(specs)
    source = partition_source(path, part["offset"], part["rows"])
    routes = {r: i for r, i in routes_of(source.schema, specs, built).items() if r in TALLIED}
    stem = f"part-{part['index']:05d}"
    found = tally(source, part["offset"], specs, built, routes, Path(folder), stem)
    found.save(Path(folder), stem, extreme_types(source, specs, found))
    return stem


def main() -> None:
    args = arguments(__doc__ or "")

    from quality import write_parquet

    from databourse.product.partitions import plan_partitions
    from databourse.quality.batches import validate_parquet
    from databourse.quality.tally import Tally

    with tempfile.TemporaryDirectory(prefix="partitioned-quality-") as tmp:
        work = Path(tmp)
        path = work / "orders.parquet"
        write_parquet(path, args.rows)
        specs = suite()
        validate_parquet(path, "warm", specs, tallies=None)  # GX imported and warmed
        figures: dict[str, float] = {}
        finishing: dict[str, float] = {}
        began = time.perf_counter()
        whole = [r.to_json() for r in validate_parquet(path, "orders", specs).results]
        figures["baseline: one pass, whole file"] = time.perf_counter() - began
        parts = [p.to_json() for p in plan_partitions(path, args.partition_rows)]
        same: dict[str, bool] = {}

        def finish(name: str, stems: list[str], folder: Path) -> None:
            began = time.perf_counter()
            tallies = [Tally.load(folder, s) for s in stems]
            report = validate_parquet(path, "orders", specs, tallies=tallies)
            finishing[name] = time.perf_counter() - began
            figures[name] += finishing[name]
            same[name] = [r.to_json() for r in report.results] == whole

        task = partial(part_tally, str(path))
        ways = timed_ways(work, parts, task, args.dask, "databourse.quality.tally")
        for name, (seconds, stems, folder) in ways.items():
            figures[name] = seconds
            finish(name, stems, folder)

    print_table(
        f"{args.rows:,} rows, {len(specs)} expectations, {len(parts)} partition(s) of up to"
        f" {args.partition_rows:,} rows",
        figures,
        {
            "of which the finish": {n: f"{s:.2f}" for n, s in finishing.items()},
            "same report": {n: str(same.get(n, True)) for n in figures},
        },
    )
    if not all(same.values()):
        raise SystemExit("a partitioned validation reported something else than the baseline")


if __name__ == "__main__":
    main()

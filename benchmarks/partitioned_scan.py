"""The validation's personal-data scan: one pass over the whole staged file against partitions.

    python benchmarks/partitioned_scan.py                       # 2M rows, partitions of 500k
    python benchmarks/partitioned_scan.py --rows 5000000 --partition-rows 1000000 --dask 2

The drop of benchmarks/pipeline.py (sensor readings with occupants' names, MyKad numbers and
phones) is converted to a staged-like Parquet (row groups of 100k rows) on the embedded store.
The scan then runs the ways the validate-dataset flow can run it, calling the same step
functions its tasks call (databourse.steps.scanning, databourse.steps.validating):
  - baseline: one pass over the whole file (`validating.scan_personal_data`'s reading), checked
    first against its sha256 as a gate's copy was before;
  - partitioned, one thread: the plan (one checked read, block hashes), then every partition
    scanned in turn through checked byte ranges, then merged;
  - partitioned, on threads (`runs.partition_threads`, one per CPU) and, with --dask N, on a Dask
    LocalCluster of N single-threaded worker processes.
Printed: seconds of each way (the plan apart), the ratio to the baseline, and whether every way's
findings equal the baseline's (they must). The machine (cores, memory) heads the table.
"""

from __future__ import annotations

import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

KEY = "staging/my-buildops/sensor_readings/0123456789abcdef/data.parquet"
from partition_ways import arguments, print_table, timed_ways  # noqa: E402  (benchmarks/ on the path above)

SAMPLE_ROWS = 2000  # settings pii_sample_rows (the repo's default)


def staged(work: Path, rows: int) -> Path:
    """The benchmark drop as staged Parquet in an embedded store under `work`."""
    from pipeline import write_csv

    csv = work / "drop.csv"
    write_csv(csv, rows)
    path = work / "store" / KEY
    path.parent.mkdir(parents=True)
    with pacsv.open_csv(csv) as reader, pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch, row_group_size=100_000)
    csv.unlink()
    return path


def part_scan(store_root: str, plan: dict[str, Any], part: dict[str, int], work: str) -> Any:
    """One partition's scan, as the scan-partition task runs it (module-level: Dask pickles it)."""
    import pyarrow as pa

    from databourse.product.partitions import Partition
    from databourse.steps import scanning
    from databourse.storage.local import LocalStore
    from databourse.storage.ranges import VerifiedObject

    store = LocalStore(Path(store_root))
    ranged = VerifiedObject(store, plan["staged_key"], plan["staged"]["blocks"])
    settings = type("S", (), {"pii_sample_rows": SAMPLE_ROWS})
    cfg: Any = type("C", (), {"settings": settings})
    with pa.PythonFile(ranged, mode="r") as source:
        return scanning.scan_partition(cfg, Partition.from_json(part), source, Path(work))


def findings_of(states: Any) -> list[Any]:
    from databourse.pii.detect import decide_columns

    return decide_columns(states)


def main() -> None:
    args = arguments(__doc__ or "")

    from databourse.ingest.records import IngestResult
    from databourse.ingest.staged_integrity import check_staged, file_digest
    from databourse.pii.detect import SCAN_BATCH_ROWS, count_columns
    from databourse.steps import scanning

    with tempfile.TemporaryDirectory(prefix="partitioned-scan-") as tmp:
        work = Path(tmp)
        path = staged(work, args.rows)
        store_root = str(work / "store")
        sha256, size = file_digest(path)
        record = IngestResult(
            "my-buildops", "sensor_readings", "0123456789abcdef", sha256, size, "drop.csv",
            "csv", "utf-8", args.rows, "raw/-", KEY, [], "-",
        )  # fmt: skip
        figures: dict[str, float] = {}

        began = time.perf_counter()
        check_staged(path, path.as_uri(), sha256, size)
        pfile = pq.ParquetFile(path)
        whole = findings_of(
            count_columns(
                pfile.iter_batches(batch_size=SCAN_BATCH_ROWS),
                pfile.schema_arrow,
                sample_rows=SAMPLE_ROWS,
            )
        )
        figures["baseline: one pass, whole file"] = time.perf_counter() - began

        began = time.perf_counter()
        plan = scanning.plan_validation(
            record, {"sha256": sha256, "size": size}, "work", path, path.as_uri(),
            args.partition_rows,
        ).to_json()  # fmt: skip
        plan_s = time.perf_counter() - began
        parts = plan["partitions"]
        same: dict[str, bool] = {}

        task = partial(part_scan, store_root, plan)
        ways = timed_ways(work, parts, task, args.dask, "databourse.steps.scanning")
        for name, (seconds, scans, folder) in ways.items():
            figures[name] = seconds
            same[name] = findings_of(scanning.load_scans(folder, scans)) == whole

    print_table(
        f"{args.rows:,} rows ({size / 2**20:.1f} MiB staged), {len(parts)} partition(s) of up"
        f" to {args.partition_rows:,} rows; the plan (one checked read, block hashes):"
        f" {plan_s:.2f} s",
        figures,
        {"same findings": {n: str(same.get(n, True)) for n in figures}},
    )
    if not all(same.values()):
        raise SystemExit("a partitioned scan found something else than the baseline")


if __name__ == "__main__":
    main()

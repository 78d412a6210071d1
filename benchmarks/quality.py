"""Quality-gate speed and memory against reading the same Parquet with pyarrow, in one run.

    python benchmarks/quality.py                         # 1M rows, 1M-row batches
    python benchmarks/quality.py --rows 5000000 --batch-rows 1000000 250000
    python benchmarks/quality.py --profile               # where the time goes (cProfile)

It writes an orders Parquet (row groups of 250k rows), then runs, each in a fresh process so
that peak RSS is its own:
  bare      pyarrow.parquet.read_table of the whole file: the floor
  validate  databourse.quality.batches.validate_parquet, a 20-expectation suite (contract + config)
and prints wall time, rows/s, peak RSS and the validate/bare ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CONTRACT = {
    "primary_key": ["order_id"],
    "min_rows": 1,
    "freshness": {"column": "created_at", "max_age_hours": 24 * 3650},
    "columns": [
        {"name": "order_id", "type": "int64", "nullable": False},
        {"name": "store", "nullable": False, "allowed_values": [f"S{i}" for i in range(50)]},
        {"name": "sku", "pattern": r"^SKU-\d+$"},
        {"name": "quantity", "type": "int64", "min_value": 1, "max_value": 100},
        {"name": "amount", "type": "float64", "min_value": 0},
        {"name": "created_at", "type": "timestamp", "nullable": False},
    ],
    "expectations": [
        {
            "expectation": "ExpectColumnMeanToBeBetween",
            "kwargs": {"column": "quantity", "min_value": 1},
        },
        {
            "expectation": "ExpectColumnValueLengthsToBeBetween",
            "kwargs": {"column": "sku", "max_value": 12},
        },
    ],
}


def write_parquet(path: Path, rows: int) -> None:
    """A deterministic orders table in row groups of 250k rows."""
    rng = np.random.default_rng(7)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    table = pa.table(
        {
            "order_id": np.arange(rows, dtype=np.int64),
            "store": pa.array(np.char.add("S", (np.arange(rows) % 50).astype(str))),
            "sku": pa.array(np.char.add("SKU-", rng.integers(0, 99999, rows).astype(str))),
            "quantity": rng.integers(1, 100, rows),
            "amount": rng.uniform(0, 1000, rows),
            "created_at": start + np.arange(rows).astype("timedelta64[s]"),
        }
    )
    pq.write_table(table, path, row_group_size=250_000, compression="zstd")


def child(mode: str, path: Path, batch_rows: int, profile: bool) -> None:
    """Run one measurement in this process and print its figures as JSON."""
    from databourse.config import DatasetSpec
    from databourse.quality.batches import validate_parquet
    from databourse.quality.suite import suite_from_contract

    suite = suite_from_contract(DatasetSpec.model_validate(CONTRACT), now=dt.datetime.now(dt.UTC))
    start = time.perf_counter()
    extra: dict[str, object] = {}
    if mode == "bare":
        pq.read_table(path)
    else:
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        report = validate_parquet(path, "bench", suite, batch_rows=batch_rows)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        extra = {"expectations": len(report.results), "success": report.success}
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **extra}))


def measure(mode: str, path: Path, batch_rows: int, profile: bool) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", mode, str(path), "--batch-rows", str(batch_rows)]
    out = subprocess.run(
        args + (["--profile"] if profile else []),
        check=True,
        stdout=subprocess.PIPE,
        stderr=None if profile else subprocess.PIPE,  # the profile goes to stderr
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--batch-rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--profile", action="store_true", help="cProfile the validation")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and args.child[0] == "write":
        write_parquet(Path(args.child[1]), args.rows[0])
        return
    if args.child:
        child(args.child[0], Path(args.child[1]), args.batch_rows[0], args.profile)
        return
    print(f"{'rows':>10} {'batch':>9} {'mode':>9} {'seconds':>8} {'rows/s':>11} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"orders-{rows}.parquet"
            # written by a child: a parent holding the table would inflate every child's peak RSS
            subprocess.run(
                [sys.executable, __file__, "--child", "write", str(path), "--rows", str(rows)],
                check=True,
            )
            bare = measure("bare", path, 0, False)
            print(f"{rows:>10} {'-':>9} {'bare':>9} {bare['seconds']:>8.2f} "
                  f"{rows / bare['seconds']:>11,.0f} {bare['peak_mb']:>8.0f}")  # fmt: skip
            for batch in args.batch_rows:
                got = measure("validate", path, batch, args.profile)
                print(
                    f"{rows:>10} {batch:>9} {'validate':>9} {got['seconds']:>8.2f} "
                    f"{rows / got['seconds']:>11,.0f} {got['peak_mb']:>8.0f}   "
                    f"x{got['seconds'] / bare['seconds']:.1f} time, "
                    f"x{got['peak_mb'] / bare['peak_mb']:.2f} memory vs bare; "
                    f"{got['expectations']:.0f} expectations, success={got['success']}"
                )


if __name__ == "__main__":
    main()

"""Ingest speed and memory against the bare cost of the same conversion, measured in one run.

    python benchmarks/ingest.py                 # 1M, 5M and 20M rows
    python benchmarks/ingest.py --rows 1000000 5000000

For each size it writes a sensor-readings CSV (the `my-buildops/sensor_readings` contract), then
runs, each in a fresh process so that peak RSS is its own:
  bare      pyarrow.csv.read_csv + pyarrow.parquet.write_table (zstd): the floor
  ingest    databourse.ingest.files.ingest_file on the local store: sha256, raw copy, streamed
            contract conversion to typed Parquet in staging, _ingest.json
and prints wall time, rows/s, MB/s, peak RSS, and ingest/bare ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = (
    "reading_id,site_id,floor,reading_time,temperature_c,humidity_pct,co2_ppm,"
    "occupant_name,occupant_mykad,occupant_phone\n"
)


def write_csv(path: Path, rows: int) -> None:
    """A deterministic CSV of `rows` readings, written in blocks."""
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        block = []
        for i in range(rows):
            hour = i % (24 * 365)
            block.append(
                f"R{i:09d},KUL-MENARA-{i % 3 + 1},{i % 6 + 1},"
                f"2026-{hour // 720 % 12 + 1:02d}-{hour // 24 % 28 + 1:02d}T{hour % 24:02d}:00:00,"
                f"{rng.uniform(20, 30):.1f},{rng.uniform(40, 70):.1f},{rng.randint(400, 1500)},"
                f"Ahmad bin Ali {i % 997},850101-14-{i % 10000:04d},+60 12-345 {i % 10000:04d}\n"
            )
            if len(block) == 50_000:
                fh.write("".join(block))
                block.clear()
        fh.write("".join(block))


def child(mode: str, source: Path, work: Path) -> None:
    """Run one measurement in this process and print its figures as JSON."""
    start = time.perf_counter()
    if mode == "bare":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        pq.write_table(pacsv.read_csv(source), work / "bare.parquet", compression="zstd")
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from databourse.config import load_config
        from databourse.ingest.files import ingest_file
        from databourse.storage.opening import open_store

        spec = load_config().dataset("my-buildops", "sensor_readings")
        ingest_file(open_store(str(work / "store")), "my-buildops", "sensor_readings", spec, source)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def measure(mode: str, source: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as work:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(source), work],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    print(
        f"{'rows':>10} {'MB':>7} {'stage':>7} {'seconds':>8} {'rows/s':>11} {'MB/s':>7} "
        f"{'peak RSS MB':>11} {'time x bare':>11} {'RSS x bare':>10}"
    )
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
            source = Path(tmp) / "readings.csv"
            write_csv(source, rows)
            size_mb = source.stat().st_size / 1e6
            bare = measure("bare", source)
            ingest = measure("ingest", source)
            for name, m in (("bare", bare), ("ingest", ingest)):
                print(
                    f"{rows:>10} {size_mb:>7.0f} {name:>7} {m['seconds']:>8.2f} "
                    f"{rows / m['seconds']:>11,.0f} {size_mb / m['seconds']:>7.1f} "
                    f"{m['peak_mb']:>11.0f} {m['seconds'] / bare['seconds']:>11.2f} "
                    f"{m['peak_mb'] / bare['peak_mb']:>10.2f}"
                )


if __name__ == "__main__":
    main()

"""A build's partition passes on S3: whole downloads (before) against checked ranged reads (now).

    python benchmarks/ranged_reads.py                  # 4M rows, partitions of 500k rows
    python benchmarks/ranged_reads.py --rows 1000000 --partition-rows 250000

A staged-like Parquet (row groups of 100k rows, as ingest writes them) is put on a real S3 server
process (moto, tests/s3_server.py). Each partition pass then reads its records the two ways the
build's tasks can (tasks.work_files.source_file):
  - baseline: download the whole object and check its sha256 (what every pass did before);
  - ranged: `VerifiedObject` over ranged GETs, each 4 MiB block checked against the hashes the
    plan took of its one whole read (databourse.storage.ranges).
Printed per way: bytes fetched from S3 per pass and in all, seconds of all passes, and the
ratios; then the plan's one-time cost of hashing the blocks. Both ways' records are compared.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # s3_server: a moto server process, no effects on import

KEY = "staging/my-buildops/sensor_readings/0123456789abcdef/data.parquet"
COLUMNS = ["reading_id", "co2_ppm", "temperature_c"]  # what a product's pass reads


def staged(path: Path, rows: int) -> Path:
    rng = random.Random(5)
    table = pa.table(
        {
            "reading_id": [f"R{i:010d}" for i in range(rows)],
            "building": [f"KL-{rng.randrange(400):04d}" for _ in range(rows)],
            "co2_ppm": [rng.gauss(600, 120) for _ in range(rows)],
            "temperature_c": [rng.gauss(27, 2) for _ in range(rows)],
            "occupant_note": [f"note {rng.random():.12f}" for _ in range(rows)],
        }
    )
    pq.write_table(table, path, row_group_size=100_000)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--partition-rows", type=int, default=500_000)
    args = parser.parse_args()

    import pytest
    from s3_server import make_bucket, moto_server, use_dummy_aws_env

    from databourse.ingest.staged_integrity import file_digest
    from databourse.product.partitions import plan_partitions, read_partition
    from databourse.storage.ranges import VerifiedObject, block_digests
    from databourse.storage.s3 import S3Store

    patch = pytest.MonkeyPatch()
    use_dummy_aws_env(patch)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        path = staged(Path(tmp) / "data.parquet", args.rows)
        size = path.stat().st_size
        make_bucket(endpoint, "bench")
        store = S3Store("bench", "root", endpoint_url=endpoint)
        store.put_file(KEY, path)
        parts = plan_partitions(path, args.partition_rows)
        sha, _ = file_digest(path)
        started = time.perf_counter()
        blocks = block_digests(path)
        hashing = time.perf_counter() - started

        def whole(part: object) -> tuple[int, int]:
            target = Path(tmp) / "copy.parquet"
            store.download(KEY, target)
            assert file_digest(target)[0] == sha
            n = sum(t.num_rows for _, t in read_partition(target, part, COLUMNS))  # type: ignore[arg-type]
            return size, n

        def ranged(part: object) -> tuple[int, int]:
            raw = VerifiedObject(store, KEY, blocks)
            with pa.PythonFile(raw, mode="r") as source:
                n = sum(t.num_rows for _, t in read_partition(source, part, COLUMNS))  # type: ignore[arg-type]
            return raw.fetched, n

        results = {}
        for name, way in (("baseline (whole download)", whole), ("ranged, checked", ranged)):
            started = time.perf_counter()
            done = [way(p) for p in parts]
            results[name] = (time.perf_counter() - started, done)
        (t0, base), (t1, rng) = results.values()
        assert [n for _, n in base] == [n for _, n in rng] == [p.rows for p in parts]
        print(f"staged file: {args.rows:,} rows, {size / 2**20:.1f} MiB, {len(parts)} partitions")
        print(f"{'way':28} {'MiB/pass':>10} {'MiB all':>10} {'seconds':>9}")
        for name, (secs, done) in results.items():
            fetched = sum(f for f, _ in done)
            print(
                f"{name:28} {fetched / len(done) / 2**20:10.1f} {fetched / 2**20:10.1f} {secs:9.2f}"
            )
        saved = sum(f for f, _ in base) / sum(f for f, _ in rng)
        print(f"ratios (baseline / ranged): bytes {saved:.1f}x, time {t0 / t1:.2f}x")
        print(
            f"plan's one-time block hashes: {hashing:.2f} s for {len(blocks['sha256'])} blocks of"
            f" {blocks['block'] >> 20} MiB ({size / 2**20 / max(hashing, 1e-9):.0f} MiB/s)"
        )
    patch.undo()


if __name__ == "__main__":
    main()

"""The ways a flow's mapped partition tasks can run, timed: one thread, threads, Dask processes.

Shared by benchmarks/partitioned_scan.py and benchmarks/partitioned_quality.py: each gives a
module-level function of (partition, work folder) that does what one partition task does, and
gets, per way, its seconds and the partitions' results with the folder they wrote to.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil


def arguments(doc: str) -> argparse.Namespace:
    """--rows, --partition-rows and --dask, the options of both benchmarks."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument("--dask", type=int, default=0, help="also on N Dask worker processes")
    return parser.parse_args()


PartTask = Callable[[dict[str, int], str], Any]  # (partition, work folder) -> its result


def timed_ways(
    work: Path, parts: list[dict[str, int]], task: PartTask, dask: int, warm: str
) -> dict[str, tuple[float, list[Any], Path]]:
    """Every partition through `task` on 1 thread, on one thread per CPU and, when `dask` > 0,
    on a LocalCluster of `dask` single-threaded worker processes (module `warm` imported on
    each first): per way, seconds, the results in partition order, and the work folder."""
    ways: dict[str, tuple[float, list[Any], Path]] = {}
    for name, threads in (
        ("partitioned, 1 thread", 1),
        (f"partitioned, {os.cpu_count()} threads", os.cpu_count() or 1),
    ):
        folder = work / name.replace(" ", "_").replace(",", "")
        folder.mkdir()
        began = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(task, parts, [str(folder)] * len(parts)))
        ways[name] = (time.perf_counter() - began, results, folder)
    if dask:
        from distributed import Client, LocalCluster

        folder = work / "dask"
        folder.mkdir()
        with (
            LocalCluster(
                n_workers=dask, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: __import__(warm))  # imports warmed on every worker
            began = time.perf_counter()
            futures = [client.submit(task, part, str(folder), pure=False) for part in parts]
            results = client.gather(futures)
            ways[f"partitioned, Dask {dask} processes"] = (
                time.perf_counter() - began, results, folder,
            )  # fmt: skip
    return ways


def print_table(
    headline: str, figures: dict[str, float], columns: dict[str, dict[str, str]]
) -> None:
    """The machine, `headline`, then a row per way: seconds, the ratio to the first way (the
    baseline), and one cell per extra column (`columns[title][way]`, "-" where none)."""
    memory = psutil.virtual_memory().total / 2**30
    print(f"machine: {os.cpu_count()} cores, {memory:.1f} GiB memory")
    print(headline)
    print("| way | seconds | / baseline | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    base = next(iter(figures.values()))
    for name, seconds in figures.items():
        cells = [column.get(name, "-") for column in columns.values()]
        print(f"| {name} | {seconds:.2f} | x{seconds / base:.2f} | " + " | ".join(cells) + " |")

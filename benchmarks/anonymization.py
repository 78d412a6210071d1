"""Full-domain anonymization search on Adult, FARS and CUP under each of ARX's metrics, beside ARX.

    python benchmarks/anonymization.py                  # Adult and FARS, every case and metric
    python benchmarks/anonymization.py --dataset adult --metric entropy_nm
    python benchmarks/anonymization.py --large          # also 5M synthetic rows, 4 QIs
    DATABOURSE_CUP_DIR=DIR python benchmarks/anonymization.py --dataset cup

CUP (the KDD Cup 1998 donors, 63,441 records, eight quasi-identifiers, with ARX's hierarchies) is
not redistributed here: ARX's authors withdrew it from their public repositories "for licensing
reasons". Given a folder holding `cup.csv` and `cup_hierarchy_<COLUMN>.csv` as ARX's benchmarks
lay them out (`$DATABOURSE_CUP_DIR`, else `../shared/benchmarks/cup`), its cases run against the
optimal nodes and losses of ARX's own regression tests (`TestClassificationKAnonymity`,
non-monotonic entropy, k = 5 and 100, 0% and 4%).

For each dataset and case (k=5 and k=100 at 0% and 4% suppression; distinct 5-diversity on FARS;
equal-distance 0.2-closeness on Adult, including issue 22's case at 10%) and each metric it
prints the node found, classes, suppressed records, the node's loss under every metric, nodes
checked, the search's time (warm: the median of --repeat searches in one process, as ARX's
figures are warm JVM times) and its peak of Python-tracked memory (numpy arrays; Arrow buffers
are not tracked, the process's peak RSS is printed at the end), and ARX's node and figure where
ARX published one (ARX 3.9's regression tests, commit aacd487, or ARX 3.9.2 run on FARS as in
../shared/benchmarks/fars/README.md, whose times are ARX's warm search in ms).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from databourse.config import PrivacyModel
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.lattice import evaluate, search
from databourse.privacy.loss_metrics import METRICS, Metric

# ../shared beside the checkout (as CI lays it out), or DATABOURSE_SHARED_DIR
SHARED = (
    Path(os.environ.get("DATABOURSE_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
    / "benchmarks"
)
ADULT = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass",
         "occupation", "salary-class"]  # fmt: skip
FARS = ["iage", "irace", "ideathmon", "ideathday", "isex", "ihispanic", "istatenum", "iinjury"]
CUP = ["ZIP", "AGE", "GENDER", "INCOME", "STATE", "RAMNTALL", "NGIFTALL", "MINRAMNT"]
CUP_DIR = Path(os.environ.get("DATABOURSE_CUP_DIR") or SHARED / "cup")
COLUMNS = {"adult": ADULT, "fars": FARS, "cup": CUP}

# (dataset, case, k, limit, extra model fields) and ARX's results by metric for it:
# metric -> (levels, figure, ARX's nodes checked or None, ARX's warm ms or None)
ArxResult = tuple[list[int], float, int | None, int | None]
T_MODEL = {"sensitive_attributes": ["occupation"], "t": 0.2}
L_MODEL = {"sensitive_attributes": ["istatenum"], "l": 5}
CASES: list[tuple[str, str, int, float, dict[str, Any], dict[str, ArxResult]]] = [
    ("adult", "k=5", 5, 0.0, {}, {
        "entropy": ([1, 2, 1, 1, 3, 2, 2, 1, 1], 407289.5388925293, None, None)}),
    ("adult", "k=5", 5, 0.04, {}, {
        "entropy": ([1, 0, 1, 1, 3, 2, 2, 0, 1], 255559.85455731067, None, None),
        "loss": ([0, 3, 0, 1, 1, 1, 1, 2, 0], 0.26611081915757495, None, None)}),  # ARX's genetic
    ("adult", "k=100", 100, 0.0, {}, {
        "entropy": ([0, 4, 1, 1, 3, 2, 2, 1, 1], 453196.8932458743, None, None)}),
    ("adult", "k=100", 100, 0.04, {}, {
        "entropy": ([1, 1, 1, 1, 3, 2, 2, 1, 1], 379417.3460570988, None, None),
        "entropy_nm": ([1, 1, 1, 1, 3, 2, 2, 1, 1], 383803.4034066361, None, None)}),  # genetic
    ("adult", "k=5 t=0.2", 5, 0.0, T_MODEL, {
        "discernibility": ([1, 4, 1, 1, 3, 2, 2, 1], 4.56853172e8, None, None)}),
    ("adult", "k=5 t=0.2", 5, 0.04, T_MODEL, {
        "discernibility": ([1, 4, 1, 0, 3, 2, 2, 1], 3.11880088e8, None, None)}),
    ("adult", "k=5 t=0.2", 5, 0.1, T_MODEL, {}),
    ("fars", "k=5", 5, 0.0, {}, {
        "entropy": ([1, 2, 3, 3, 1, 2, 1, 2], 1684832.74, 134, 222),
        "entropy_nm": ([1, 2, 3, 3, 1, 2, 1, 2], 1684832.74, 136, 213),
        "discernibility": ([1, 2, 3, 3, 1, 2, 1, 2], 1.42377891e8, None, None)}),
    ("fars", "k=5", 5, 0.04, {}, {
        "entropy": ([5, 0, 1, 2, 0, 0, 0, 0], 971513.30, 2441, 4021),
        "entropy_nm": ([5, 0, 1, 2, 0, 0, 0, 0], 1031880.84, 1423, 3874),
        "discernibility": ([0, 2, 2, 2, 1, 2, 1, 0], 4469271.0, None, None)}),
    ("fars", "k=100", 100, 0.0, {}, {
        "entropy": ([5, 2, 3, 3, 1, 2, 0, 2], 1828114.53, 72, 177),
        "entropy_nm": ([5, 2, 3, 3, 1, 2, 0, 2], 1828114.53, 74, 204),
        "discernibility": ([5, 2, 3, 3, 1, 2, 0, 2], 4.36925397e8, None, None)}),
    ("fars", "k=100", 100, 0.04, {}, {
        "entropy": ([5, 2, 0, 1, 1, 2, 1, 0], 1468439.14, 1761, 1884),
        "entropy_nm": ([5, 2, 1, 1, 0, 2, 1, 0], 1494982.12, 1691, 3292),
        "discernibility": ([0, 2, 3, 3, 1, 2, 2, 2], 5.6052481e7, None, None)}),
    ("fars", "k=5 l=5", 5, 0.0, L_MODEL, {
        "entropy": ([0, 2, 3, 3, 1, 2, 2], 1201007.09, 62, 413),
        "entropy_nm": ([0, 2, 3, 3, 1, 2, 2], 1201007.09, 64, 525)}),
    ("fars", "k=5 l=5", 5, 0.04, L_MODEL, {
        "entropy": ([0, 2, 1, 1, 0, 2, 0], 590389.02, 679, 2865),
        "entropy_nm": ([0, 2, 1, 1, 0, 2, 0], 629604.89, 326, 1812)}),
    # ARX's regression tests (TestClassificationKAnonymity): Metric.createNMEntropyMetric()
    ("cup", "k=5", 5, 0.0, {}, {
        "entropy_nm": ([4, 4, 1, 1, 1, 4, 4, 4], 2445878.4248346775, None, None)}),
    ("cup", "k=5", 5, 0.04, {}, {
        "entropy_nm": ([2, 4, 0, 1, 0, 4, 4, 4], 1764006.4033760326, None, None)}),
    ("cup", "k=100", 100, 0.0, {}, {
        "entropy_nm": ([5, 4, 1, 0, 1, 4, 4, 4], 2517471.5816586106, None, None)}),
    ("cup", "k=100", 100, 0.04, {}, {
        "entropy_nm": ([3, 4, 1, 1, 0, 4, 4, 4], 1994002.8308631128, None, None)}),
]  # fmt: skip


def load(name: str) -> tuple[pa.Table, dict[str, Hierarchy]]:
    """Adult, FARS or CUP as ARX ships them, every column a string, with ARX's hierarchies."""
    folder, file = {"adult": (SHARED / "adult", "adult"), "fars": (SHARED / "fars", "fars_int"),
                    "cup": (CUP_DIR, "cup")}[name]  # fmt: skip
    columns = COLUMNS[name]
    table = pcsv.read_csv(
        folder / f"{file}.csv",
        parse_options=pcsv.ParseOptions(delimiter=";"),
        convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
    )
    hier = {c: Hierarchy.from_csv(folder / f"{file}_hierarchy_{c}.csv", c) for c in columns}
    return table, hier


def run_case(
    table: pa.Table,
    hierarchies: dict[str, Hierarchy],
    case: tuple[str, str, int, float, dict[str, Any], dict[str, ArxResult]],
    metrics: list[Metric],
    memory: bool,
    repeat: int = 3,
    versus: list[float] | None = None,
) -> None:
    dataset, name, k, limit, extra, arx = case
    columns = COLUMNS[dataset]
    sensitive = extra.get("sensitive_attributes", [])
    qis = [c for c in columns if c not in sensitive]
    model = PrivacyModel(quasi_identifiers=qis, k=k, max_suppression=limit, **extra)
    print(f"\n{dataset} {name}, suppression <= {limit:.0%}")
    losses: dict[tuple[int, ...], str] = {}
    for metric in metrics:
        r = search(table, hierarchies, model, metric=metric)
        # warm, as ARX's figures are: the median of `repeat` searches in this process
        seconds = statistics.median(
            [r.seconds, *(search(table, hierarchies, model, metric=metric).seconds
                          for _ in range(repeat - 1))]
        )  # fmt: skip
        peak = ""
        if memory:  # a second run: tracing slows the search, so the first one is timed
            tracemalloc.start()
            search(table, hierarchies, model, metric=metric)
            peak = f"  peak {tracemalloc.get_traced_memory()[1] / 2**20:4.0f} MB"
            tracemalloc.stop()
        node = tuple(r.levels)
        if node not in losses:
            losses[node] = "  ".join(
                f"{m} {evaluate(table, hierarchies, model, r.levels, metric=m).loss:.6g}"
                for m in METRICS
            )
        print(
            f"  {metric:<14} {r.levels}  classes {r.classes:5d}  suppressed {r.suppressed:5d}  "
            f"checked {r.nodes_checked:5d}/{r.nodes_total}  {seconds:6.2f} s"
            f"{peak}{'' if r.satisfied else '  NOT SATISFIED'}"
        )
        print(f"  {'':<14} loss: {losses[node]}")
        if metric in arx:
            levels, figure, nodes, ms = arx[metric]
            same = "same node" if levels == r.levels else "DIFFERENT NODE"
            extra_figures = f", checked {nodes}, {ms} ms warm" if nodes else ""
            if ms:
                extra_figures += f" (ours x{1000 * seconds / ms:.2f} of ARX's time)"
                if versus is not None:
                    versus.append(1000 * seconds / ms)
            print(
                f"  {'':<14} ARX {levels} {figure:.6g}{extra_figures}: {same}, "
                f"loss differs by {abs(r.loss - figure) / figure:.1e} (relative)"
            )


def run_large(rows: int) -> None:
    rng = np.random.default_rng(5)
    age_h = Hierarchy(tuple((str(a), f"{a // 5 * 5}", f"{a // 10 * 10}", f"{a // 20 * 20}", "*")
                            for a in range(100)), name="age")  # fmt: skip
    zips = [f"{z:05d}" for z in range(10000, 12000)]
    zip_h = Hierarchy(tuple((z, z[:4], z[:3], z[:2], "*") for z in zips), name="zip")
    sex_h = Hierarchy((("F", "*"), ("M", "*")), name="sex")
    days = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    day_h = Hierarchy(tuple((d, d[:7], "2026-Q" + str((int(d[5:7]) - 1) // 3 + 1), "*")
                            for d in days), name="day")  # fmt: skip
    table = pa.table({
        "age": pa.array(rng.integers(18, 95, rows)),
        "zip": pa.array(np.array(zips)[rng.integers(0, len(zips), rows)]),
        "sex": pa.array(np.array(["F", "M"])[rng.integers(0, 2, rows)]),
        "day": pa.array(np.array(days)[rng.integers(0, len(days), rows)]),
    })  # fmt: skip
    hier = {"age": age_h, "zip": zip_h, "sex": sex_h, "day": day_h}
    model = PrivacyModel(quasi_identifiers=list(hier), k=10, max_suppression=0.01)
    started = time.perf_counter()
    r = search(table, hier, model)
    print(
        f"\nsynthetic {rows} rows, 4 QIs, k=10, 1%: levels {r.levels}, classes {r.classes}, "
        f"suppressed {r.suppressed}, nodes checked {r.nodes_checked}/{r.nodes_total}, "
        f"{time.perf_counter() - started:.1f} s (input table {table.nbytes / 2**20:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(COLUMNS), action="append")
    parser.add_argument("--metric", choices=METRICS, action="append")
    parser.add_argument("--no-memory", action="store_true", help="skip the traced second run")
    parser.add_argument("--large", action="store_true", help="also 5M synthetic rows")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="searches timed per case (median)")
    args = parser.parse_args()
    metrics: list[Metric] = args.metric or list(METRICS)
    versus: list[float] = []
    for dataset in args.dataset or ["adult", "fars"]:
        table, hierarchies = load(dataset)
        print(f"\n== {dataset}: {table.num_rows} rows, ARX's hierarchies")
        for case in (c for c in CASES if c[0] == dataset):
            run_case(table, hierarchies, case, metrics, not args.no_memory, args.repeat, versus)
    if versus:
        faster = sum(v < 1 for v in versus)
        print(
            f"\nbeside ARX's warm times: faster on {faster} of {len(versus)} searches;"
            f" ours x{min(versus):.2f}-x{max(versus):.2f} of ARX's time (median of {args.repeat})"
        )
    if args.large:
        run_large(args.rows)
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()

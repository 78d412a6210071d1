"""A corpus version's build: one pass against partitions on threads and on Dask processes.

    python benchmarks/partitioned_corpus.py          # 6,000 documents, partitions of 2,048
    python benchmarks/partitioned_corpus.py --docs 20000 --partition-docs 2048 --dask 2

The documents are benchmarks/corpus_build.py's (Faker paragraphs in ten locales around
identifiers validated by python-stdnum and phonenumbers), staged as Parquet in row groups of
2,048 (a partition ends at a row group's end: partitions of 2,048 are balanced). The version is
then built the ways the build-corpus flow can build it, calling the functions its tasks call
(databourse.corpus.parts):
  - baseline: one pass (`build.build_version` over the staged file);
  - partitioned: `prepare_part` mapped over the partitions, `dedup_parts` once, `finish_part`
    mapped, `assemble`; on one thread, on one thread per CPU (the stages are mostly Python: the
    GIL serializes them) and, with --dask N, on a Dask LocalCluster of N worker processes.
Printed: seconds of each way, the ratio to the baseline, the seconds of the sequential part (the
dedup and the assembly), and whether every way's shards equal the baseline's, byte for byte (they
must). The machine (cores, memory) heads the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from partition_ways import print_table  # noqa: E402  (benchmarks/ on the path above)


def prepare(path: str, part: dict[str, int], folder: str) -> str:
    """What prepare-corpus-part does for one partition (module-level: Dask pickles it)."""
    from databourse.config.corpus import CorpusRules
    from databourse.corpus.documents import read_rows
    from databourse.corpus.parts import prepare_part, stem_of

    stem = stem_of(part["index"])
    batches = read_rows(Path(path), part["offset"], part["rows"])
    prepare_part(batches, CorpusRules(), Path(folder), stem)
    return stem


def finish(stem: str, folder: str) -> str:
    """What finish-corpus-part does for one partition."""
    from databourse.corpus.parts import finish_part

    finish_part(Path(folder), stem)
    return stem


def warm(path: str, folder: str) -> None:
    """A version of 50 documents built in this process: modules imported, tables loaded."""
    from databourse.config.corpus import CorpusRules
    from databourse.corpus.build import build_version
    from databourse.corpus.documents import read_rows

    build_version(read_rows(Path(path), 0, 50), CorpusRules(), Path(folder) / str(os.getpid()))


Mapper = Callable[[Callable[..., Any], list[Any], list[Any]], list[Any]]


def build(path: Path, parts: list[dict[str, int]], folder: Path, mapper: Mapper) -> float:
    """The partitioned build through `mapper`; the seconds of its sequential part."""
    from databourse.config.corpus import CorpusRules
    from databourse.corpus.parts import assemble, dedup_parts

    work = folder / "work"
    work.mkdir(parents=True)
    stems = mapper(prepare, [str(path)] * len(parts), parts, [str(work)] * len(parts))
    began = time.perf_counter()
    dedup_parts(stems, CorpusRules(), work)
    sequential = time.perf_counter() - began
    mapper(finish, stems, [str(work)] * len(stems))
    began = time.perf_counter()
    assemble(work, stems, CorpusRules(), folder / "version")
    return sequential + time.perf_counter() - began


def pool_mapper(pool: Executor) -> Mapper:
    return lambda fn, *args: list(pool.map(fn, *args))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--docs", type=int, default=6000)
    parser.add_argument("--partition-docs", type=int, default=2048)
    parser.add_argument("--dask", type=int, default=0, help="also on N Dask worker processes")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    from corpus_build import write_documents

    from databourse.config.corpus import CorpusRules
    from databourse.corpus.build import build_version
    from databourse.corpus.documents import read_documents
    from databourse.product.partitions import plan_partitions

    with tempfile.TemporaryDirectory(prefix="partitioned-corpus-") as tmp:
        work = Path(tmp)
        write_documents(work / "docs.jsonl", args.docs)
        staged = work / "staged.parquet"
        pq.write_table(pa.Table.from_batches(read_documents(work / "docs.jsonl")), staged,
                       row_group_size=2048)  # fmt: skip
        parts = [p.to_json() for p in plan_partitions(staged, args.partition_docs)]
        build_version(read_documents(staged), CorpusRules(), work / "warm")  # tables loaded
        began = time.perf_counter()
        build_version(read_documents(staged), CorpusRules(), work / "one-pass")
        figures = {"one pass (build_version)": time.perf_counter() - began}
        sequential: dict[str, str] = {}
        folders = {"one pass (build_version)": work / "one-pass"}
        ways: list[tuple[str, Callable[[], Any]]] = [
            ("partitioned, 1 thread", lambda: ThreadPoolExecutor(1)),
            (f"partitioned, {os.cpu_count()} threads", lambda: ThreadPoolExecutor(os.cpu_count())),
        ]
        for name, pool in ways:
            folder = work / name.replace(" ", "_").replace(",", "")
            began = time.perf_counter()
            with pool() as executor:
                seq = build(staged, parts, folder, pool_mapper(executor))
            figures[name] = time.perf_counter() - began
            sequential[name], folders[name] = f"{seq:.2f}", folder / "version"
        if args.dask:
            name, folder = f"partitioned, Dask {args.dask} processes", work / "dask"
            figures[name], sequential[name] = dask_way(args.dask, staged, parts, folder)
            folders[name] = folder / "version"
        baseline = {p.name: p.read_bytes() for p in (work / "one-pass").glob("part-*.parquet")}
        same = {
            name: str({p.name: p.read_bytes() for p in f.glob("part-*.parquet")} == baseline)
            for name, f in folders.items()
        }
        print_table(
            f"{args.docs} documents, {len(parts)} partitions, {len(baseline)} shards",
            figures,
            {"of which dedup + assembly": sequential, "same shards": same},
        )


def dask_way(
    workers: int, staged: Path, parts: list[dict[str, int]], folder: Path
) -> tuple[float, str]:
    """The partitioned build on a LocalCluster of `workers` single-threaded processes."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(warm, str(staged), str(folder / "warm"))  # imports and tables loaded

        def mapper(fn: Callable[..., Any], *args: list[Any]) -> list[Any]:
            return list(client.gather(client.map(fn, *args, pure=False)))

        began = time.perf_counter()
        seq = build(staged, parts, folder, mapper)
        return time.perf_counter() - began, f"{seq:.2f}"


if __name__ == "__main__":
    main()

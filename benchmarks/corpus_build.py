"""Throughput and peak memory of a corpus version build (`databourse.corpus.build`), at sizes.

The documents are nobody's here: Faker paragraphs in the locales of `redact.LOCALES` and
`redact.evaluation_set`'s documents (Faker sentences around identifiers validated by
python-stdnum and phonenumbers). Each document joins PARAGRAPHS paragraphs drawn from a pool and
one evaluation document, so documents are distinct and about 2-3 KB. A JSONL file of the size
is written first; the build then runs in a fresh process (`--child`), which reports its wall
time, peak RSS (`ru_maxrss`), the highest RSS between batches (and its anonymous part: the
dedup index's memory-mapped work files are not the process's heap) and the peak of Arrow's memory
pool, so that generating the input never counts. `--together` builds every size in one
process, in order: a size's RSS is then free of the process's warm-up (allocator arenas,
lazily loaded tables), which varies by several MB from one process to the next.

    .venv/bin/python benchmarks/corpus_build.py [--docs 2000 20000] [--paragraphs 3] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redact import LOCALES, evaluation_set

BATCH = 2048  # documents.BATCH
POOL = 60  # paragraphs per locale
PARAGRAPHS = 3


def write_documents(path: Path, n: int, paragraphs: int = PARAGRAPHS, seed: int = 7) -> int:
    """Write `n` JSONL documents of `paragraphs` paragraphs and one evaluation document
    (streaming); the bytes of their texts."""
    rng = random.Random(seed)
    pool: list[str] = []
    for locale in LOCALES:
        f = Faker("id_ID" if locale == "ms" else locale)
        f.seed_instance(seed)
        pool += [f.paragraph(nb_sentences=6) for _ in range(POOL)]
    planted = [d.text for d in evaluation_set(20, seed=seed)]
    size = 0
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = "\n\n".join([*rng.sample(pool, paragraphs), rng.choice(planted)])
            size += len(text.encode())
            record = {"id": f"doc-{i}", "text": text, "licence": "CC-BY-4.0", "source": "bench"}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return size


def child(sources: list[Path], folder: Path, batch: int = BATCH) -> list[dict[str, Any]]:
    """Build a version of each source in turn, in this process; for each, its counts, seconds,
    this process's peak RSS so far, the highest RSS and live bytes seen between its batches
    (start-up transients, such as parsing CC-CEDICT, excluded) and Arrow's peak so far."""
    import pyarrow as pa

    from databourse.corpus.build import CorpusRules, build_version
    from databourse.corpus.documents import read_documents

    results = []
    for source in sources:
        highest = [0, 0, 0]
        start = time.perf_counter()
        batches = _sampled(read_documents(source, batch_size=batch), highest)
        stats = build_version(batches, CorpusRules(), folder / f"version-{source.stem}")
        seconds = time.perf_counter() - start
        results.append(
            {
                "documents": stats.documents_in,
                "kept": stats.kept,
                "bytes_in": stats.bytes_in,
                "seconds": seconds,
                "docs_per_s": stats.documents_in / seconds,
                "mb_per_s": stats.bytes_in / 1e6 / seconds,
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB
                "streaming_rss": highest[0],
                "streaming_anon": highest[2],
                "live_bytes": highest[1],
                "arrow_peak": pa.default_memory_pool().max_memory(),
            }
        )
    return results


def _sampled(batches: Iterator[Any], highest: list[int]) -> Iterator[Any]:
    for item in batches:
        yield item  # resumed once the build has taken this batch through every step
        highest[0] = max(highest[0], rss())
        highest[1] = max(highest[1], live_bytes())
        highest[2] = max(highest[2], anonymous_rss())


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def live_bytes() -> int:
    """Bytes in use now: glibc's heap and mmapped blocks (Python objects over 512 bytes, NumPy
    arrays; `mallinfo2`) and Arrow's pool. Unlike RSS, freed memory that the allocator keeps
    does not count, so what a build holds on to shows even below that slack."""
    import pyarrow as pa

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd + pa.total_allocated_bytes())


def rss() -> int:
    """This process's resident set size now (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def anonymous_rss() -> int:
    """The part of the RSS that is the process's own memory (RssAnon): without the pages of
    memory-mapped files (the dedup index's work files), which the kernel drops when it needs to."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(
    sizes: list[int], folder: Path, batch: int = BATCH, paragraphs: int = PARAGRAPHS
) -> list[dict[str, Any]]:
    """Write a JSONL file of each size under `folder`, then build them one after the other in
    one child process (a size's memory is then free of the process's warm-up, when an
    earlier size ran before it)."""
    sources: list[Path] = []
    for n in sizes:
        sources.append(folder / f"docs-{n}-{len(sources)}.jsonl")
        write_documents(sources[-1], n, paragraphs)
    argv = ["--child", str(folder), *map(str, sources), "--batch", str(batch)]
    proc = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, check=True
    )
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--batch", type=int, default=BATCH, help="documents per batch")
    parser.add_argument("--paragraphs", type=int, default=PARAGRAPHS, help="per document")
    parser.add_argument(
        "--together", action="store_true", help="build every size in one process, in order"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, *sources = args.child
        sys.stdout.write(json.dumps(child(sources, folder, args.batch)) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="corpus-build-") as tmp:
        if args.together:
            rows = measure(args.docs, Path(tmp), args.batch, args.paragraphs)
        else:
            rows = [
                r for n in args.docs for r in measure([n], Path(tmp), args.batch, args.paragraphs)
            ]
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    columns = ("documents", "MB of text", "seconds", "docs/s", "MB/s", "peak RSS MB",
               "RSS between batches MB", "of which anonymous MB", "live MB between batches",
               "Arrow peak MB")  # fmt: skip
    sys.stdout.write(f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n")
    for r in rows:
        sys.stdout.write(
            f"| {r['documents']} | {r['bytes_in'] / 1e6:.1f} | {r['seconds']:.1f}"
            f" | {r['docs_per_s']:.0f} | {r['mb_per_s']:.2f} | {r['peak_rss'] / 1e6:.0f}"
            f" | {r['streaming_rss'] / 1e6:.0f} | {r['streaming_anon'] / 1e6:.0f}"
            f" | {r['live_bytes'] / 1e6:.1f}"
            f" | {r['arrow_peak'] / 1e6:.1f} |\n"
        )


if __name__ == "__main__":
    main()

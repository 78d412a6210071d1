"""A corpus version built in partitions of its documents, stage by stage, through work files.

The build-corpus flow maps `prepare_part` and `finish_part` over partitions of the staged
documents (threads, or Dask processes on other machines) and runs `dedup_parts` once between
them, over every partition in document order; `assemble` writes the version. It is the version
`build.build_version` makes in one pass (the stages decide each document alone: `stages`), with
the same stats and shards, byte for byte (tests). Files of partition `part-NNNNN` (the stem) in
the work folder:
- `prepare_part`: `<stem>.arrow` (the kept documents, `stages.PREPARED`, Arrow IPC),
  `<stem>-keys.npy` (their dedup keys), `<stem>-prepared.json` (counts);
- `dedup_parts`: `<stem>-dups.npy` (each document's verdict: 0 kept, 1 exact, 2 near duplicate)
  for every part, and `dedup_index.npz` and `dedup.json` (counts, cluster sizes) once;
- `finish_part`: `<stem>-out.arrow` (the redacted documents, OUTPUT), `<stem>-finished.json`.
Each function returns the names of the files it wrote; the documents and their values stay in
the files (a task's result names files and carries their seals, never a value).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from databourse.config.corpus import CorpusRules
from databourse.corpus.build import INDEX_NAME, Shards, check_redaction, close_version, open_index
from databourse.corpus.dedup import lsh_params
from databourse.corpus.langid import LanguageIdentification
from databourse.corpus.stages import (
    OUTPUT,
    PREPARED,
    CorpusStats,
    duplicate_kinds,
    finish,
    prepare,
)
from databourse.pii.pseudonym_tokens import DistinctTokens
from databourse.pii.text_spans import Replace

DEDUP = "dedup.json"


def stem_of(index: int) -> str:
    """The stem of partition `index`'s work files."""
    return f"part-{index:05d}"


def prepare_part(
    batches: Iterable[pa.RecordBatch],
    rules: CorpusRules,
    folder: Path,
    stem: str,
    keys: Mapping[str, bytes] | None = None,
) -> list[str]:
    """Stage 1 over a partition's documents (`documents.read_rows`); its work files."""
    stats, identify, found = CorpusStats(), LanguageIdentification(rules.languages), []
    with pa.ipc.new_file(str(folder / f"{stem}.arrow"), PREPARED) as writer:
        for batch in batches:
            table, doc_keys = prepare(batch, rules, identify, stats, keys)
            writer.write_table(table)
            found.append(doc_keys)
    bands, _ = lsh_params(rules.dedup.threshold, rules.dedup.num_perm, rules.dedup.min_recall)
    np.save(folder / f"{stem}-keys.npy", np.vstack([np.zeros((0, 1 + bands), np.uint64), *found]))
    _write_json(folder / f"{stem}-prepared.json", stats.counts())
    return [f"{stem}.arrow", f"{stem}-keys.npy", f"{stem}-prepared.json"]


def dedup_parts(
    stems: list[str], rules: CorpusRules, folder: Path, earlier: Path | None = None
) -> list[str]:
    """Stage 2 over every partition, in document order, against the earlier version's index
    (`earlier`: its folder or file); the verdicts' files, the updated index and the counts."""
    stats = CorpusStats()
    with open_index(rules, earlier) as index:
        for stem in stems:
            ids = _read(folder / f"{stem}.arrow").column("id").to_pylist()
            kinds = duplicate_kinds(index, ids, np.load(folder / f"{stem}-keys.npy"))
            stats.removed["exact_duplicate"] += int((kinds == 1).sum())
            stats.removed["near_duplicate"] += int((kinds == 2).sum())
            np.save(folder / f"{stem}-dups.npy", kinds)
        index.save(folder / INDEX_NAME)
        clusters = index.cluster_size_counts()
    _write_json(folder / DEDUP, {**stats.counts(), "clusters": clusters})
    return [*(f"{stem}-dups.npy" for stem in stems), INDEX_NAME, DEDUP]


def finish_part(folder: Path, stem: str, pseudonyms: Replace | None = None) -> list[str]:
    """Stage 3 over a partition: its documents the dedup kept, redacted and re-scanned."""
    stats, kinds, at = CorpusStats(), np.load(folder / f"{stem}-dups.npy"), 0
    with pa.ipc.new_file(str(folder / f"{stem}-out.arrow"), OUTPUT) as writer:
        for batch in _batches(folder / f"{stem}.arrow"):
            table = pa.Table.from_batches([batch])
            kept = pa.array(kinds[at : at + table.num_rows] == 0)
            at += table.num_rows
            writer.write_table(finish(table.filter(kept), stats, pseudonyms))
    if at != len(kinds):
        raise ValueError(f"{stem}: {len(kinds)} dedup verdicts for {at} documents")
    _write_json(folder / f"{stem}-finished.json", stats.counts())
    return [f"{stem}-out.arrow", f"{stem}-finished.json"]


def assemble(
    folder: Path,
    stems: list[str],
    rules: CorpusRules,
    out_dir: Path,
    pseudonyms: Replace | None = None,
) -> CorpusStats:
    """The version in `out_dir` (new or empty) from the partitions' outputs, in order: shards,
    stats, and the updated dedup index when the version passed (as `build.build_version`)."""
    check_redaction(rules, pseudonyms)
    stats = CorpusStats(leftover_limit=rules.leftover_limit)
    for stem in stems:
        stats.add(_read_json(folder / f"{stem}-prepared.json"))
    dedup = _read_json(folder / DEDUP)
    stats.add(dedup)
    stats.duplicate_clusters = {int(size): int(n) for size, n in dedup["clusters"].items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, tokens = Shards(out_dir, rules.shard_documents), DistinctTokens()
    try:
        for stem in stems:
            stats.add(_read_json(folder / f"{stem}-finished.json"))
            for batch in _batches(folder / f"{stem}-out.arrow"):
                tokens.add(batch.column("text"))
                shards.write(pa.Table.from_batches([batch]))
    except BaseException:
        shards.abort()
        raise
    stats.pseudonyms = tokens.counts()
    close_version(out_dir, shards, stats, lambda path: shutil.copyfile(folder / INDEX_NAME, path))
    return stats


def _read(path: Path) -> pa.Table:
    """An Arrow IPC work file, memory-mapped (its buffers keep the map open)."""
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The record batches of an Arrow IPC work file, one at a time, memory-mapped."""
    reader = pa.ipc.open_file(pa.memory_map(str(path)))
    for i in range(reader.num_record_batches):
        yield reader.get_batch(i)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data

"""A corpus version built in streaming batches, from a provider's documents to Parquet shards.

Per batch, the three stages of `stages` in order: prepare (opt-out, licence, language, quality
filters, dedup keys) -> exact then near duplicates removed against this version's earlier
batches and the earlier versions' index -> personal data replaced by typed placeholders or, with
`redaction: pseudonym`, keyed pseudonyms (the distinct pseudonyms of each category counted) and
the output scanned again -> Parquet shards (zstd, SHARD_DOCUMENTS each, in row groups of
ROW_GROUP documents whatever the batches were, written under a temporary name and renamed). A
version holds the documents new to it: one seen in an earlier version is a duplicate. The
updated dedup index (INDEX_NAME) and the stats (STATS_NAME) go beside the shards. A partitioned
build (`parts`) makes the same version from partitions of the documents.

Leftover rate: identifiers the re-scan still finds / (identifiers replaced + still found), the
share of the personal data found that is left (as `bourse redact` reports it); also given per
million characters of output. A version over `leftover_limit` is not passed: its index is not
saved (no later version can build on it) and `leftover_gate` refuses it.
Memory: one batch of documents and one shard writer at a time, flat in the corpus size; the dedup
index grows with the documents in files of a work folder (`dedup_index`), removed when the build
ends. Stats hold counts only, never a value.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from databourse.config.corpus import DEDUP_INDEX
from databourse.config.corpus import SHARD_DOCUMENTS as SHARD_DOCUMENTS
from databourse.config.corpus import CorpusRules as CorpusRules
from databourse.corpus.dedup_index import DedupIndex
from databourse.corpus.langid import LanguageIdentification
from databourse.corpus.stages import OUTPUT as OUTPUT
from databourse.corpus.stages import CorpusStats as CorpusStats
from databourse.corpus.stages import duplicate_kinds, finish, prepare, remove_duplicates
from databourse.errors import ConfigError, ObjectExists, PersonalDataFound
from databourse.pii.pseudonym_tokens import DistinctTokens
from databourse.pii.text_spans import Replace

log = logging.getLogger(__name__)

INDEX_NAME = DEDUP_INDEX
STATS_NAME = "stats.json"
ROW_GROUP = 1024  # documents a row group of a shard (its last one: fewer)


def load_rules(path: Path) -> CorpusRules:
    """The rules of a YAML file; one ConfigError lists every bad key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return CorpusRules.model_validate(data if data is not None else {})
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: not a readable YAML file ({type(exc).__name__})"]) from None
    except ValidationError as exc:
        raise ConfigError(
            [f"{path}: {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()]
        ) from None


def measure(
    batches: Iterable[pa.RecordBatch],
    rules: CorpusRules,
    earlier_index: Path | None = None,
    keys: Mapping[str, bytes] | None = None,
    pseudonyms: Replace | None = None,
) -> CorpusStats:
    """The stats of a version built from `batches`, writing nothing."""
    with open_index(rules, earlier_index) as index:
        stats, _ = _run(batches, rules, index, None, keys, pseudonyms)
    return stats


def build_version(
    batches: Iterable[pa.RecordBatch],
    rules: CorpusRules,
    out_dir: Path,
    earlier_index: Path | None = None,
    keys: Mapping[str, bytes] | None = None,
    pseudonyms: Replace | None = None,
) -> CorpusStats:
    """Build a version into `out_dir` (new or empty): shards, the dedup index, the stats.

    `batches` are `documents.read_documents`'s; `earlier_index` is the previous version's
    folder (or its index file), whose documents count as seen; `keys` (key id -> material) those
    the opt-out's author digests were made under (`opt_out.author_digest`); `pseudonyms` the
    replacement of `redaction: pseudonym` (`pseudonyms.TextPseudonyms`)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ObjectExists(f"{out_dir}: not empty; a version is written once", path=str(out_dir))
    with open_index(rules, earlier_index) as index:
        out_dir.mkdir(parents=True, exist_ok=True)
        shards = Shards(out_dir, rules.shard_documents)
        try:
            stats, index = _run(batches, rules, index, shards, keys, pseudonyms)
        except BaseException:
            shards.abort()  # nothing of a failed version stays
            raise
        close_version(out_dir, shards, stats, index.save)
    return stats


def close_version(
    out_dir: Path, shards: Shards, stats: CorpusStats, save_index: Callable[[Path], object]
) -> None:
    """The last shard closed, the stats written beside the shards, and the dedup index (through
    `save_index`) when the version passed."""
    shards.close()
    stats.shards = [path.name for path in shards.written]
    stats.bytes_written = sum(path.stat().st_size for path in shards.written)
    if stats.passed:
        write_atomically(out_dir / INDEX_NAME, save_index)
    text = json.dumps(stats.to_dict(), indent=2, sort_keys=True)
    write_atomically(out_dir / STATS_NAME, lambda path: path.write_text(text, encoding="utf-8"))
    log.info("corpus version: %d in, %d kept", stats.documents_in, stats.kept)


def leftover_gate(stats: CorpusStats) -> None:
    """Refuse a version whose leftover rate is over its limit."""
    if not stats.passed:
        raise PersonalDataFound(
            f"leftover rate {stats.leftover_rate:.4%} is over the limit"
            f" {stats.leftover_limit:.4%}: {sum(stats.leftover.values())} identifiers left",
            leftover=dict(stats.leftover),
        )


def open_index(rules: CorpusRules, earlier: Path | None) -> DedupIndex:
    """A new dedup index, or the earlier version's (its folder or file); ConfigError if it is
    missing or was made with other dedup rules."""
    if earlier is None:
        return DedupIndex(rules.dedup)
    path = earlier / INDEX_NAME if earlier.is_dir() else earlier
    if not path.is_file():
        raise ConfigError([f"{path}: no dedup index of an earlier version"])
    index = DedupIndex.load(path)
    if index.config != rules.dedup:
        index.close()
        ours, theirs = asdict(rules.dedup), asdict(index.config)
        keys = sorted(k for k in ours if ours[k] != theirs[k])
        raise ConfigError([f"{path}: dedup {', '.join(keys)} differ from the rules'"])
    return index


def check_redaction(rules: CorpusRules, pseudonyms: Replace | None) -> None:
    """ConfigError unless the pseudonym key is given exactly when the rules want pseudonyms."""
    if (rules.redaction == "pseudonym") != (pseudonyms is not None):
        raise ConfigError(
            [f"redaction: {rules.redaction} "
             + ("needs the pseudonym key" if pseudonyms is None else "takes no pseudonym key")]
        )  # fmt: skip


def _run(
    batches: Iterable[pa.RecordBatch],
    rules: CorpusRules,
    index: DedupIndex,
    shards: Shards | None,
    keys: Mapping[str, bytes] | None = None,
    pseudonyms: Replace | None = None,
) -> tuple[CorpusStats, DedupIndex]:
    check_redaction(rules, pseudonyms)
    stats = CorpusStats(leftover_limit=rules.leftover_limit)
    identify = LanguageIdentification(rules.languages)
    tokens = DistinctTokens()
    for batch in batches:
        table, doc_keys = prepare(batch, rules, identify, stats, keys)
        ids = table.column("id").to_pylist()
        table = remove_duplicates(table, duplicate_kinds(index, ids, doc_keys), stats)
        kept = finish(table, stats, pseudonyms)
        if kept.num_rows:
            tokens.add(kept.column("text"))
            if shards is not None:
                shards.write(kept)
    stats.pseudonyms = tokens.counts()
    stats.duplicate_clusters = index.cluster_size_counts()
    return stats, index


class Shards:
    """Parquet shards of at most `per_shard` documents, each renamed into place once complete;
    row groups of ROW_GROUP documents, whatever the tables written were (so the bytes of a
    shard depend on its documents only)."""

    def __init__(self, out_dir: Path, per_shard: int) -> None:
        self.out_dir, self.per_shard = out_dir, per_shard
        self.written: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._temp: Path | None = None
        self._rows = 0
        self._held: list[pa.Table] = []

    def write(self, table: pa.Table) -> None:
        """Append documents, starting a new shard whenever one is full."""
        self._held.append(table)
        while sum(t.num_rows for t in self._held) >= self._next_group():
            self._write_group(self._next_group())

    def _next_group(self) -> int:
        return min(ROW_GROUP, self.per_shard - self._rows)

    def _write_group(self, rows: int) -> None:
        held = pa.concat_tables(self._held)
        self._held = [held.slice(rows)] if held.num_rows > rows else []
        if self._writer is None:
            self._temp = self.out_dir / f".part.{secrets.token_hex(8)}.tmp"
            self._writer = pq.ParquetWriter(self._temp, OUTPUT, compression="zstd")
        self._writer.write_table(held.slice(0, rows).combine_chunks(), row_group_size=rows)
        self._rows += rows
        if self._rows == self.per_shard:
            self._finish()

    def close(self) -> None:
        """Finish the last shard (a version of no document has no shard)."""
        rest = sum(t.num_rows for t in self._held)
        if rest:
            self._write_group(rest)
        if self._writer is not None:
            self._finish()

    def abort(self) -> None:
        """Remove the shard being written and those written."""
        if self._writer is not None:
            self._writer.close()
        for path in [*self.written, *([self._temp] if self._temp else [])]:
            path.unlink(missing_ok=True)
        self.written, self._writer, self._temp, self._held = [], None, None, []

    def _finish(self) -> None:
        assert self._writer is not None and self._temp is not None
        self._writer.close()
        target = self.out_dir / f"part-{len(self.written):05d}.parquet"
        os.replace(self._temp, target)
        self.written.append(target)
        self._writer, self._temp, self._rows = None, None, 0


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Write through `write` to a temporary name beside `target`, then rename it there (no
    reader sees a file half-written)."""
    temp = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        write(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)

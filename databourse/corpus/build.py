"""A corpus version built in streaming batches, from a provider's documents to Parquet shards.

Per batch, in this order (each document counts against the FIRST step that removes it, so the
counts add up: documents in = kept + removed): opt-out (document ids, authors, domains of the
source URL) -> licence allow-list -> language (`langid`; `zh` keeps Simplified and Traditional,
code-switched `mixed` documents are kept unless told) -> quality filters (`filters`, one count
per rule as `filter:<rule>`) -> exact then near duplicates (`dedup`) against this version's
earlier batches and the earlier versions' index -> personal data replaced by typed placeholders
or, with `redaction: pseudonym`, keyed pseudonyms (`text_redact.redact_batch`, `pseudonyms`;
the distinct pseudonyms of each category counted) -> the output scanned again
(`text_redact.leftover`) -> Parquet shards (zstd, SHARD_DOCUMENTS each, written under a temporary
name and renamed). A version holds the documents new to it: one seen in an earlier version is a
duplicate. The updated dedup index (INDEX_NAME) and the stats (STATS_NAME) go beside the shards.

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
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from databourse.config.corpus import SHARD_DOCUMENTS as SHARD_DOCUMENTS
from databourse.config.corpus import CorpusRules as CorpusRules
from databourse.corpus.dedup_index import DedupIndex
from databourse.corpus.filters import quality_filter
from databourse.corpus.langid import MIXED, LanguageIdentification
from databourse.corpus.opt_out import opted_out
from databourse.errors import ConfigError, ObjectExists, PersonalDataFound
from databourse.pii.pseudonym_tokens import DistinctTokens
from databourse.pii.text_redact import leftover, redact_batch
from databourse.pii.text_spans import Replace

log = logging.getLogger(__name__)

INDEX_NAME = "dedup_index.npz"
STATS_NAME = "stats.json"
OUTPUT = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("language", pa.string()),
        ("source", pa.string()),
        ("licence", pa.string()),
        ("date", pa.string()),
        ("consent", pa.bool_()),
    ]
)  # `author` is read for the opt-out only: a name is personal data


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


@dataclass
class CorpusStats:
    """Counts of one version (never a value): see the module docstring for the rates."""

    documents_in: int = 0
    kept: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)  # of the kept documents
    languages_identified: Counter[str] = field(default_factory=Counter)  # before their filter
    duplicate_clusters: dict[int, int] = field(default_factory=dict)  # size: clusters
    redacted: Counter[str] = field(default_factory=Counter)
    leftover: Counter[str] = field(default_factory=Counter)
    pseudonyms: dict[str, int] = field(default_factory=dict)  # distinct tokens per category
    bytes_in: int = 0  # UTF-8 bytes of the texts read
    bytes_out: int = 0  # of the texts kept, after redaction
    characters_out: int = 0
    shards: list[str] = field(default_factory=list)
    bytes_written: int = 0
    leftover_limit: float = 0.005

    @property
    def leftover_rate(self) -> float:
        """Identifiers left / identifiers found (replaced or left)."""
        found = sum(self.redacted.values()) + sum(self.leftover.values())
        return sum(self.leftover.values()) / found if found else 0.0

    @property
    def leftover_per_million_characters(self) -> float:
        """Identifiers left per million characters of output."""
        return sum(self.leftover.values()) * 1e6 / max(self.characters_out, 1)

    @property
    def passed(self) -> bool:
        """Within the leftover limit."""
        return self.leftover_rate <= self.leftover_limit

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counts sorted, the rates and the verdict added."""
        data = asdict(self)
        for name in ("removed", "languages", "languages_identified", "redacted", "leftover"):
            data[name] = dict(getattr(self, name).most_common())
        data["duplicate_clusters"] = {str(k): v for k, v in sorted(self.duplicate_clusters.items())}
        data["leftover_rate"] = self.leftover_rate
        data["leftover_per_million_characters"] = self.leftover_per_million_characters
        data["passed"] = self.passed
        return data


def measure(
    batches: Iterable[pa.RecordBatch],
    rules: CorpusRules,
    earlier_index: Path | None = None,
    keys: Mapping[str, bytes] | None = None,
    pseudonyms: Replace | None = None,
) -> CorpusStats:
    """The stats of a version built from `batches`, writing nothing."""
    with _index(rules, earlier_index) as index:
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
    with _index(rules, earlier_index) as index:
        out_dir.mkdir(parents=True, exist_ok=True)
        shards = Shards(out_dir, rules.shard_documents)
        try:
            stats, index = _run(batches, rules, index, shards, keys, pseudonyms)
        except BaseException:
            shards.abort()  # nothing of a failed version stays
            raise
        shards.close()
        stats.shards = [path.name for path in shards.written]
        stats.bytes_written = sum(path.stat().st_size for path in shards.written)
        if stats.passed:
            write_atomically(out_dir / INDEX_NAME, lambda path: index.save(path))
    text = json.dumps(stats.to_dict(), indent=2, sort_keys=True)
    write_atomically(out_dir / STATS_NAME, lambda path: path.write_text(text, encoding="utf-8"))
    log.info("corpus version: %d in, %d kept", stats.documents_in, stats.kept)
    return stats


def leftover_gate(stats: CorpusStats) -> None:
    """Refuse a version whose leftover rate is over its limit."""
    if not stats.passed:
        raise PersonalDataFound(
            f"leftover rate {stats.leftover_rate:.4%} is over the limit"
            f" {stats.leftover_limit:.4%}: {sum(stats.leftover.values())} identifiers left",
            leftover=dict(stats.leftover),
        )


def _index(rules: CorpusRules, earlier: Path | None) -> DedupIndex:
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


def _run(
    batches: Iterable[pa.RecordBatch],
    rules: CorpusRules,
    index: DedupIndex,
    shards: Shards | None,
    keys: Mapping[str, bytes] | None = None,
    pseudonyms: Replace | None = None,
) -> tuple[CorpusStats, DedupIndex]:
    if (rules.redaction == "pseudonym") != (pseudonyms is not None):
        raise ConfigError(
            [f"redaction: {rules.redaction} "
             + ("needs the pseudonym key" if pseudonyms is None else "takes no pseudonym key")]
        )  # fmt: skip
    stats = CorpusStats(leftover_limit=rules.leftover_limit)
    identify = LanguageIdentification(rules.languages)
    tokens = DistinctTokens()
    for batch in batches:
        kept = _step(batch, rules, identify, index, stats, keys, pseudonyms)
        if kept is not None:
            tokens.add(kept.column("text"))
            if shards is not None:
                shards.write(kept)
    stats.pseudonyms = tokens.counts()
    stats.duplicate_clusters = index.cluster_size_counts()
    return stats, index


def _step(
    batch: pa.RecordBatch,
    rules: CorpusRules,
    identify: LanguageIdentification,
    index: DedupIndex,
    stats: CorpusStats,
    keys: Mapping[str, bytes] | None = None,
    pseudonyms: Replace | None = None,
) -> pa.Table | None:
    """One batch through every step; the kept documents, redacted, in OUTPUT's schema."""
    table = pa.Table.from_batches([batch])
    stats.documents_in += table.num_rows
    texts = table.column("text")
    stats.bytes_in += int(pc.sum(pc.binary_length(texts)).as_py() or 0)
    table = _keep(table, opted_out(table, rules.opt_out, keys), "opt_out", stats)
    table = _keep(table, _licence_refused(table, rules.licences), "licence", stats)
    labels = identify.labels(table.column("text"))
    stats.languages_identified.update(labels)
    table = table.append_column("language", pa.array(labels, pa.string()))
    table = _keep(table, ~_listed(labels, rules), "language", stats)
    labels = table.column("language").to_pylist()
    result = quality_filter(table.column("text"), rules.quality, labels)
    for reason, n in result.removed_by.items():
        stats.removed[f"filter:{reason}"] += n
    table = table.filter(pa.array(result.keep))
    dup = index.add(table.column("text"), table.column("id").to_pylist())
    kinds = np.array([kind or "" for kind in dup.kind])
    table = _keep(table, kinds == "exact", "exact_duplicate", stats)
    table = _keep(table, kinds[kinds != "exact"] == "near", "near_duplicate", stats)
    if table.num_rows == 0:
        return None
    redacted, counts = redact_batch(table.column("text"), pseudonyms)
    stats.redacted.update(counts)
    stats.leftover.update(leftover(redacted))
    stats.kept += table.num_rows
    stats.languages.update(table.column("language").to_pylist())
    stats.bytes_out += int(pc.sum(pc.binary_length(redacted)).as_py() or 0)
    stats.characters_out += int(pc.sum(pc.utf8_length(redacted)).as_py() or 0)
    table = table.set_column(table.schema.get_field_index("text"), "text", redacted)
    return table.select(OUTPUT.names).cast(OUTPUT)


def _keep(table: pa.Table, remove: np.ndarray, reason: str, stats: CorpusStats) -> pa.Table:
    if remove.any():
        stats.removed[reason] += int(remove.sum())
        return table.filter(pa.array(~remove))
    return table


def _licence_refused(table: pa.Table, licences: frozenset[str] | None) -> np.ndarray:
    if licences is None:
        return np.zeros(table.num_rows, dtype=bool)
    return np.array([lic not in licences for lic in table.column("licence").to_pylist()], bool)


def _listed(labels: list[str], rules: CorpusRules) -> np.ndarray:
    """Whether each label is a listed language (or `mixed`, when kept)."""
    if rules.languages is None:
        return np.ones(len(labels), dtype=bool)
    return np.array(
        [
            (label.split("-")[0] in rules.languages) or (label == MIXED and rules.keep_mixed)
            for label in labels
        ],
        dtype=bool,
    )


class Shards:
    """Parquet shards of at most `per_shard` documents, each renamed into place once complete."""

    def __init__(self, out_dir: Path, per_shard: int) -> None:
        self.out_dir, self.per_shard = out_dir, per_shard
        self.written: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._temp: Path | None = None
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        """Append documents, starting a new shard whenever one is full."""
        while table.num_rows:
            if self._writer is None:
                self._temp = self.out_dir / f".part.{secrets.token_hex(8)}.tmp"
                self._writer = pq.ParquetWriter(self._temp, OUTPUT, compression="zstd")
            part = table.slice(0, self.per_shard - self._rows)
            self._writer.write_table(part)
            self._rows += part.num_rows
            table = table.slice(part.num_rows)
            if self._rows == self.per_shard:
                self._finish()

    def close(self) -> None:
        """Finish the last shard (a version of no document has no shard)."""
        if self._writer is not None:
            self._finish()

    def abort(self) -> None:
        """Remove the shard being written and those written."""
        if self._writer is not None:
            self._writer.close()
        for path in [*self.written, *([self._temp] if self._temp else [])]:
            path.unlink(missing_ok=True)
        self.written, self._writer, self._temp = [], None, None

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

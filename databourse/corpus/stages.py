"""A corpus version's build in three stages, so that partitions of the documents can run apart.

`build.build_version` runs the stages batch by batch in one process; a partitioned build
(`parts`) runs `prepare` and `finish` over partitions of the documents in separate tasks, and the
dedup over every partition's keys, in document order, between them. Each stage decides for each
document alone (never from the other documents of its batch), and the dedup sees the documents
in the same order, so the version does not depend on where the documents were cut.
1. `prepare`: opt-out (document ids, authors, domains of the source URL) -> licence allow-list
   -> language (`langid`; `zh` keeps Simplified and Traditional, code-switched `mixed`
   documents are kept unless told) -> quality filters (`filters`, one count per rule as
   `filter:<rule>`). The kept documents, with their language (PREPARED), and their dedup keys
   (`dedup.document_keys`: they need the text only).
2. `remove_duplicates`: exact then near duplicates (`DedupIndex.add_keys`), against this
   version's earlier documents and the earlier versions' index.
3. `finish`: personal data replaced by typed placeholders or keyed pseudonyms
   (`text_redact.redact_batch`), the output scanned again (`text_redact.leftover`); the table
   in OUTPUT's schema.
Each document counts against the FIRST step that removes it, so the counts add up: documents in
= kept + removed. `CorpusStats` of parts merge by adding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config.corpus import CorpusRules
from databourse.corpus.dedup import document_keys
from databourse.corpus.dedup_index import DedupIndex
from databourse.corpus.filters import quality_filter
from databourse.corpus.langid import MIXED, LanguageIdentification
from databourse.corpus.opt_out import opted_out
from databourse.pii.text_redact import leftover, redact_batch
from databourse.pii.text_spans import Replace

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
PREPARED = OUTPUT  # what `prepare` keeps: the same columns, the text not yet redacted
COUNTERS = ("removed", "languages", "languages_identified", "redacted", "leftover")
SUMS = ("documents_in", "kept", "bytes_in", "bytes_out", "characters_out")


@dataclass
class CorpusStats:
    """Counts of one version (never a value): see `build`'s module docstring for the rates."""

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
        for name in COUNTERS:  # the most first; ties by name, however the counts were added
            data[name] = dict(sorted(getattr(self, name).items(), key=lambda kv: (-kv[1], kv[0])))
        data["duplicate_clusters"] = {str(k): v for k, v in sorted(self.duplicate_clusters.items())}
        data["leftover_rate"] = self.leftover_rate
        data["leftover_per_million_characters"] = self.leftover_per_million_characters
        data["passed"] = self.passed
        return data

    def counts(self) -> dict[str, Any]:
        """The counts a stage adds (sums and counters), JSON-ready, for `add`."""
        return {name: getattr(self, name) for name in SUMS} | {
            name: dict(getattr(self, name)) for name in COUNTERS
        }

    def add(self, counts: Mapping[str, Any]) -> None:
        """Add the counts of another stage or part (`counts`)."""
        for name in SUMS:
            setattr(self, name, getattr(self, name) + int(counts[name]))
        for name in COUNTERS:
            getattr(self, name).update({k: int(v) for k, v in counts[name].items()})


def prepare(
    batch: pa.RecordBatch | pa.Table,
    rules: CorpusRules,
    identify: LanguageIdentification,
    stats: CorpusStats,
    keys: Mapping[str, bytes] | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """Stage 1 of a batch: the documents kept (PREPARED) and their dedup keys."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    stats.documents_in += table.num_rows
    stats.bytes_in += int(pc.sum(pc.binary_length(table.column("text"))).as_py() or 0)
    table = keep(table, opted_out(table, rules.opt_out, keys), "opt_out", stats)
    table = keep(table, _licence_refused(table, rules.licences), "licence", stats)
    labels = identify.labels(table.column("text"))
    stats.languages_identified.update(labels)
    table = table.append_column("language", pa.array(labels, pa.string()))
    table = keep(table, ~_listed(labels, rules), "language", stats)
    labels = table.column("language").to_pylist()
    result = quality_filter(table.column("text"), rules.quality, labels)
    for reason, n in result.removed_by.items():
        stats.removed[f"filter:{reason}"] += n
    table = table.filter(pa.array(result.keep)).select(PREPARED.names).cast(PREPARED)
    return table, document_keys(table.column("text").to_pylist(), rules.dedup)


def duplicate_kinds(index: DedupIndex, ids: list[str], keys: np.ndarray) -> np.ndarray:
    """Stage 2's verdicts: 0 kept, 1 an exact duplicate, 2 a near one (int8, one a document)."""
    kinds = index.add_keys(keys, ids).kind
    return np.array([{None: 0, "exact": 1, "near": 2}[kind] for kind in kinds], dtype=np.int8)


def remove_duplicates(table: pa.Table, kinds: np.ndarray, stats: CorpusStats) -> pa.Table:
    """Stage 2 applied: the documents `duplicate_kinds` kept."""
    table = keep(table, kinds == 1, "exact_duplicate", stats)
    return keep(table, kinds[kinds != 1] == 2, "near_duplicate", stats)


def finish(table: pa.Table, stats: CorpusStats, pseudonyms: Replace | None) -> pa.Table:
    """Stage 3: the documents redacted, their leftovers counted; in OUTPUT's schema."""
    if table.num_rows == 0:
        return OUTPUT.empty_table()
    redacted, counts = redact_batch(table.column("text"), pseudonyms)
    stats.redacted.update(counts)
    stats.leftover.update(leftover(redacted))
    stats.kept += table.num_rows
    stats.languages.update(table.column("language").to_pylist())
    stats.bytes_out += int(pc.sum(pc.binary_length(redacted)).as_py() or 0)
    stats.characters_out += int(pc.sum(pc.utf8_length(redacted)).as_py() or 0)
    table = table.set_column(table.schema.get_field_index("text"), "text", redacted)
    return table.select(OUTPUT.names).cast(OUTPUT)


def keep(table: pa.Table, remove: np.ndarray, reason: str, stats: CorpusStats) -> pa.Table:
    """The rows not in `remove`; how many were removed counted under `reason`."""
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

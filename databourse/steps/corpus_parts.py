"""Build a corpus product's version in partitions of its staged documents: the build-corpus
flow's passes. The version is the one `corpus.build_corpus` builds in one pass (`corpus.parts`).

- `plan_corpus`: the partitions of the staged file (about `settings.runs.corpus_documents` each),
  and the rules written once to the work folder (`rules.json`, with the opt-out requests recorded
  so far: every pass builds by the same rules, whatever request arrives meanwhile); the earlier
  version whose de-duplication index the dedup pass reads is named in the plan.
- `prepare_partition` (mapped), `dedup_partitions` (once: every partition in order),
  `finish_partition` (mapped), `package_parts` (shards, stats, the leftover gate, the version).
The passes read the staged file in checked byte ranges (S3) or the build's checked private copy
(local store: `tasks.work_files`); they exchange work files named in their results with the
sha256 each writer recorded (`Pass.sealed`), never a value. Keys (the pseudonym key, the keys of
opt-out author digests) come from each pass's own resources, never from a result.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from databourse.config import ProductSpec
from databourse.config.corpus import CorpusRules
from databourse.corpus import parts
from databourse.corpus.build import INDEX_NAME
from databourse.corpus.documents import read_rows
from databourse.corpus.pseudonyms import TextPseudonyms
from databourse.ingest.records import IngestResult
from databourse.product.partitions import Partition, Source, plan_partitions
from databourse.steps.building import JsonResult, expected, sealed, staged_blocks
from databourse.steps.corpus import (
    Built,
    CorpusVersion,
    earlier_index,
    manifests,
    rules_now,
    version_of,
    version_of_ingest,
)
from databourse.steps.resources import Resources, catalogued

RULES_FILE = "rules.json"


@dataclass(frozen=True)
class CorpusPlan(JsonResult):
    """The staged documents, the work folder and its first seals, the partitions, and the
    earlier version the dedup reads."""

    product: str
    ingest_id: str
    staged_key: str
    staged: dict[str, Any]  # sha256 and size; on S3 the hashes of its blocks each read checks
    work: str
    sealed: dict[str, str]
    partitions: list[Partition]
    against: str | None  # the earlier version whose dedup index the version is built against

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The plan a `to_json` dict describes."""
        return cls(**{**data, "partitions": [Partition.from_json(p) for p in data["partitions"]]})


@dataclass(frozen=True)
class Pass(JsonResult):
    """What a pass wrote: its work files' sha256 by name (a partition's pass: its stem)."""

    stem: str | None
    sealed: dict[str, str]


def built_already(res: Resources, product_id: str, ingest_id: str) -> CorpusVersion | None:
    """The version the ingest was built into, if any (a second build would find every
    document a duplicate of it). The product's catalog row is made when missing."""
    catalogued(res, product_id)
    return version_of_ingest(res.store, manifests(res, product_id), ingest_id)


def plan_corpus(
    res: Resources,
    record: IngestResult,
    trusted: dict[str, Any],
    product_id: str,
    work: str,
    files: tuple[Path, Path, dict[str, str]],
    rows: int,
    uri: str | None,
) -> CorpusPlan:
    """The plan of a build of the staged documents (`files`: the staged file, the work
    folder, the seal of the private copy; as `tasks.building.planned_files`); on S3 (no seal)
    the staged file's blocks hashed in a read checked against `trusted` (sha256 and size from
    the audit trail: ObjectChanged naming `uri`)."""
    source, folder, seals = files
    product = catalogued(res, product_id)
    rules, _ = rules_now(res, product)
    (folder / RULES_FILE).write_text(rules.model_dump_json(), encoding="utf-8")
    staged = trusted if seals else staged_blocks(source, trusted, uri)
    published = manifests(res, product_id)
    return CorpusPlan(
        product_id, record.ingest_id, record.staged_key, staged, work,
        {**seals, **sealed(folder, [RULES_FILE])}, plan_partitions(source, rows),
        published[0]["version"] if published else None,
    )  # fmt: skip


def load_rules(folder: Path) -> CorpusRules:
    """The build's rules, from its (checked) work file."""
    return CorpusRules.model_validate_json((folder / RULES_FILE).read_text(encoding="utf-8"))


def prepare_partition(
    res: Resources, plan: CorpusPlan, part: Partition, source: Source, folder: Path
) -> Pass:
    """Stage 1 over one partition: opt-out, licence, language, quality filters, dedup keys."""
    _, keys = rules_now(res, catalogued(res, plan.product))  # the digests' keys only
    stem = parts.stem_of(part.index)
    label = res.store.uri(plan.staged_key)
    batches = read_rows(source, part.offset, part.rows, label=label)
    names = parts.prepare_part(batches, load_rules(folder), folder, stem, keys)
    return Pass(stem, sealed(folder, names))


def dedup_partitions(res: Resources, plan: CorpusPlan, stems: list[str], folder: Path) -> Pass:
    """Stage 2 over every partition in order, against the planned earlier version's index."""
    published = [m for m in manifests(res, plan.product) if m["version"] == plan.against]
    if plan.against is not None and not published:
        raise ValueError(f"{plan.product}@{plan.against}: the earlier version is not listed")
    with tempfile.TemporaryDirectory(prefix="databourse-corpus-") as tmp:
        earlier = earlier_index(res, published, Path(tmp))
        names = parts.dedup_parts(stems, load_rules(folder), folder, earlier)
    return Pass(None, sealed(folder, names))


def finish_partition(folder: Path, stem: str, pseudonyms: TextPseudonyms | None) -> Pass:
    """Stage 3 over one partition: the kept documents redacted and scanned again."""
    return Pass(stem, sealed(folder, parts.finish_part(folder, stem, pseudonyms)))


def package_parts(
    res: Resources,
    plan: CorpusPlan,
    record: IngestResult,
    stems: list[str],
    folder: Path,
    pseudonyms: TextPseudonyms | None,
) -> CorpusVersion:
    """The version of the partitions' outputs: shards, stats, the leftover gate, the package."""
    product: ProductSpec = catalogued(res, plan.product)
    rules = load_rules(folder)
    with tempfile.TemporaryDirectory(prefix="databourse-corpus-") as tmp:
        out = Path(tmp) / "version"
        stats = parts.assemble(folder, stems, rules, out, pseudonyms)
        return version_of(res, Built(product, record, out, stats, rules, pseudonyms))


def reads(plan: CorpusPlan, stage: str, stems: list[str], *results: Pass) -> dict[str, str]:
    """The work files a stage reads (`prepare`, `dedup`, `finish` of the first stem, `package`),
    with the sha256 the passes that wrote them recorded (ValueError if none did)."""
    seals = [plan.sealed, *(r.sealed for r in results)]
    names = [RULES_FILE]
    if stage == "dedup":
        names += [f"{s}{end}" for s in stems for end in (".arrow", "-keys.npy")]
    elif stage == "finish":
        names += [f"{stems[0]}.arrow", f"{stems[0]}-dups.npy"]
    elif stage == "package":
        names += [f"{s}{end}" for s in stems for end in ("-prepared.json", "-out.arrow")]
        names += [f"{s}-finished.json" for s in stems] + [INDEX_NAME, parts.DEDUP]
    return expected(names, *seals)

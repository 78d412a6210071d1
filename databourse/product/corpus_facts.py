"""The transfer facts of a corpus version: what the re-scan still finds in its text.

A corpus's text column has its identifiers replaced by typed placeholders; what the same
detectors still find there (`text_redact.leftover`) is the personal data it carries. Each
category left counts as remaining (`text#<CATEGORY>`: the column and the category, as a table's
`remaining` names a column and its category), and the identifiers left count as the individuals
(at most one each: an upper bound). A version that leaves nothing carries no personal data.
`recount_corpus` re-derives them from the version's shards, as the gate and `verify` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from databourse.pii.text_redact import leftover
from databourse.product.package import transfer_facts

TEXT = "text"
SCAN_ROWS = 8192  # documents re-scanned at a time


def remaining_of(left: dict[str, int]) -> tuple[dict[str, str], int]:
    """`remaining` (text#CATEGORY -> CATEGORY) and the individuals, from the counts left."""
    remaining = {f"{TEXT}#{category}": category for category, n in left.items() if n > 0}
    return dict(sorted(remaining.items())), sum(n for n in left.values() if n > 0)


def corpus_facts(
    left: dict[str, int], origin: str, important_data: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's personal_data section, and the transfer facts as the hash covers them."""
    remaining, individuals = remaining_of(left)
    facts = transfer_facts(origin, remaining, individuals, important_data)
    personal = {
        "remaining": remaining,
        "individuals": facts["individuals"],
        "sensitive_categories": facts["sensitive_categories"],
        "important_data": facts["important_data"],
        "leftover": dict(sorted(left.items())),
    }
    return personal, facts


def rescan(folder: Path) -> dict[str, int]:
    """What the detectors find in the shards' text, per category (in batches of SCAN_ROWS)."""
    total: dict[str, int] = {}
    data = ds.dataset(str(folder), format="parquet")
    for batch in data.to_batches(columns=[TEXT], batch_size=SCAN_ROWS):
        for category, n in leftover(batch.column(0)).items():
            total[category] = total.get(category, 0) + n
    return dict(sorted(total.items()))


def corpus_problems(manifest: dict[str, Any], table: pa.Table) -> list[str]:
    """Where a corpus version's shards differ from what its manifest says of them."""
    measured = manifest.get("corpus")
    if not isinstance(measured, dict):
        return ["the manifest of a corpus version has no corpus: measurements"]
    problems = []
    if table.num_rows != measured.get("kept") or table.num_rows != manifest.get("row_count"):
        problems.append(
            f"the shards hold {table.num_rows} documents, the manifest says "
            f"{manifest.get('row_count')} (corpus.kept {measured.get('kept')})"
        )
    counts = pc.value_counts(table.column("language")).to_pylist() if table.num_rows else []
    languages = {str(c["values"]): int(c["counts"]) for c in counts}
    if languages != measured.get("languages"):
        problems.append(
            f"the shards' languages are {dict(sorted(languages.items()))}, the manifest says "
            f"{measured.get('languages')}"
        )
    return problems

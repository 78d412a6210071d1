"""The transfer facts of a corpus version: what the re-scan still finds in its text.

A corpus's text column has its identifiers replaced by typed placeholders or keyed pseudonyms;
what the same detectors still find there (`text_redact.leftover`) is personal data it carries,
and so are its pseudonyms (PIPL art. 73: de-identified, not anonymized; as a table's
pseudonymized column). Each category left or pseudonymized counts as remaining
(`text#<CATEGORY>`: the column and the category, as a table's `remaining` names a column and its
category). Individuals: the most distinct pseudonyms of any one category (as a table counts the
most distinct values of any column), plus the identifiers left (at most one each: an upper
bound). A version that leaves nothing and pseudonymizes nothing carries no personal data.
`rescan` re-derives both from the version's shards, as the gate and `verify` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from databourse.pii.pseudonym_tokens import DistinctTokens
from databourse.pii.text_redact import leftover
from databourse.product.package import transfer_facts

TEXT = "text"
SCAN_ROWS = 8192  # documents re-scanned at a time


def remaining_of(
    left: dict[str, int], pseudonyms: dict[str, int] | None = None
) -> tuple[dict[str, str], int]:
    """`remaining` (text#CATEGORY -> CATEGORY) and the individuals, from the counts left and the
    distinct pseudonyms per category."""
    pseudonyms = pseudonyms or {}
    held = {c for c, n in left.items() if n > 0} | {c for c, n in pseudonyms.items() if n > 0}
    remaining = {f"{TEXT}#{category}": category for category in held}
    people = sum(n for n in left.values() if n > 0) + max(pseudonyms.values(), default=0)
    return dict(sorted(remaining.items())), people


def corpus_facts(
    left: dict[str, int],
    pseudonyms: dict[str, int],
    origin: str,
    important_data: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's personal_data section, and the transfer facts as the hash covers them."""
    remaining, individuals = remaining_of(left, pseudonyms)
    facts = transfer_facts(origin, remaining, individuals, important_data)
    personal = {
        "remaining": remaining,
        "individuals": facts["individuals"],
        "sensitive_categories": facts["sensitive_categories"],
        "important_data": facts["important_data"],
        "leftover": dict(sorted(left.items())),
    }
    if pseudonyms:
        personal["pseudonyms"] = dict(sorted(pseudonyms.items()))
    return personal, facts


def rescan(folder: Path) -> tuple[dict[str, int], dict[str, int]]:
    """What the detectors find in the shards' text, per category, and the distinct pseudonyms
    of each category (in batches of SCAN_ROWS)."""
    total: dict[str, int] = {}
    tokens = DistinctTokens()
    data = ds.dataset(str(folder), format="parquet")
    for batch in data.to_batches(columns=[TEXT], batch_size=SCAN_ROWS):
        for category, n in leftover(batch.column(0)).items():
            total[category] = total.get(category, 0) + n
        tokens.add(batch.column(0))
    return dict(sorted(total.items())), tokens.counts()


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

"""What the scan finds inside longer text: identifiers in digit runs, glued or separated."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.categories import CATEGORIES
from databourse.pii.identifiers import (
    ANY_SEPARATED_BASE,
    ANY_SEPARATED_INTL,
    HEX_TOKENS,
    MIXED_TOKENS,
    RUN_CATEGORIES,
    RUN_SEPARATORS,
    SEPARATED,
    run_mask,
    valid_mask,
)
from databourse.pii.identifiers_intl import SEPARATED_INTL

TEXT = r"\S\s+\S|\p{Han}[^\n]{4}"  # running text: two words, or Chinese of five characters
GLUED_ID_LENGTH = 18  # a CN resident id's digit run when letters touch it
GLUED_ID = r"[A-WYZa-wyz]\d{17}[\dXx]|\d{17}[\dXx][A-WYZa-wyz]"  # RE2 prefilter of those


def embedded_hits(values: pa.Array) -> dict[str, np.ndarray]:
    """For each category, the distinct positions of values that hold a valid identifier."""
    gate = pc.match_substring_regex(values, r"\d{10}|" + ANY_SEPARATED_BASE).to_numpy(False)
    gate |= pc.match_substring_regex(values, ANY_SEPARATED_INTL).to_numpy(zero_copy_only=False)
    origin = np.flatnonzero(gate)
    values = pc.replace_substring_regex(values.filter(gate), HEX_TOKENS, " ")
    hits: dict[str, list[np.ndarray]] = {c: [] for c in CATEGORIES}
    runs = _run_hits(pc.replace_substring_regex(values, MIXED_TOKENS, " "))
    for category, positions in [*runs, _glued_ids(values), *_separated_hits(values)]:
        hits[category].append(positions)
    found = {c: np.unique(np.concatenate(h)) for c, h in hits.items() if h}
    return {c: origin[positions] for c, positions in found.items() if len(positions)}


def _run_hits(values: pa.Array) -> list[tuple[str, np.ndarray]]:
    """Contiguous digit runs (CN ids, bare cards and phones), cut out and validated in bulk."""
    runs = pc.split_pattern_regex(values, RUN_SEPARATORS)
    flat, parents = pc.list_flatten(runs), pc.list_parent_indices(runs).to_numpy()
    lengths = pc.utf8_length(flat).to_numpy()
    keep = np.flatnonzero((lengths >= 10) & (lengths <= 19))
    flat, parents = flat.take(pa.array(keep, pa.int64())), parents[keep]
    claimed = np.zeros(len(flat), dtype=bool)
    out = []
    for category in RUN_CATEGORIES:  # a run counts for the first category it is valid for
        ok = run_mask(category, flat) & ~claimed
        claimed |= ok
        out.append((category, parents[ok]))
    return out


def _glued_ids(values: pa.Array) -> tuple[str, np.ndarray]:
    """CN resident ids glued to letters ("ID110101199003074514"), which MIXED_TOKENS hides.

    Only this category: its check digit, province and birth date leave about one random
    18-digit run in 70,000 valid, where a glued phone or card would match codes and SKUs."""
    glued = np.flatnonzero(pc.match_substring_regex(values, GLUED_ID).to_numpy(False))
    runs = pc.split_pattern_regex(values.take(pa.array(glued, pa.int64())), RUN_SEPARATORS)
    flat, parents = pc.list_flatten(runs), pc.list_parent_indices(runs).to_numpy()
    keep = np.flatnonzero(pc.equal(pc.utf8_length(flat), GLUED_ID_LENGTH).to_numpy(False))
    flat, parents = flat.take(pa.array(keep, pa.int64())), glued[parents[keep]]
    return "CN_RESIDENT_ID", parents[valid_mask("CN_RESIDENT_ID", flat)]


def _separated_hits(values: pa.Array) -> list[tuple[str, np.ndarray]]:
    """Separated forms, extracted in Python from the values an RE2 prefilter selected."""
    base = pc.match_substring_regex(values, ANY_SEPARATED_BASE).to_numpy(zero_copy_only=False)
    intl = pc.match_substring_regex(values, ANY_SEPARATED_INTL).to_numpy(zero_copy_only=False)
    separated = np.flatnonzero(base | intl)
    subset = values.take(pa.array(separated, pa.int64()))
    out = []
    for category, (prefilter, pattern) in SEPARATED.items():
        pool = np.flatnonzero((intl if category in SEPARATED_INTL else base)[separated])
        if len(pool) == 0:
            continue
        texts = subset.take(pa.array(pool, pa.int64()))
        selected = pool[pc.match_substring_regex(texts, prefilter).to_numpy(False)]
        positions, candidates = [], []
        found = subset.take(pa.array(selected, pa.int64())).to_pylist()
        for pos, text in zip(separated[selected], found, strict=True):
            for match in pattern.finditer(text):
                positions.append(pos)
                candidates.append(match.group())
        if candidates:
            ok = valid_mask(category, pa.array(candidates, pa.large_string()))
            out.append((category, np.array(positions, dtype=np.int64)[ok]))
    return out

"""Keyed pseudonym tokens in running text (`text_spans.pseudonym_token`), counted per category.

A corpus built with `redaction: pseudonym` holds `<CATEGORY:letters>` tokens; how many distinct
ones of each category it holds is how many people (or numbers) it still tells apart, which its
transfer facts count. `token_ids` reads them from a batch of texts (a token's ten letters are
40 bits: an integer), `DistinctTokens` gathers them over batches: 8 bytes per distinct token,
merged when the batches gathered outgrow what is merged (so the merging stays linear overall).
Reading them needs no key, and they tell nothing without it.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from databourse.pii.text_spans import PSEUDONYM_LETTERS, PSEUDONYM_TOKEN

_TOKEN = regex.compile(PSEUDONYM_TOKEN)
_VALUE = {letter: i for i, letter in enumerate(PSEUDONYM_LETTERS)}


def _as_int(letters: str) -> int:
    n = 0
    for letter in letters:
        n = n * 16 + _VALUE[letter]
    return n


def token_ids(texts: pa.Array | pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Per category, the tokens of the texts as integers (repeats kept; nulls skipped)."""
    found = pc.fill_null(pc.match_substring_regex(texts, PSEUDONYM_TOKEN), False)
    held = pc.filter(texts, found)
    out: dict[str, list[int]] = defaultdict(list)
    for text in held.to_pylist():
        for category, letters in _TOKEN.findall(text):
            out[category].append(_as_int(letters))
    return {c: np.array(ids, dtype=np.uint64) for c, ids in sorted(out.items())}


class DistinctTokens:
    """Distinct tokens per category, over many batches."""

    def __init__(self) -> None:
        self._merged: dict[str, np.ndarray] = {}
        self._pending: dict[str, list[np.ndarray]] = defaultdict(list)

    def add(self, texts: pa.Array | pa.ChunkedArray) -> None:
        """Gather the tokens of a batch of texts."""
        for category, ids in token_ids(texts).items():
            self._pending[category].append(np.unique(ids))
            waiting = sum(len(a) for a in self._pending[category])
            if waiting > len(self._merged.get(category, ())):
                self._merge(category)

    def _merge(self, category: str) -> None:
        parts = [self._merged.get(category, np.empty(0, np.uint64)), *self._pending.pop(category)]
        self._merged[category] = np.unique(np.concatenate(parts))

    def counts(self) -> dict[str, int]:
        """Per category, how many distinct tokens were seen."""
        for category in list(self._pending):
            self._merge(category)
        return {c: len(ids) for c, ids in sorted(self._merged.items()) if len(ids)}

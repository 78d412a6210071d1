"""Values valid for several categories of one shape, counted for the one their column holds.

A 12-digit number can pass Aadhaar's Verhoeff check and Japan's mod-11 check digit; an HK id
with the check letter A is shaped like a NINO. Such a value is counted as the first category of
the priority order it is valid for, and the set of the categories it is valid for is kept (one
bit per category); a column then counts it for the category most of its values are valid for,
so that a column of Aadhaar numbers keeps the tenth that are also valid My Numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

Valid = Callable[[str, pa.Array], np.ndarray]  # (category, candidates) -> which are valid


class Overlaps:
    """The categories (of `categories`, in priority order) whose shapes overlap: `shared`."""

    def __init__(self, categories: Sequence[str], shared: frozenset[str], valid: Valid) -> None:
        self.categories = tuple(categories)
        self.shared = shared
        self.codes = [code for code, c in enumerate(self.categories) if c in shared]
        self.valid = valid

    def bits(self, values: pa.Array, codes: np.ndarray) -> np.ndarray:
        """For each value of a shared category that is valid for others of them too, the bits
        of all of them (bit i: categories[i]); 0 for every other value. `codes` are the
        values' first categories (-1: none)."""
        bits = np.zeros(len(values), dtype=np.int64)
        rows = np.flatnonzero(np.isin(codes, self.codes))
        if len(rows) == 0:
            return bits
        subset, first = values.take(pa.array(rows, pa.int64())), codes[rows]
        found = np.left_shift(1, first)
        for code in self.codes:  # the categories before a value's own were tried on it already
            later = np.flatnonzero(first < code)
            if len(later):
                ok = self.valid(self.categories[code], subset.take(pa.array(later, pa.int64())))
                found[later[ok]] |= 1 << code
        several = (found & (found - 1)) != 0
        bits[rows[several]] = found[several]
        return bits

    def support(self, whole: Counter[str], shared: Counter[int]) -> Counter[str]:
        """Values valid for each category: `whole` (by first category) and the `shared` bits."""
        support = Counter(whole)
        for bits, n in shared.items():
            first = _first(bits)
            for code in self.codes:
                if code != first and bits >> code & 1:
                    support[self.categories[code]] += n
        return support

    def best(self, whole: Counter[str], shared: Counter[int]) -> str:
        """The category most values are valid for (the first in priority order on a tie)."""
        support = self.support(whole, shared)
        return max(self.categories, key=lambda c: (support[c], -self.categories.index(c)))

    def attributed(self, whole: Counter[str], shared: Counter[int], category: str) -> Counter[str]:
        """`whole` where the values also valid for `category` count as it."""
        out = Counter(whole)
        if category not in self.shared:
            return out
        code = self.categories.index(category)
        for bits, n in shared.items():
            first = _first(bits)
            if first != code and bits >> code & 1:
                out[self.categories[first]] -= n
                out[category] += n
        return +out

    def column_codes(self, values: pa.Array, codes: np.ndarray) -> np.ndarray:
        """`codes` where the values valid for several shared categories take the one most of
        `values` are valid for (as a column's decision counts them)."""
        bits = self.bits(values, codes)
        if not bits.any():
            return codes
        whole = Counter(self.categories[c] for c in codes[codes >= 0].tolist())
        best = self.categories.index(self.best(whole, Counter(bits[bits > 0].tolist())))
        out = codes.copy()
        out[(bits >> best & 1) == 1] = best
        return out


def _first(bits: int) -> int:
    """The lowest bit set: the value's first category."""
    return (bits & -bits).bit_length() - 1

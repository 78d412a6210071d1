"""What one column holds (`ColumnFinding`), decided from its counts by the column-level rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from databourse.pii.categories import CHECKSUM_BACKED, OVERLAPS
from databourse.pii.counts import ColumnState, Counts
from databourse.pii.dirty_columns import counted, holds
from databourse.pii.identifiers import CHANCE_FLOOR, CHANCE_LEVEL
from databourse.pii.patterns import COLUMN_LEVEL, column_factor, enough_evidence
from databourse.pii.serials import order_named, phone_named, serial_phones

PATTERN_ONLY_FACTOR = 0.9
DICTIONARY_FACTOR = 0.8  # names, addresses, plates: patterns and word lists
DICTIONARY_BASED = frozenset({"PERSON_NAME", "ADDRESS", "LICENSE_PLATE"})
# Whole addresses (a number, a street or unit word, an area) are not chance matches: their count
# is reported at any share, so that the gate sees a messy column that holds some.
STRUCTURED_WHOLE = frozenset({"ADDRESS"})
WEAK_WHOLE_FLOOR = 0.5  # below this share, dictionary matches are chance and are not reported


@dataclass(frozen=True)
class ColumnFinding:
    """What one column holds: its category (or None), how sure, and identifiers inside its text.

    `share` = matched / checked over all non-null values, for `category` (0 when it is None).
    `confidence` = share for checksum-backed categories (CN_RESIDENT_ID, SG_NRIC_FIN, CREDIT_CARD)
    and share * 0.9 for the others (MY_NRIC: date and place code only; email, phone, IP: patterns).
    `embedded`: category -> values that hold it inside longer text (never decides `category`).
    `whole`: category -> values that are wholly of that category (every category, not only the
    winner, so that a column just under the threshold is still visible to a gate).
    `mentions`: PERSON_NAME, ADDRESS -> values of running text that mention one (reported,
    not gated: `text_mentions`).
    `empty`: checked values that are blank; a messy column is classified on the share of the
    others (`dirty_columns`). `zero_padded`: numbers of a numeric column counted with the
    leading zeros they had lost (`pii_numbers`).
    """

    column: str
    category: str | None
    confidence: float
    share: float
    matched: int
    checked: int
    embedded: dict[str, int]
    whole: dict[str, int] = field(default_factory=dict)  # category -> values matching it whole
    read_as: str = "text"  # "text", or "decimal text" for a numeric column
    lost_digits: int = 0  # float values too large to be read exactly (not checked)
    mentions: dict[str, int] = field(default_factory=dict)  # names, addresses inside text
    empty: int = 0  # blank values (checked, never matching)
    zero_padded: int = 0  # numbers read with leading zeros they lost

    @property
    def shares(self) -> dict[str, float]:
        """Measured share of the checked values of every category seen whole in the column."""
        if not self.checked:
            return {}
        return {c: n / self.checked for c, n in sorted(self.whole.items())}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (counts and names only)."""
        return {
            "column": self.column,
            "category": self.category,
            "confidence": round(self.confidence, 4),
            "share": round(self.share, 4),
            "matched": self.matched,
            "checked": self.checked,
            "embedded": dict(sorted(self.embedded.items())),
            "whole": dict(sorted(self.whole.items())),
            "shares": {c: round(v, 4) for c, v in self.shares.items()},
            "read_as": self.read_as,
            "lost_digits": self.lost_digits,
            "mentions": dict(sorted(self.mentions.items())),
            "empty": self.empty,
            "zero_padded": self.zero_padded,
        }


def finding(
    column: str, state: ColumnState, threshold: float, dirty_threshold: float
) -> ColumnFinding:
    """Decide a column's category: best on the sample at `threshold` (or, for a messy column,
    `dirty_threshold` of its non-empty values), confirmed on all values."""
    total = state.total
    phones = (
        total.whole["PHONE_NUMBER"],
        total.alike["PHONE_NUMBER"],
        total.shaped["PHONE_NUMBER"],
    )
    if serial_phones(state.name, phones, total.sequence, total.checked - total.empty):
        del state.sample.whole["PHONE_NUMBER"], total.whole["PHONE_NUMBER"]
    category: str | None = None
    factor = 0.0
    whole = total.whole
    if state.sample.checked:
        sample = state.sample
        best = OVERLAPS.best(sample.whole, sample.shared)
        whole = OVERLAPS.attributed(total.whole, total.shared, best)
        hits = OVERLAPS.support(sample.whole, sample.shared)[best]
        named = phone_named(state.name) and not order_named(state.name)
        sample_hits = counted(best, hits, sample.alike, sample.shaped, named)
        total_hits = counted(best, whole[best], total.alike, total.shaped, named)
        clean = sample_hits / sample.checked >= threshold
        clean &= total_hits / total.checked >= threshold
        values = (sample.checked - sample.empty, total.checked - total.empty)
        if clean or holds(best, (sample_hits, values[0]), (total_hits, values[1]), dirty_threshold):
            factor = _factor(best, state)
            category = best if factor > 0 else None
    matched = whole[category] if category else 0
    share = matched / total.checked if category else 0.0
    return ColumnFinding(
        column=column,
        category=category,
        confidence=share * factor,
        share=share,
        matched=matched,
        checked=total.checked,
        embedded=dict(total.embedded),
        whole={c: n for c, n in whole.items() if n and _reported(c, category, n, total)},
        read_as="decimal text" if state.numeric else "text",
        lost_digits=total.lost_digits,
        mentions=dict(total.mentions),
        empty=total.empty,
        zero_padded=total.zero_padded,
    )


def _factor(category: str, state: ColumnState) -> float:
    """Confidence factor of `category` for this column (0: the column-level rules say no)."""
    if category in CHECKSUM_BACKED:
        return 1.0
    if category in DICTIONARY_BASED:
        return DICTIONARY_FACTOR if _evidence(category, state.total) else 0.0
    if category not in COLUMN_LEVEL:
        return PATTERN_ONLY_FACTOR
    total = state.total
    details = {k: n / total.checked for (c, k), n in total.detail.items() if c == category}
    return column_factor(category, state.name, details, total.whole[category] / total.checked)


def _evidence(category: str, total: Counts) -> bool:
    """A dictionary category's column-level evidence (`pii_text.enough_evidence`)."""
    details = {k: n / total.checked for (c, k), n in total.detail.items() if c == category}
    return enough_evidence(category, details, total.whole[category] / total.checked)


def _reported(category: str, chosen: str | None, count: int, total: Counts) -> bool:
    """Whether a category's whole matches are reported: column-level ones only when chosen."""
    if category in COLUMN_LEVEL:
        return category == chosen
    if category in DICTIONARY_BASED - STRUCTURED_WHOLE:
        share = count / total.checked
        return category == chosen or (share >= WEAK_WHOLE_FLOOR and _evidence(category, total))
    if category in CHANCE_LEVEL:  # random look-alikes pass too often
        return category == chosen or count >= CHANCE_FLOOR * total.shaped[category]
    return True

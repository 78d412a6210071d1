"""Additive counts of a column's values by category, and the scan of one batch's column."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.errors import DataBourseError
from databourse.pii.categories import (
    CATEGORIES,
    OVERLAPS,
    as_text,
    chance_layouts,
    named_phones,
    number_readings,
    whole_codes,
)
from databourse.pii.embedded import TEXT, embedded_hits
from databourse.pii.identifiers import LOOK_ALIKES
from databourse.pii.numbers import Readings, numbers_alike, restored
from databourse.pii.patterns import detail_keys
from databourse.pii.scan_text import folded
from databourse.pii.serials import Sequence, sequence_of
from databourse.pii.text_mentions import mentions

ANY_LOOK_ALIKE = "^(?:" + "|".join(f"(?:{shape[1:-1]})" for shape in LOOK_ALIKES.values()) + ")$"


@dataclass
class Counts:
    """Additive counts over some values of a column."""

    checked: int = 0
    whole: Counter[str] = field(default_factory=Counter)
    embedded: Counter[str] = field(default_factory=Counter)
    detail: Counter[tuple[str, str]] = field(default_factory=Counter)  # (category, sub-kind)
    lost_digits: int = 0  # floats too large to hold their integer exactly (not checked)
    shared: Counter[int] = field(default_factory=Counter)  # SHARED_SHAPES bits -> values
    shaped: Counter[str] = field(default_factory=Counter)  # CHANCE_LEVEL: its look-alikes
    alike: Counter[str] = field(default_factory=Counter)  # and those valid for it
    mentions: Counter[str] = field(default_factory=Counter)  # names, addresses inside text
    empty: int = 0  # blank values
    zero_padded: int = 0  # numbers read with the leading zeros they lost (`pii_numbers`)
    sequence: Sequence = field(default_factory=Sequence)  # plain numbers in row order (phones)

    def add(self, other: Counts) -> None:
        self.checked += other.checked
        self.empty += other.empty
        self.zero_padded += other.zero_padded
        self.sequence.add(other.sequence)
        self.lost_digits += other.lost_digits
        self.whole.update(other.whole)
        self.shared.update(other.shared)
        self.shaped.update(other.shaped)
        self.alike.update(other.alike)
        self.embedded.update(other.embedded)
        self.detail.update(other.detail)
        self.mentions.update(other.mentions)

    def to_json(self) -> dict[str, Any]:
        """The counts as JSON (a partition's scan written to a work file; `from_json` reads it)."""
        return {
            **{k: getattr(self, k) for k in _NUMBERS},
            **{k: sorted(getattr(self, k).items()) for k in _COUNTERS},
            "detail": sorted([*key, n] for key, n in self.detail.items()),
            "sequence": dataclasses.asdict(self.sequence),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        """The counts a `to_json` dict describes."""
        fields: dict[str, Any] = {k: int(data[k]) for k in _NUMBERS}
        fields |= {k: Counter({key: n for key, n in data[k]}) for k in _COUNTERS}
        fields["detail"] = Counter({(c, kind): n for c, kind, n in data["detail"]})
        return cls(**fields, sequence=Sequence(**data["sequence"]))


_NUMBERS = ("checked", "lost_digits", "empty", "zero_padded")
_COUNTERS = ("whole", "embedded", "shared", "shaped", "alike", "mentions")


@dataclass
class ColumnState:
    """Counts of the sample (first rows) and of all values seen so far."""

    scannable: bool
    name: str = ""
    numeric: bool = False
    rows: int = 0
    sample: Counts = field(default_factory=Counts)
    total: Counts = field(default_factory=Counts)

    def to_json(self) -> dict[str, Any]:
        """The column's state as JSON (`from_json` reads it)."""
        return {
            "scannable": self.scannable,
            "name": self.name,
            "numeric": self.numeric,
            "rows": self.rows,
            "sample": self.sample.to_json(),
            "total": self.total.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnState:
        """The state a `to_json` dict describes."""
        counts = {k: Counts.from_json(data[k]) for k in ("sample", "total")}
        return cls(bool(data["scannable"]), str(data["name"]), bool(data["numeric"]),
                   int(data["rows"]), **counts)  # fmt: skip


def scan_chunk(name: str, arr: pa.Array, head: int) -> tuple[Counts | None, Counts]:
    """Counts of a batch's column: its first `head` values (the sample) and the rest apart.

    Errors are re-raised without their (data) message."""
    try:
        zeros = number_readings(arr.type, name)
        arr, lost = as_text(arr)
        sample = _count(arr.slice(0, head), zeros, name) if head else None
        rest = _count(arr.slice(head), zeros, name) if head < len(arr) else Counts()
        rest.lost_digits += lost
        if (sample and sample.whole["PHONE_NUMBER"]) or rest.whole["PHONE_NUMBER"]:
            if sample is not None:  # in row order: a counter of order numbers is no phone
                sample.sequence = sequence_of(arr.slice(0, head))
            rest.sequence = sequence_of(arr.slice(head))
        return sample, rest
    except (pa.ArrowException, ValueError) as exc:
        raise DataBourseError(
            f"PII scan failed on column {name!r} ({type(exc).__name__})", column=name
        ) from None


def _count(arr: pa.Array, zeros: Readings | None = None, name: str = "") -> Counts:
    """Whole and embedded counts over distinct values, weighted by how often each occurs; in a
    column `name`d as phones, bare digit runs are read as national numbers (`named_phones`).

    With `zeros` (numbers as their decimal text; `number_readings`), a number is also read with
    the leading zeros it may have lost (`pii_numbers`)."""
    counts = Counts(checked=len(arr) - arr.null_count)
    if counts.checked == 0:
        return counts
    distinct = pc.value_counts(arr.drop_null())
    values = folded(distinct.field("values"))  # as a person reads them (full-width, hidden)
    weights = distinct.field("counts").to_numpy()
    trimmed = pc.utf8_trim_whitespace(values)
    counts.empty = int(weights[pc.equal(trimmed, "").to_numpy(zero_copy_only=False)].sum())
    codes = chance_layouts(trimmed, named_phones(trimmed, whole_codes(trimmed), name), weights)
    tried = np.zeros(len(codes), dtype=bool)
    if zeros is not None:
        trimmed, codes, tried, padded = restored(trimmed, codes, zeros, weights)
        counts.zero_padded = int(weights[padded].sum())
        values = trimmed
    for code, total in enumerate(np.bincount(codes[codes >= 0], weights[codes >= 0])):
        if total:
            counts.whole[CATEGORIES[code]] = int(total)
    bits = OVERLAPS.bits(trimmed, codes)
    for key in np.unique(bits[bits > 0]).tolist():
        counts.shared[key] = int(weights[bits == key].sum())
    alike = np.flatnonzero(pc.match_substring_regex(trimmed, ANY_LOOK_ALIKE).to_numpy(False))
    if len(alike):
        subset = trimmed.take(pa.array(alike, pa.int64()))
        for category, shape in LOOK_ALIKES.items():
            hit = pc.match_substring_regex(subset, shape).to_numpy(zero_copy_only=False)
            counts.shaped[category] = int(weights[alike[hit]].sum())
            valid = hit & (codes[alike] == CATEGORIES.index(category))
            counts.alike[category] = int(weights[alike[valid]].sum())
    if zeros is not None:
        phone, more = numbers_alike(
            trimmed, codes, (tried, padded), weights, bool(zeros.phone), CATEGORIES
        )
        if phone is not None:  # read as phones: every number of a phone's length is alike
            counts.shaped["PHONE_NUMBER"], counts.alike["PHONE_NUMBER"] = phone
        counts.shaped.update(more)
    for category in ("PASSPORT", "BANK_ACCOUNT", "PERSON_NAME"):
        rows = np.flatnonzero(codes == CATEGORIES.index(category))
        if len(rows):
            subset = pc.utf8_trim_whitespace(values.take(pa.array(rows, pa.int64())))
            for key, weight in zip(detail_keys(category, subset), weights[rows], strict=True):
                counts.detail[category, key] += int(weight)
    rest = np.flatnonzero(codes < 0)
    for category, found in embedded_hits(values.take(pa.array(rest, pa.int64()))).items():
        counts.embedded[category] = int(weights[rest[found]].sum())
    text = rest[
        pc.match_substring_regex(values.take(pa.array(rest, pa.int64())), TEXT).to_numpy(False)
    ]
    for category, found in mentions(values.take(pa.array(text, pa.int64()))).items():
        if found.any():
            counts.mentions[category] = int(weights[text[found]].sum())
    return counts

"""Content-based personal-data detection: classify columns by the identifiers their values hold.

Each column is classified on its first `sample_rows` values (the category whose whole-value matches
reach `threshold`), then the candidate is confirmed over all values. Identifiers found inside longer
text (free text, Chinese text with no word boundary) are counted apart as `embedded`; in a
product they are gated by `screening.check_embedded`, and `redaction` removes them where a rule
says so. Findings carry column names and counts only, never a value.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.dirty_columns import DIRTY_THRESHOLD, counted, holds
from databourse.errors import DataBourseError
from databourse.grouping import plain
from databourse.identifiers import (
    ANY_SEPARATED_BASE,
    ANY_SEPARATED_INTL,
    CHANCE_FLOOR,
    CHANCE_LEVEL,
    HEX_TOKENS,
    LOOK_ALIKES,
    MIXED_TOKENS,
    RUN_CATEGORIES,
    RUN_SEPARATORS,
    SEPARATED,
    SHAPES,
    run_mask,
    valid_mask,
)
from databourse.identifiers_intl import SEPARATED_INTL, SHAPES_INTL
from databourse.pii_numbers import ZERO_LED, Readings, numbers_alike, restored
from databourse.pii_overlaps import Overlaps
from databourse.pii_text import (
    COLUMN_LEVEL,
    DOB_CUES,
    column_factor,
    detail_keys,
    enough_evidence,
    text_valid_mask,
)
from databourse.pii_text import SHAPES as TEXT_SHAPES
from databourse.scan_text import folded
from databourse.serials import Sequence, phone_named, sequence_of, serial_phones
from databourse.text_mentions import mentions

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = (  # priority order when a value fits several
    "CN_RESIDENT_ID",
    "CN_USCC",
    "SG_NRIC_FIN",
    "HK_ID",
    "TW_ID",
    "KR_RRN",
    "MY_NRIC",
    "CREDIT_CARD",
    "IBAN",
    "ID_NIK",
    "TH_ID",
    "IN_AADHAAR",
    "JP_MY_NUMBER",
    "VN_CCCD",
    "IMEI",
    "PH_ID",
    "US_SSN",
    "UK_NINO",
    "IN_PAN",
    "MAC_ADDRESS",
    "EMAIL_ADDRESS",
    "IP_ADDRESS",
    "PERSONAL_URL",
    "GEO_COORDINATES",
    "PHONE_NUMBER",
    "PASSPORT",
    "LICENSE_PLATE",
    "DATE_OF_BIRTH",
    "BANK_ACCOUNT",
    "PERSON_NAME",
    "ADDRESS",
)
CHECKSUM_BACKED = frozenset(
    {"CN_RESIDENT_ID", "CN_USCC", "SG_NRIC_FIN", "HK_ID", "CREDIT_CARD", "IBAN"}
    | {"TW_ID", "KR_RRN", "TH_ID", "IN_AADHAAR", "JP_MY_NUMBER", "IMEI"}
)
# Identifiers whose shapes overlap (12, 13, 15, 16 digits, 4-4-4 groups; two letters, 6 digits
# and A): a value valid for several is counted for the one its column holds most of
# (`pii_overlaps`), so that a column of Aadhaar numbers keeps the tenth that also pass Japan's
# check digit, and a column of NINOs those that are HK ids with the check letter A.
SHARED_SHAPES = frozenset(
    {"MY_NRIC", "CREDIT_CARD", "PHONE_NUMBER", "ID_NIK", "TH_ID", "KR_RRN", "IN_AADHAAR"}
    | {"JP_MY_NUMBER", "VN_CCCD", "PH_ID", "IMEI", "HK_ID", "UK_NINO"}
)
PATTERN_ONLY_FACTOR = 0.9
DICTIONARY_FACTOR = 0.8  # names, addresses, plates: patterns and word lists
DICTIONARY_BASED = frozenset({"PERSON_NAME", "ADDRESS", "LICENSE_PLATE"})
# Whole addresses (a number, a street or unit word, an area) are not chance matches: their count
# is reported at any share, so that the gate sees a messy column that holds some.
STRUCTURED_WHOLE = frozenset({"ADDRESS"})
WEAK_WHOLE_FLOOR = 0.5  # below this share, dictionary matches are chance and are not reported
ALL_SHAPES = {**SHAPES, **TEXT_SHAPES}
ANY_SHAPE = "^(?:" + "|".join(f"(?:{ALL_SHAPES[c][1:-1]})" for c in CATEGORIES) + ")$"
# Checked apart, the next markets' shapes and the others cost two RE2 passes that are faster
# than one over all of them, and a value of one kind is never checked against the other's.
ANY_SHAPE_INTL = "^(?:" + "|".join(f"(?:{s[1:-1]})" for s in SHAPES_INTL.values()) + ")$"
ANY_SHAPE_BASE = (
    "^(?:" + "|".join(f"(?:{ALL_SHAPES[c][1:-1]})" for c in CATEGORIES if c not in SHAPES_INTL)
) + ")$"
# Rows counted per column at once. Each chunk's distinct values are classified once, so larger
# chunks classify a repeated value fewer times: 64k -> 256k rows halved the scan of a 2M-row
# sensor file (names, IDs, phones: 1.65 -> 0.82 s); 1M rows gained nothing more.
SCAN_BATCH_ROWS = 262_144
IN_FLIGHT = 2  # batches counted ahead of the one being added
TEXT = r"\S\s+\S|\p{Han}[^\n]{4}"  # running text: two words, or Chinese of five characters
GLUED_ID_LENGTH = 18  # a CN resident id's digit run when letters touch it
GLUED_ID = r"[A-WYZa-wyz]\d{17}[\dXx]|\d{17}[\dXx][A-WYZa-wyz]"  # RE2 prefilter of those
ANY_LOOK_ALIKE = "^(?:" + "|".join(f"(?:{shape[1:-1]})" for shape in LOOK_ALIKES.values()) + ")$"


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


@dataclass
class _Counts:
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

    def add(self, other: _Counts) -> None:
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


@dataclass
class _ColumnState:
    """Counts of the sample (first rows) and of all values seen so far."""

    scannable: bool
    name: str = ""
    numeric: bool = False
    rows: int = 0
    sample: _Counts = field(default_factory=_Counts)
    total: _Counts = field(default_factory=_Counts)


def scan_table(
    table: pa.Table,
    *,
    threshold: float = 0.8,
    sample_rows: int = 2000,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> list[ColumnFinding]:
    """Classify every column of `table`, in order."""
    return scan_batches(
        table.to_batches(),
        table.schema,
        threshold=threshold,
        sample_rows=sample_rows,
        dirty_threshold=dirty_threshold,
    )


def scan_batches(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    threshold: float = 0.8,
    sample_rows: int = 2000,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> list[ColumnFinding]:
    """Classify every column of a stream of batches (memory bounded); same result as scan_table.

    A column is classified when `threshold` of its values are of one category, or, messy,
    `dirty_threshold` of its non-empty values (`dirty_columns`).

    Each (batch, column) is counted as its own job on a pool of threads (Arrow kernels release
    the GIL), up to `IN_FLIGHT` batches ahead, and added to the column's totals in batch order:
    a column slower than the others (a unique ID) no longer leaves the other threads idle.
    """
    states = [
        _ColumnState(
            scannable=_scannable(f.type, f.name), name=f.name, numeric=_numeric(_value_type(f.type))
        )
        for f in schema
    ]
    scanned = [i for i, state in enumerate(states) if state.scannable]
    workers = max(1, min(pa.cpu_count(), len(scanned) * IN_FLIGHT))
    pending: deque[list[tuple[int, Future[tuple[_Counts | None, _Counts]]]]] = deque()
    offset = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in _coalesced(batches, SCAN_BATCH_ROWS):
            head = max(0, min(batch.num_rows, sample_rows - offset))
            offset += batch.num_rows
            pending.append(
                [
                    (i, pool.submit(_scan_chunk, schema[i].name, batch.column(i), head))
                    for i in scanned
                ]
            )
            while len(pending) > IN_FLIGHT:
                _add_results(states, pending.popleft())
        while pending:
            _add_results(states, pending.popleft())
    findings = [
        _finding(f.name, s, threshold, dirty_threshold) for f, s in zip(schema, states, strict=True)
    ]
    for found in findings:
        log.debug(
            "column %s: category=%s matched=%d checked=%d embedded=%s",
            found.column,
            found.category,
            found.matched,
            found.checked,
            found.embedded,
        )
    return findings


def _add_results(
    states: list[_ColumnState], jobs: list[tuple[int, Future[tuple[_Counts | None, _Counts]]]]
) -> None:
    """One batch's counts added to the columns' totals (its first rows also to the sample)."""
    for i, job in jobs:
        sample, rest = job.result()
        if sample is not None:
            states[i].sample.add(sample)
            states[i].total.add(sample)
        states[i].total.add(rest)


def _coalesced(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Small batches joined into batches of about `rows` rows (larger ones pass as they are)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows >= rows:
            yield batch
            continue
        pending.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield _joined(pending)
            pending, held = [], 0
    if pending:
        yield _joined(pending)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    decoded = [_plain(b) for b in batches]  # Arrow cannot join dictionaries that hold a null
    table = pa.Table.from_batches(decoded, schema=decoded[0].schema).combine_chunks()
    return table.to_batches()[0] if table.num_rows else decoded[0]


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns as their values (the scan reads values as text anyway)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    return pa.RecordBatch.from_arrays([plain(c) for c in batch.columns], names=batch.schema.names)


def _scannable(typ: pa.DataType, name: str = "") -> bool:
    """Strings and numbers are scanned, dates when the column is named as a birth date."""
    if pa.types.is_dictionary(typ):
        return _scannable(typ.value_type, name)
    if pa.types.is_date(typ) or pa.types.is_timestamp(typ):
        return DOB_CUES.search(name) is not None
    return (
        _numeric(_value_type(typ))
        or any(check(typ) for check in (pa.types.is_string, pa.types.is_large_string))
        or pa.types.is_string_view(typ)
    )


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _numeric(typ: pa.DataType) -> bool:
    return any(
        check(typ) for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    )


def as_text(arr: pa.Array) -> tuple[pa.Array, int]:
    """A column as the text a provider wrote: integral numbers as their decimal digits.

    Integers are exact. A float holds an integer exactly only below 2**53: a float at or above
    it (a 16-19 digit card or account read as float64) has lost digits, becomes null and is
    counted in the second value, so that a report can say so. A number with a fraction is a
    measure, never an identifier: it becomes "" (checked, matching nothing), so that the digits
    of its fraction are not read as a card or a phone. Decimals with a zero fraction
    ("4111111111111111.00") are read as their integer."""
    if pa.types.is_dictionary(arr.type):
        arr = plain(arr)
    typ = arr.type
    if pa.types.is_floating(typ):
        values = arr.cast(pa.float64())
        whole = pc.equal(pc.floor(values), values)
        exact = pc.less(pc.abs(values), float(2**53))
        lost = int(pc.sum(pc.and_(pc.and_not(whole, exact), pc.is_finite(values))).as_py() or 0)
        as_int = pc.if_else(pc.and_(whole, exact), values, None).cast(pa.int64(), safe=False)
        text = pc.cast(as_int, pa.large_string())
        measure = pc.or_(pc.invert(whole), pc.invert(pc.is_finite(values)))
        return pc.if_else(measure, pa.scalar("", pa.large_string()), text), lost
    text = pc.cast(arr, pa.large_string())
    if pa.types.is_decimal(typ):
        integral = pc.replace_substring_regex(text, r"\.0+$", "")
        text = pc.if_else(pc.match_substring(integral, "."), "", integral)
    return text, 0


def _scan_chunk(name: str, arr: pa.Array, head: int) -> tuple[_Counts | None, _Counts]:
    """Counts of a batch's column: its first `head` values (the sample) and the rest apart.

    Errors are re-raised without their (data) message."""
    try:
        zeros = _zeros(arr.type, name)
        arr, lost = as_text(arr)
        sample = _count(arr.slice(0, head), zeros) if head else None
        rest = _count(arr.slice(head), zeros) if head < len(arr) else _Counts()
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


def _count(arr: pa.Array, zeros: Readings | None = None) -> _Counts:
    """Whole and embedded counts over distinct values, weighted by how often each occurs.

    With `zeros` (numbers as their decimal text; `_zeros`), a number is also read with the
    leading zeros it may have lost (`pii_numbers`)."""
    counts = _Counts(checked=len(arr) - arr.null_count)
    if counts.checked == 0:
        return counts
    distinct = pc.value_counts(arr.drop_null())
    values = folded(distinct.field("values"))  # as a person reads them (full-width, hidden)
    weights = distinct.field("counts").to_numpy()
    trimmed = pc.utf8_trim_whitespace(values)
    counts.empty = int(weights[pc.equal(trimmed, "").to_numpy(zero_copy_only=False)].sum())
    codes = _whole_codes(trimmed)
    tried = np.zeros(len(codes), dtype=bool)
    if zeros is not None:
        trimmed, codes, tried, padded = restored(trimmed, codes, zeros, weights)
        counts.zero_padded = int(weights[padded].sum())
        values = trimmed
    for code, total in enumerate(np.bincount(codes[codes >= 0], weights[codes >= 0])):
        if total:
            counts.whole[CATEGORIES[code]] = int(total)
    bits = _OVERLAPS.bits(trimmed, codes)
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
    for category, found in _embedded_hits(values.take(pa.array(rest, pa.int64()))).items():
        counts.embedded[category] = int(weights[rest[found]].sum())
    text = rest[
        pc.match_substring_regex(values.take(pa.array(rest, pa.int64())), TEXT).to_numpy(False)
    ]
    for category, found in mentions(values.take(pa.array(text, pa.int64()))).items():
        if found.any():
            counts.mentions[category] = int(weights[text[found]].sum())
    return counts


def _whole_codes(values: pa.Array, only: frozenset[int] | None = None) -> np.ndarray:
    """Index in CATEGORIES of each value's category as a whole (first in priority order), or -1
    (`only`: of those categories alone, each checked without the prefilter of all shapes)."""
    codes = np.full(len(values), -1, dtype=np.int64)
    for code in sorted(only or ()):
        undecided = np.flatnonzero(codes < 0)
        ok = _valid(CATEGORIES[code], values.take(pa.array(undecided, pa.int64())))
        codes[undecided[ok]] = code
    if only is not None:
        return codes
    base = pc.match_substring_regex(values, ANY_SHAPE_BASE).to_numpy(zero_copy_only=False)
    intl = pc.match_substring_regex(values, ANY_SHAPE_INTL).to_numpy(zero_copy_only=False)
    for code, category in enumerate(CATEGORIES):
        undecided = np.flatnonzero((intl if category in SHAPES_INTL else base) & (codes < 0))
        if len(undecided) == 0:
            if not ((base | intl) & (codes < 0)).any():
                break
            continue
        ok = _valid(category, values.take(pa.array(undecided, pa.int64())))
        codes[undecided[ok]] = code
    return codes


def _valid(category: str, values: pa.Array) -> np.ndarray:
    if category in SHAPES:
        return valid_mask(category, values)
    return text_valid_mask(category, values)


_OVERLAPS = Overlaps(CATEGORIES, SHARED_SHAPES, _valid)
_COLUMN_LEVEL_CODES = frozenset(CATEGORIES.index(c) for c in COLUMN_LEVEL)
_PHONE = CATEGORIES.index("PHONE_NUMBER")
_SHARED_CODES = frozenset(CATEGORIES.index(c) for c in SHARED_SHAPES)
_ZERO_WIDTHS = {n: frozenset(CATEGORIES.index(c) for c in ids) for n, ids in ZERO_LED.items()}


def _zeros(typ: pa.DataType, column_name: str) -> Readings | None:
    """How a numeric column's numbers are read with the zeros they lost (`pii_numbers`): as
    phones only when it is named as phones. None (read as written) for text, and for a column
    named as bank accounts or birth dates, whose numbers are those."""
    if not _numeric(_value_type(typ)):
        return None
    if any(_cued(c, column_name) for c in ("BANK_ACCOUNT", "DATE_OF_BIRTH")):
        return None
    phone = frozenset({_PHONE}) if phone_named(column_name) else frozenset()
    return Readings(_whole_codes, _ZERO_WIDTHS, phone, _COLUMN_LEVEL_CODES, _SHARED_CODES)


def classify_value(text: str, column_name: str | None = None) -> str | None:
    """The category of one whole value, or None (see classify_array for `column_name`)."""
    return classify_array(pa.array([text], pa.large_string()), column_name=column_name)[0]


def classify_array(values: pa.Array, column_name: str | None = None) -> list[str | None]:
    """The category of each whole value of an array (None for nulls and non-matches).

    Numbers are read as their decimal text (`as_text`).
    Column-level categories (PASSPORT, BANK_ACCOUNT, DATE_OF_BIRTH) are only returned when a
    `column_name` is given, and BANK_ACCOUNT and DATE_OF_BIRTH only when that name has a cue.
    PERSON_NAME only for a value that is strong evidence by itself (a name-shaped value without
    it counts in a column, `scan_table`, when enough of the column's values are strong).
    """
    text = pc.fill_null(pc.utf8_trim_whitespace(folded(as_text(values)[0])), "")
    codes = _whole_codes(text)
    zeros = _zeros(values.type, column_name or "")
    if zeros is not None:
        text, codes, _, _ = restored(text, codes, zeros)
    codes = _OVERLAPS.column_codes(text, codes)
    allowed = {c for c in COLUMN_LEVEL if column_name is not None}
    if column_name is not None:
        allowed -= {c for c in ("BANK_ACCOUNT", "DATE_OF_BIRTH") if not _cued(c, column_name)}
    names = np.flatnonzero(codes == CATEGORIES.index("PERSON_NAME"))
    if len(names):  # alone, a value is a name only on strong evidence (`person_names`)
        strong = detail_keys("PERSON_NAME", text.take(pa.array(names, pa.int64())))
        codes[names[np.array(strong) != "strong"]] = -1
    found = [CATEGORIES[code] if code >= 0 else None for code in codes.tolist()]
    return [c if c not in COLUMN_LEVEL or c in allowed else None for c in found]


def _cued(category: str, column_name: str) -> bool:
    return column_factor(category, column_name, {}, 1.0) == 0.9


def _embedded_hits(values: pa.Array) -> dict[str, np.ndarray]:
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


def _finding(
    column: str, state: _ColumnState, threshold: float, dirty_threshold: float
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
        best = _OVERLAPS.best(sample.whole, sample.shared)
        whole = _OVERLAPS.attributed(total.whole, total.shared, best)
        hits = _OVERLAPS.support(sample.whole, sample.shared)[best]
        sample_hits = counted(best, hits, sample.alike, sample.shaped)
        total_hits = counted(best, whole[best], total.alike, total.shaped)
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


def _factor(category: str, state: _ColumnState) -> float:
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


def _evidence(category: str, total: _Counts) -> bool:
    """A dictionary category's column-level evidence (`pii_text.enough_evidence`)."""
    details = {k: n / total.checked for (c, k), n in total.detail.items() if c == category}
    return enough_evidence(category, details, total.whole[category] / total.checked)


def _reported(category: str, chosen: str | None, count: int, total: _Counts) -> bool:
    """Whether a category's whole matches are reported: column-level ones only when chosen."""
    if category in COLUMN_LEVEL:
        return category == chosen
    if category in DICTIONARY_BASED - STRUCTURED_WHOLE:
        share = count / total.checked
        return category == chosen or (share >= WEAK_WHOLE_FLOOR and _evidence(category, total))
    if category in CHANCE_LEVEL:  # random look-alikes pass too often
        return category == chosen or count >= CHANCE_FLOOR * total.shaped[category]
    return True

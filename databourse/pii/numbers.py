"""Identifiers typed as numbers: a reader that makes 0812345678 the integer 812345678.

A number keeps no leading zero. Each value of a numeric column that is no identifier as its
decimal text is tried again with the zeros it may have lost, each form only as the identifiers
that may start with a zero at its length:
- one 0 in front: a My Number, MyKad, CCCD or RRN that started with one; and, in a column named
  as phones (tel, mobile, 电话...: `serials.phone_named`), the trunk 0 of a national phone
  number. Content alone cannot say that: 0 and any 9 or 10 random digits is a valid number of
  some market 97-99% of the time (measured over the trunk-0 markets of `phones`);
- zeros up to the fixed length of the identifiers that may start with one or more of them
  (`ZERO_LED`): 12 (Japan's My Number, Vietnam's CCCD, whose province codes are 001-096,
  a MyKad of someone born in the 2000s), 13 (Korea's RRN), 15 (an IMEI of reporting body 01).
  A number that several forms make valid is read as the category most of its column's values
  are read as (a 2000s RRN without its 0 may pass Aadhaar's check, or with one 0 a CCCD's).
Ids that never start with 0 (CN, TH, NIK, Aadhaar, cards) are read as they are; so is a value
that no form makes valid. In a numeric column every number of a national phone number's length
is a phone look-alike (`PHONE_LIKE_NUMBER`): random numbers are look-alikes that fail, as they
would be written with their 0, and a column of them does not pass for phones
(`dirty_columns`). A column named as bank accounts or birth dates is read as written: its
numbers are those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.identifiers import CHANCE_LEVEL

ZERO_LED: dict[int, tuple[str, ...]] = {  # length -> the identifiers of it that may start with 0
    12: ("JP_MY_NUMBER", "VN_CCCD", "MY_NRIC"),
    13: ("KR_RRN",),
    15: ("IMEI",),
}
MIN_DIGITS = 8  # shorter numbers are counts and codes: no identifier lost a zero to them
MAX_LOST_ZEROS = 3  # an RRN of January-September 2000 starts 000; more is rarer still
# The numbers that are identifiers as written but of an overlapping shape are read again only
# when this share of the column's unreadable numbers read as an id with zeros (a column of
# 2000s RRNs): otherwise a column of phones or cards would be read twice for nothing.
SHARED_AGAIN = 0.5
# A column's unreadable numbers are first probed: when fewer than PROBE_SHARE of PROBE_ROWS of
# them read as any id with zeros (random codes pass a check digit one time in ten or eleven),
# the column is read as written, and scanning a column of order or customer numbers costs no
# more than before.
PROBE_ROWS = 1000
PROBE_SHARE = 0.2
# A number of a national phone number's length (with its trunk 0: 9-13 digits, ID mobiles 13),
# with the 0 or without it; a CN mobile's 11 digits.
PHONE_LIKE_NUMBER = r"^\d{8,13}$"


@dataclass(frozen=True)
class Readings:
    """How a numeric column's numbers are read again with zeros (codes: category indexes)."""

    whole_codes: Callable[[pa.Array, frozenset[int]], np.ndarray]  # values, codes tried
    widths: dict[int, frozenset[int]]  # ZERO_LED as codes
    phone: frozenset[int]  # the phone code when the column is named as phones, else empty
    weak: frozenset[int]  # codes a number as written may leave (a column's name decides them)
    shared: frozenset[int]  # codes of overlapping shapes, left for the column's majority


def restored(
    values: pa.Array, codes: np.ndarray, how: Readings, weights: np.ndarray | None = None
) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """`values` (distinct decimal text of numbers, `weights` times each) and their `codes`,
    where a number is replaced by its form with zeros that is an identifier: a number that is
    none as written (-1 or `how.weak`), or one of `how.shared` when more of the values read as
    the other category. Also which values were tried (each a look-alike of what its forms could
    have been), and which were replaced."""
    weights = np.ones(len(values), dtype=np.int64) if weights is None else weights
    loose = (codes < 0) | np.isin(codes, list(how.weak))
    rows, forms, found = _candidates(values, codes, loose, how)
    tried, padded = np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=bool)
    tried[rows] = True
    if len(rows) == 0:
        return values, codes, tried, padded
    tally = _tally(codes, found, weights, rows)
    pick = np.argmax(np.where(found >= 0, tally[np.maximum(found, 0)], -1.0), axis=1)
    best, was = found[np.arange(len(rows)), pick], codes[rows]
    better = (was < 0) | (tally[np.maximum(best, 0)] > tally[np.maximum(was, 0)])
    keep = np.flatnonzero((best >= 0) & (best != was) & (loose[rows] | better))
    out = codes.copy()
    out[rows[keep]] = best[keep]
    padded[rows[keep]] = True
    chosen = [forms[k].take(pa.array(keep[pick[keep] == k], pa.int64())) for k in range(len(forms))]
    order = np.argsort(np.concatenate([keep[pick[keep] == k] for k in range(len(forms))]))
    text = pa.concat_arrays(chosen).take(pa.array(order, pa.int64()))
    return _put(values.cast(pa.large_string()), rows[keep], text), out, tried, padded


def _candidates(
    values: pa.Array, codes: np.ndarray, loose: np.ndarray, how: Readings
) -> tuple[np.ndarray, list[pa.Array], np.ndarray]:
    """The numbers worth reading with zeros (ascending positions), their forms and what each
    form reads as (`_zero_forms`): the `loose` ones, and those of an overlapping shape when
    `SHARED_AGAIN` of the loose ones read as one id."""
    lengths = pc.utf8_length(values).to_numpy(zero_copy_only=False)
    plain = pc.fill_null(pc.match_substring_regex(values, r"^\d+$"), False).to_numpy(False)
    fits = plain & (lengths >= MIN_DIGITS) & (lengths < max(how.widths))
    rows = np.flatnonzero(fits & loose)
    if len(rows) > PROBE_ROWS:
        _, probe = _zero_forms(values.take(pa.array(rows[:PROBE_ROWS], pa.int64())), how)
        if _hits(probe) < PROBE_SHARE * PROBE_ROWS:
            rows = rows[:0]
    forms, found = _zero_forms(values.take(pa.array(rows, pa.int64())), how)
    hits = _hits(found)
    extra = np.flatnonzero(fits & ~loose & np.isin(codes, list(how.shared)))
    if len(extra) == 0 or hits < SHARED_AGAIN * len(rows) or hits == 0:
        return rows, forms, found
    more, also = _zero_forms(values.take(pa.array(extra, pa.int64())), how)
    order = np.argsort(np.concatenate([rows, extra]))
    forms = [
        pa.concat_arrays([a, b]).take(pa.array(order)) for a, b in zip(forms, more, strict=True)
    ]
    return np.concatenate([rows, extra])[order], forms, np.vstack([found, also])[order]


def numbers_alike(
    text: pa.Array,
    codes: np.ndarray,
    zeros: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray,
    phones: bool,
    names: Sequence[str],
) -> tuple[tuple[int, int] | None, dict[str, int]]:
    """Look-alikes in a numeric column (`text` as `restored` left it, `codes` index `names`,
    `zeros` = tried, replaced). With `phones` (read with their trunk 0), every number of a
    phone's length is a phone look-alike: (look-alikes, valid ones). And every number tried
    with zeros is a look-alike of each chance-level id one of them became: the counts to add,
    so that random numbers that pass some form by chance stay chance."""
    tried, padded = zeros
    phone = None
    if phones:
        hit = pc.match_substring_regex(text, PHONE_LIKE_NUMBER).to_numpy(zero_copy_only=False)
        valid = hit & (codes == names.index("PHONE_NUMBER"))
        phone = int(weights[hit].sum()), int(weights[valid].sum())
    more = {}
    for code in np.unique(codes[padded]).tolist():
        if names[code] in CHANCE_LEVEL and names[code] != "PHONE_NUMBER":
            more[names[code]] = int(weights[tried & (codes != code)].sum())
    return phone, more


def _zero_forms(numbers: pa.Array, how: Readings) -> tuple[list[pa.Array], np.ndarray]:
    """The forms with zeros of each number (one 0 as a phone's trunk 0, then padded to each of
    `how.widths`) and, per number and form, the code of the identifier it is (-1: none)."""
    empty = pa.scalar("", pa.large_string())
    forms = [pc.binary_join_element_wise(pa.scalar("0", pa.large_string()), numbers, empty)]
    forms += [pc.utf8_lpad(numbers, width, "0") for width in how.widths]
    tries = [how.phone, *how.widths.values()]
    lengths = pc.utf8_length(numbers).to_numpy(zero_copy_only=False)
    found = np.full((len(numbers), len(forms)), -1, dtype=np.int64)
    for k, (form, width) in enumerate(zip(forms, [0, *how.widths], strict=True)):
        lost = width - lengths if width else np.ones(len(numbers), dtype=np.int64)
        rows = np.flatnonzero((lost > 0) & (lost <= MAX_LOST_ZEROS))
        if len(rows) and tries[k]:
            found[rows, k] = how.whole_codes(form.take(pa.array(rows, pa.int64())), tries[k])
    return forms, found


def _hits(found: np.ndarray) -> int:
    """How many numbers read as the category most of them read as with zeros."""
    return int(np.bincount(found[found >= 0], minlength=64).max()) if found.size else 0


def _tally(
    codes: np.ndarray, found: np.ndarray, weights: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Values per category code: as written, and as each form with zeros of the `rows` reads."""
    held = codes >= 0
    tally = np.bincount(codes[held], weights[held], minlength=64).astype(np.float64)
    for column in found.T:
        tally += np.bincount(column[column >= 0], weights[rows][column >= 0], minlength=64)
    return tally


def _put(text: pa.Array, at: np.ndarray, new: pa.Array) -> pa.Array:
    """`text` with the values at positions `at` (ascending) replaced by `new`, in order."""
    mask = np.zeros(len(text), dtype=bool)
    mask[at] = True
    return pc.replace_with_mask(text, pa.array(mask), new.cast(text.type))

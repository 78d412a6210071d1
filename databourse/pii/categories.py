"""The categories of personal data in priority order, and the category of each whole value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.grouping import plain
from databourse.pii.identifiers import CHANCE_FLOOR, SHAPES, valid_mask
from databourse.pii.identifiers_intl import SHAPES_INTL
from databourse.pii.numbers import ZERO_LED, Readings, restored
from databourse.pii.overlaps import Overlaps
from databourse.pii.patterns import COLUMN_LEVEL, column_factor, detail_keys, text_valid_mask
from databourse.pii.patterns import SHAPES as TEXT_SHAPES
from databourse.pii.phones import bare_national
from databourse.pii.scan_text import folded
from databourse.pii.serials import named_serial, phone_named

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
ALL_SHAPES = {**SHAPES, **TEXT_SHAPES}
ANY_SHAPE = "^(?:" + "|".join(f"(?:{ALL_SHAPES[c][1:-1]})" for c in CATEGORIES) + ")$"
# Checked apart, the next markets' shapes and the others cost two RE2 passes that are faster
# than one over all of them, and a value of one kind is never checked against the other's.
ANY_SHAPE_INTL = "^(?:" + "|".join(f"(?:{s[1:-1]})" for s in SHAPES_INTL.values()) + ")$"
ANY_SHAPE_BASE = (
    "^(?:" + "|".join(f"(?:{ALL_SHAPES[c][1:-1]})" for c in CATEGORIES if c not in SHAPES_INTL)
) + ")$"


def whole_codes(values: pa.Array, only: frozenset[int] | None = None) -> np.ndarray:
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


OVERLAPS = Overlaps(CATEGORIES, SHARED_SHAPES, _valid)
_COLUMN_LEVEL_CODES = frozenset(CATEGORIES.index(c) for c in COLUMN_LEVEL)
_PHONE = CATEGORIES.index("PHONE_NUMBER")
_SHARED_CODES = frozenset(CATEGORIES.index(c) for c in SHARED_SHAPES)
_ZERO_WIDTHS = {n: frozenset(CATEGORIES.index(c) for c in ids) for n, ids in ZERO_LED.items()}


def number_readings(typ: pa.DataType, column_name: str) -> Readings | None:
    """How a numeric column's numbers are read with the zeros they lost (`pii_numbers`): as
    phones only when it is named as phones. None (read as written) for text, and for a column
    named as bank accounts or birth dates, whose numbers are those, or as order, invoice or
    other serial numbers (`serials.named_serial`), which never started with a zero."""
    if not numeric(value_type(typ)):
        return None
    if any(_cued(c, column_name) for c in ("BANK_ACCOUNT", "DATE_OF_BIRTH")):
        return None
    if named_serial(column_name):  # an order or invoice number lost no zero: it had none
        return None
    phone = frozenset({_PHONE}) if phone_named(column_name) else frozenset()
    return Readings(whole_codes, _ZERO_WIDTHS, phone, _COLUMN_LEVEL_CODES, _SHARED_CODES)


def named_phones(text: pa.Array, codes: np.ndarray, column_name: str) -> np.ndarray:
    """`codes` with the bare digit runs of a column named as phones read as phone numbers
    (`phones.bare_national`): those that are nothing else, or only what a column's name must
    decide (a bank account's shape, say). Other columns' codes are returned as they are."""
    if not phone_named(column_name):
        return codes
    loose = np.flatnonzero((codes < 0) | np.isin(codes, list(_COLUMN_LEVEL_CODES)))
    if len(loose) == 0:
        return codes
    found = bare_national(text.take(pa.array(loose, pa.int64())))
    out = codes.copy()
    out[loose[found]] = _PHONE
    return out


def chance_layouts(
    text: pa.Array, codes: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """`codes` without the grouped national phone numbers that are chance: codes printed in
    groups (`0123-4567-8901` among `5123-...`, gift or voucher codes) start with 0 one time in
    ten and then pass as some market's number more often than not. A layout read with its
    trunk 0 counts as phones only when CHANCE_FLOOR of the values laid out so (whatever their
    first digit) are phones; a column of national numbers starts with 0 throughout."""
    phones = codes == _PHONE
    if not phones.any():
        return codes
    grouped = pc.match_substring_regex(text, r"^0\d*[ .-]\d[\d .-]*$").to_numpy(False)
    trunk = phones & grouped
    if not trunk.any():
        return codes
    weights = np.ones(len(codes), dtype=np.int64) if weights is None else weights
    layout = pc.dictionary_encode(pc.replace_substring_regex(text, r"\d", "9"))
    ids = layout.indices.to_numpy(zero_copy_only=False)
    laid_out = np.bincount(ids, weights, minlength=len(layout.dictionary))
    as_phones = np.bincount(ids[phones], weights[phones], minlength=len(layout.dictionary))
    chance = as_phones < CHANCE_FLOOR * laid_out  # per layout
    out = codes.copy()
    out[trunk & chance[ids]] = -1
    return out


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
    codes = chance_layouts(text, named_phones(text, whole_codes(text), column_name or ""))
    zeros = number_readings(values.type, column_name or "")
    if zeros is not None:
        text, codes, _, _ = restored(text, codes, zeros)
    codes = OVERLAPS.column_codes(text, codes)
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


def value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def numeric(typ: pa.DataType) -> bool:
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

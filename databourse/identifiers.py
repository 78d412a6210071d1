"""Vectorized validators of personal identifiers (shape, checksum, date, phone metadata)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import string
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import iban as stdnum_iban

Mask = np.ndarray  # one bool per candidate

# Whole-value shapes, RE2 syntax (pyarrow.compute); a candidate must match before it is checked.
SHAPES: dict[str, str] = {
    "CN_RESIDENT_ID": r"^\d{17}[\dXx]$",
    "SG_NRIC_FIN": r"^[STFGMstfgm]\d{7}[A-Za-z]$",
    "CN_USCC": r"^[1-9][1-9] ?\d{6} ?[0-9A-HJ-NP-RT-Y]{9}[0-9A-HJ-NP-RT-Y]$",  # 2-6-10 spaced
    "HK_ID": r"^[A-Z]{1,2}\d{6}(?:[0-9A]|\([0-9A]\))$",
    "MY_NRIC": r"^(?:\d{6}-\d{2}-\d{4}|\d{12})$",
    # as written: any grouping by spaces, dashes or dots, lower case letters in the BBAN
    "IBAN": r"^[A-Z]{2}[ .-]?\d(?:[ .-]?[A-Za-z0-9]){12,33}$",
    "CREDIT_CARD": (  # bare 12-19 digits; 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4
        r"^(?:\d{12,19}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}(?:[ -]\d{3})?|\d{4}[ -]\d{6}[ -]\d{4,5})$"
    ),
    "EMAIL_ADDRESS": (
        r"^[A-Za-z0-9_%+'-]+(?:\.[A-Za-z0-9_%+'-]+)*@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{2,59})$"
    ),
    "IP_ADDRESS": (
        r"^(?:(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        r"|(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){6}[\d.]{7,15}"
        r"|[0-9A-Fa-f:.]*::[0-9A-Fa-f:.]*)(?:%[0-9A-Za-z._~-]{1,64})?)$"  # IPv6, zone id
    ),
    "PHONE_NUMBER": (  # as people write them: brackets, dots, mixed separators, an extension
        r"^(?:(?:\+|00[ .-]?)\d[\d .()/-]{5,22}\d"  # international: a plus or the 00 exit code
        r"|\(\+\d{1,4}\) ?\d[\d .()/-]{5,18}\d"
        r"|1[3-9]\d[ .-]?\d{4}[ .-]?\d{4}"  # CN mobile
        r"|0\d{9,10}|\(?0\d{1,3}\)?[ .-]\d{3,4}[ .-]?\d{4}"  # MY, CN national with trunk 0
        r"|[2-9]\d{3}[ .-]\d{4}"  # SG, HK: 8 digits only when grouped
        r"|\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]\d{4}"  # US, CA: grouped 3-3-4
        r")(?:,? ?(?:x|ext\.?|extension|#) ?\d{1,6})?$"
    ),
}
PHONE_EXTENSION = r",? ?(?:x|ext\.?|extension|#) ?\d{1,6}$"
# An international number: a plus or the 00 exit code (not NANP's 011: MY mobiles start 011).
PHONE_EXIT = r"^\(?(?:\+|00)"
NANP_GROUPED = r"^\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]\d{4}$"
# Any value that can be valid for some category matches this; one pass rules the rest out.
ANY_SHAPE = "^(?:" + "|".join(f"(?:{shape[1:-1]})" for shape in SHAPES.values()) + ")$"
# Identifiers inside text. Contiguous digit runs (CN ids, bare cards and phones) are cut out and
# validated in bulk; separated forms are extracted in Python, only from values that an RE2
# prefilter selected. Lookarounds, never \b (which fails between CJK characters and digits).
# ASCII tokens mixing letters (other than X) and digits: codes, never read as bare digit runs.
MIXED_TOKENS = (
    r"[0-9A-Za-z]*[A-WYZa-wyz][0-9A-Za-z]*[0-9][0-9A-Za-z]*"
    r"|[0-9A-Za-z]*[0-9][0-9A-Za-z]*[A-WYZa-wyz][0-9A-Za-z]*"
)
HEX_TOKENS = (
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32,}"
)
RUN_SEPARATORS = r"[^0-9Xx]+"
RUN_CATEGORIES = ("CN_RESIDENT_ID", "CREDIT_CARD", "PHONE_NUMBER")
SEPARATED: dict[str, tuple[str, re.Pattern[str]]] = {  # category -> (RE2 prefilter, extractor)
    "SG_NRIC_FIN": (
        r"(?:^|[^A-Za-z0-9])[STFGMstfgm]\d{7}[A-Za-z](?:$|[^A-Za-z0-9])",
        re.compile(r"(?<![A-Za-z0-9])[STFGMstfgm]\d{7}[A-Za-z](?![A-Za-z0-9])"),
    ),
    "MY_NRIC": (  # dashed only: bare 12-digit runs in text are too often something else
        r"\d{6}-\d{2}-\d{4}",
        re.compile(r"(?<!\d)\d{6}-\d{2}-\d{4}(?!\d)"),
    ),
    "CREDIT_CARD": (
        r"\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}|\d{4}[ -]\d{6}[ -]\d{5}",
        re.compile(
            r"(?<![\d-])(?<![A-Z]{2}\d{2} )(?:\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}(?:[ -]\d{3})?"
            r"|\d{4}[ -]\d{6}[ -]\d{5})(?!\d)"
        ),
    ),
    "CN_USCC": (
        r"[1-9][1-9]\d{6}[0-9A-HJ-NP-RT-Y]{10}",
        re.compile(r"(?<![0-9A-Za-z])[1-9][1-9]\d{6}[0-9A-HJ-NP-RT-Y]{10}(?![0-9A-Za-z])"),
    ),
    "HK_ID": (  # in text only the written form with the check in brackets: 1 in 11 is weak
        r"[A-Z]\d{6}\([0-9A]\)",
        re.compile(r"(?<![0-9A-Za-z])[A-Z]{1,2}\d{6}\([0-9A]\)"),
    ),
    "IBAN": (
        r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
        re.compile(
            r"(?<![0-9A-Za-z])[A-Z]{2}\d{2}"
            r"(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?![0-9A-Za-z])"
        ),
    ),
    "EMAIL_ADDRESS": (
        r"[A-Za-z0-9]@[A-Za-z0-9]",
        re.compile(r"[A-Za-z0-9_%+'-]+(?:\.[A-Za-z0-9_%+'-]+)*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}"),
    ),
    "IP_ADDRESS": (
        r"\d\.\d{1,3}\.\d{1,3}\.\d|::|(?:[0-9A-Fa-f]{1,4}:){7}",
        re.compile(
            r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"
            # IPv6 whole: the token may end in a dotted quad or a zone id, and never continues
            # (no address cut out of a malformed token such as ::ffff:256.0.0.1)
            r"|(?<![0-9A-Za-z:.%])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
            r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?:%[0-9A-Za-z._~-]{1,64})?"
            r"(?![0-9A-Za-z:%]|\.[0-9A-Za-z])"
        ),
    ),
    "PHONE_NUMBER": (
        r"\+\d|\d[ -]\d{3,4}[ -]?\d{4}|[2-9]\d{3} \d{4}",
        re.compile(  # national shapes must not be a piece of a longer digit group
            r"\+\d(?:[ -]?\d){6,14}(?!\d)"
            r"|(?<!\d)(?<![\d+][ -])(?:1[3-9]\d(?:[ -]?\d{4}){2}|0\d{1,3}[ -]\d{3,4}[ -]?\d{4}"
            r"|[2-9]\d{3} \d{4})(?![ -]?\d)"
        ),
    ),
}
ANY_SEPARATED = "|".join(prefilter for prefilter, _ in SEPARATED.values())
ANY_EMBEDDED = r"\d{10}|" + ANY_SEPARATED
_PROVINCE_RANGES = ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 82))
CN_PROVINCES = frozenset(p for low, high in _PROVINCE_RANGES for p in range(low, high + 1))
MY_UNASSIGNED_PB = frozenset([0, 17, 18, 19, 20, 69, 70, 73, 80, 81, 94, 95, 96, 97])
_CN_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_CN_CHECK = np.frombuffer(b"10X98765432", np.uint8)
_SG_WEIGHTS = np.array([2, 7, 6, 5, 4, 3, 2])
_SG_TABLES = {  # prefix -> (offset, letters indexed by weighted sum mod 11)
    "S": (0, b"JZIHGFEDCBA"),
    "T": (4, b"JZIHGFEDCBA"),
    "F": (0, b"XWUTRQPNMLK"),
    "G": (4, b"XWUTRQPNMLK"),
    "M": (3, b"XWUTRQPNJLK"),
}
# Card issuer identification number ranges (ISO/IEC 7812 as the networks publish them): (first
# and last prefix, inclusive, of equal width; allowed lengths). A number is a card when a range
# holds its prefix, its length is allowed and its Luhn check holds.
# 18 digits is a CN resident id's length: of the ranges issued at 16-19 digits, only UnionPay 62
# is read at 18 (a wrong-check id of province 36, 50, 63 or 64 must not become a Diners,
# Maestro, InterPayment or Discover card).
_UP_TO_19 = frozenset({16, 17, 19})
_CARD_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa (Electron, Dankort co-brand inside)
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (300, 305, frozenset({14}) | _UP_TO_19),  # Diners Club International
    (3095, 3095, frozenset({14}) | _UP_TO_19),
    (36, 36, frozenset({14}) | _UP_TO_19),
    (38, 39, frozenset({14}) | _UP_TO_19),
    (6011, 6011, _UP_TO_19),  # Discover
    (644, 649, _UP_TO_19),
    (65, 65, _UP_TO_19),
    (3528, 3589, _UP_TO_19),  # JCB
    (62, 62, frozenset(range(16, 20))),  # UnionPay (often 19 digits)
    (81, 81, frozenset({16, 19})),  # UnionPay 81
    (5019, 5019, frozenset({16})),  # Dankort
    (2200, 2204, _UP_TO_19),  # Mir
    (5018, 5018, frozenset(range(12, 18)) | {19}),  # Maestro
    (5020, 5020, frozenset(range(12, 18)) | {19}),
    (5038, 5038, frozenset(range(12, 18)) | {19}),
    (5893, 5893, frozenset(range(12, 18)) | {19}),
    (6304, 6304, frozenset(range(12, 18)) | {19}),
    (6759, 6759, frozenset(range(12, 18)) | {19}),
    (6761, 6763, frozenset(range(12, 18)) | {19}),
    (60, 60, frozenset({16})),  # RuPay
    (508, 508, frozenset({16})),
    (353, 353, frozenset({16})),
    (356, 356, frozenset({16})),
    (636, 636, _UP_TO_19),  # InterPayment
    (506099, 506198, frozenset({16, 19})),  # Verve
    (507865, 507964, frozenset({16, 19})),
    (650002, 650027, frozenset({16, 19})),
    (9792, 9792, frozenset({16})),  # Troy
    (1, 1, frozenset({15})),  # UATP
)
# In free text a digit run is a card only at 13 digits or more and never a UATP (1 + 14 digits):
# shorter runs and runs starting with 1 are as often order numbers, with a 1 in 10 Luhn chance.
TEXT_CARD_MIN_LENGTH = 13
_PHONE_REGIONS = {"86": "CN", "60": "MY", "65": "SG", "852": "HK"}
_TRUNK_ZERO = frozenset({"CN", "MY"})
_DESC_NAMES = ("mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip")
_DESC_NAMES2 = ("personal_number", "pager", "uan", "voicemail")


def valid_mask(category: str, candidates: pa.Array) -> Mask:
    """Return which candidate strings (already trimmed) are valid values of `category`."""
    arr = candidates.cast(pa.large_string())
    out = np.zeros(len(arr), dtype=bool)
    shaped = pc.fill_null(pc.match_substring_regex(arr, SHAPES[category]), False)
    idx = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    if len(idx):
        out[idx] = _CHECKS[category](arr.take(pa.array(idx)))
    return out


def _matrix(arr: pa.Array, width: int) -> np.ndarray:
    """View equal-length ASCII strings as an (n, width) uint8 matrix."""
    fixed = pc.cast(arr.cast(pa.large_binary()), pa.binary(width))
    buf = np.frombuffer(fixed.buffers()[1], np.uint8)
    return buf[fixed.offset * width : (fixed.offset + len(fixed)) * width].reshape(-1, width)


def _number(digits: np.ndarray) -> np.ndarray:
    """Decimal value of each row of a digit matrix."""
    weights = 10 ** np.arange(digits.shape[1] - 1, -1, -1)
    return digits.astype(np.int64) @ weights


def real_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> Mask:
    """Which (year, month, day) triples are calendar dates between 1900-01-01 and today."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    in_month = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    today = dt.date.today()
    not_future = (
        year * 10000 + month * 100 + day <= today.year * 10000 + today.month * 100 + today.day
    )
    return (
        (year >= 1900) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= in_month) & not_future
    )


def _cn_resident_id(arr: pa.Array) -> Mask:
    mat = _matrix(pc.utf8_upper(arr), 18)
    digits = mat[:, :17].astype(np.int64) - 48
    check_ok = _CN_CHECK[(digits @ _CN_WEIGHTS) % 11] == mat[:, 17]
    province_ok = np.isin(_number(digits[:, :2]), list(CN_PROVINCES))
    date_ok = real_dates(
        _number(digits[:, 6:10]), _number(digits[:, 10:12]), _number(digits[:, 12:14])
    )
    return check_ok & province_ok & date_ok


def _sg_nric_fin(arr: pa.Array) -> Mask:
    mat = _matrix(pc.utf8_upper(arr), 9)
    total = (mat[:, 1:8].astype(np.int64) - 48) @ _SG_WEIGHTS
    out = np.zeros(len(mat), dtype=bool)
    for prefix, (offset, letters) in _SG_TABLES.items():
        rows = mat[:, 0] == ord(prefix)
        expected = np.frombuffer(letters, np.uint8)[(total[rows] + offset) % 11]
        out[rows] = expected == mat[rows, 8]
    return out


_USCC_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRTUWXY", np.uint8)
_USCC_VALUE = np.zeros(256, np.int64)
_USCC_VALUE[_USCC_ALPHABET] = np.arange(31)
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)])
_HK_WEIGHTS = np.arange(9, 1, -1)


def _cn_uscc(arr: pa.Array) -> Mask:
    """GB 32100-2015: check over 3^i mod 31, a real province in the division code; not a CN id."""
    mat = _matrix(pc.replace_substring(arr, " ", ""), 18)
    total = _USCC_VALUE[mat[:, :17]] @ _USCC_WEIGHTS
    check_ok = _USCC_ALPHABET[(31 - total % 31) % 31] == mat[:, 17]
    region_ok = np.isin(_number(mat[:, 2:4].astype(np.int64) - 48), [*CN_PROVINCES, 10])
    return check_ok & region_ok & ~_cn_id_like(mat)


def _cn_id_like(mat: np.ndarray) -> Mask:
    """Shaped like a CN resident id (province, real birth date), whatever its check character."""
    digits = mat[:, :17].astype(np.int64) - 48
    numeric = ((digits >= 0) & (digits <= 9)).all(axis=1) & np.isin(
        mat[:, 17], list(b"0123456789X")
    )
    dated = real_dates(
        _number(digits[:, 6:10]), _number(digits[:, 10:12]), _number(digits[:, 12:14])
    )
    return numeric & dated & np.isin(_number(digits[:, :2]), list(CN_PROVINCES))


def _hk_id(arr: pa.Array) -> Mask:
    """HKID: letters A=10..Z=35, a single letter padded with 36, weights 9..2, check 11 - sum."""
    padded = pc.utf8_lpad(pc.replace_substring_regex(arr, r"[()]", ""), 9, " ")
    mat = _matrix(padded, 9).astype(np.int64)
    values = np.where(mat == 32, 36, np.where(mat >= 65, mat - 55, mat - 48))
    expected = (11 - (values[:, :8] @ _HK_WEIGHTS) % 11) % 11
    return expected == np.where(mat[:, 8] == ord("A"), 10, mat[:, 8] - 48)


@lru_cache(maxsize=1)
def _iban_structures() -> str:
    """One RE2 pattern of every country's IBAN layout, from python-stdnum's IBAN registry."""
    kinds = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}
    layouts = []
    for cc in (a + b for a in string.ascii_uppercase for b in string.ascii_uppercase):
        bban = stdnum_iban._ibandb.info(cc)[0][1].get("bban")
        if bban:
            parts = re.findall(r"([1-9][0-9]*)!([nac])", bban)
            layouts.append(cc + r"\d\d" + "".join(f"{kinds[k]}{{{n}}}" for n, k in parts))
    return "^(?:" + "|".join(layouts) + ")$"


def _iban(arr: pa.Array) -> Mask:
    """ISO 13616: the country's layout (python-stdnum's registry) and mod 97 == 1."""
    norm = pc.utf8_upper(pc.replace_substring_regex(arr, r"[ .-]", ""))
    out = pc.match_substring_regex(norm, _iban_structures()).to_numpy(zero_copy_only=False)
    moved = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(norm, 4),
        pc.utf8_slice_codeunits(norm, 0, 4),
        pa.scalar("", pa.large_string()),
    )
    lengths = pc.utf8_length(norm).to_numpy()
    for width in np.unique(lengths[out]):
        rows = np.flatnonzero(out & (lengths == width))
        mat = _matrix(moved.take(pa.array(rows, pa.int64())), int(width)).astype(np.int64)
        values = np.where(mat >= 65, mat - 55, mat - 48)
        rest = np.zeros(len(rows), dtype=np.int64)
        for col in values.T:
            rest = (rest * np.where(col >= 10, 100, 10) + col) % 97
        out[rows] = rest == 1
    return out


def _my_nric(arr: pa.Array) -> Mask:
    digits = _matrix(pc.replace_substring(arr, "-", ""), 12).astype(np.int64) - 48
    yy, month, day = _number(digits[:, 0:2]), _number(digits[:, 2:4]), _number(digits[:, 4:6])
    dated = real_dates(1900 + yy, month, day) | real_dates(2000 + yy, month, day)
    return dated & ~np.isin(_number(digits[:, 6:8]), list(MY_UNASSIGNED_PB))


def luhn(digits: np.ndarray) -> Mask:
    """Luhn check of each row of a digit matrix (check digit last)."""
    rev = digits[:, ::-1].astype(np.int64)
    doubled = rev[:, 1::2] * 2
    doubled -= 9 * (doubled > 9)
    return (rev[:, 0::2].sum(axis=1) + doubled.sum(axis=1)) % 10 == 0


def _credit_card(arr: pa.Array) -> Mask:
    norm = pc.replace_substring_regex(arr, r"[ -]", "")
    lengths = pc.utf8_length(norm).to_numpy()
    head = pc.utf8_slice_codeunits(norm, 0, 6)
    prefix = pc.cast(pc.if_else(pc.equal(head, ""), "0", head), pa.int64()).to_numpy(False)
    head_len = np.minimum(lengths, 6)
    out = np.zeros(len(norm), dtype=bool)
    for low, high, allowed in _CARD_RANGES:
        width = len(str(low))
        lead = prefix // 10 ** np.maximum(head_len - width, 0)
        out |= (lead >= low) & (lead <= high) & np.isin(lengths, list(allowed))
    for width in np.unique(lengths[out]):
        rows = np.flatnonzero(out & (lengths == width))
        out[rows] = luhn(_matrix(norm.take(pa.array(rows)), int(width)).astype(np.int64) - 48)
    return out


def run_mask(category: str, runs: pa.Array) -> Mask:
    """Which bare digit runs cut out of text are valid values of `category` (a RUN_CATEGORY).

    The scan and the redaction both ask this: a card run must also be TEXT_CARD_MIN_LENGTH
    digits or more and not a UATP number (starting with 1)."""
    ok = valid_mask(category, runs)
    if category == "CREDIT_CARD":
        runs = runs.cast(pa.large_string())
        long_enough = pc.greater_equal(pc.utf8_length(runs), TEXT_CARD_MIN_LENGTH)
        ok &= pc.and_not(long_enough, pc.starts_with(runs, "1")).to_numpy(zero_copy_only=False)
    return ok


def _email(arr: pa.Array) -> Mask:
    return np.ones(len(arr), dtype=bool)  # the shape regex is the whole check


def _ip(arr: pa.Array) -> Mask:
    v4 = pc.match_substring(arr, ".").to_numpy(zero_copy_only=False)
    out = ~pc.match_substring(arr, ":").to_numpy(zero_copy_only=False) & v4
    for i in np.flatnonzero(~out):  # IPv6 shapes are rare and loose: parse them
        try:
            ipaddress.IPv6Address(arr[int(i)].as_py())
            out[i] = True
        except ValueError:
            pass
    return out


Desc = tuple[str, tuple[int, ...]]  # national number pattern, possible lengths


@lru_cache(maxsize=8)
def _region_descs(region: str) -> tuple[Desc, tuple[Desc, ...]]:
    """The general and the per-type descriptions of a region's phone metadata."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert meta is not None and meta.general_desc is not None, region
    descs: list[Desc] = []
    for name in ("general_desc", *_DESC_NAMES, *_DESC_NAMES2):
        desc = getattr(meta, name)
        if desc is not None and desc.national_number_pattern:
            descs.append((str(desc.national_number_pattern), tuple(desc.possible_length)))
    return descs[0], tuple(descs[1:])


def _desc_match(nsn: pa.Array, lengths: np.ndarray, desc: Desc) -> Mask:
    pattern, possible = desc
    hit = pc.match_substring_regex(nsn, f"^(?:{pattern})$").to_numpy(zero_copy_only=False)
    return hit & (np.isin(lengths, possible) if possible else True)


def national_valid(region: str, nsn: pa.Array) -> Mask:
    """What phonenumbers' is_valid_number says of national significant numbers, vectorized."""
    general, descs = _region_descs(region)
    lengths = pc.utf8_length(nsn).to_numpy()
    general_ok = _desc_match(nsn, lengths, general)
    typed = np.zeros(len(nsn), dtype=bool)
    for desc in descs:  # valid = matches the general pattern and the pattern of some type
        pending = np.flatnonzero(general_ok & ~typed)
        if len(pending) == 0:
            break
        sub = nsn.take(pa.array(pending, pa.int64()))
        typed[pending] = _desc_match(sub, lengths[pending], desc)
    return general_ok & typed


def _phone(arr: pa.Array) -> Mask:
    text = pc.replace_substring(pc.replace_substring_regex(arr, PHONE_EXTENSION, ""), "(0)", "")
    digits = pc.replace_substring_regex(text, r"\D", "")
    dialled = pc.match_substring_regex(text, r"^\(?00")  # the exit code is not the number's
    digits = pc.if_else(dialled, pc.utf8_slice_codeunits(digits, 2), digits)
    lengths = pc.utf8_length(digits).to_numpy()
    plus = pc.match_substring_regex(text, PHONE_EXIT).to_numpy(zero_copy_only=False)
    first = pc.utf8_slice_codeunits(digits, 0, 1).to_numpy(zero_copy_only=False)
    out = np.zeros(len(arr), dtype=bool)
    known = ~plus
    for code, region in _PHONE_REGIONS.items():
        rows = plus & pc.starts_with(digits, code).to_numpy(zero_copy_only=False)
        known |= rows
        out |= _valid_in(rows, digits, len(code), (region,))
        if region in _TRUNK_ZERO:  # '+60 012...' is read as '+60 12...' by phonenumbers.parse
            trunk = rows & pc.starts_with(digits, code + "0").to_numpy(zero_copy_only=False)
            out |= _valid_in(trunk, digits, len(code) + 1, (region,))
    for i in np.flatnonzero(~known & (lengths >= 8) & (lengths <= 15)):
        try:
            out[i] = phonenumbers.is_valid_number(phonenumbers.parse("+" + digits[int(i)].as_py()))
        except phonenumbers.NumberParseException:
            pass
    out |= _valid_in(~plus & (first == "0"), digits, 1, ("MY", "CN"))
    out |= _valid_in(~plus & (first == "1"), digits, 0, ("CN",))
    out |= _valid_in(~plus & (lengths == 8), digits, 0, ("SG", "HK"))
    nanp = ~plus & pc.match_substring_regex(text, NANP_GROUPED).to_numpy(zero_copy_only=False)
    out |= _valid_in(nanp, digits, 0, ("US", "CA"))
    return out


def _valid_in(rows: Mask, digits: pa.Array, skip: int, regions: tuple[str, ...]) -> Mask:
    """Valid in any of `regions` after dropping `skip` leading digits, for the selected rows."""
    out = np.zeros(len(rows), dtype=bool)
    idx = np.flatnonzero(rows)
    if len(idx):
        nsn = pc.utf8_slice_codeunits(digits.take(pa.array(idx, pa.int64())), skip)
        ok = np.zeros(len(idx), dtype=bool)
        for region in regions:
            ok |= national_valid(region, nsn)
        out[idx] = ok
    return out


_CHECKS: dict[str, Callable[[pa.Array], Mask]] = {
    "CN_RESIDENT_ID": _cn_resident_id,
    "SG_NRIC_FIN": _sg_nric_fin,
    "CN_USCC": _cn_uscc,
    "HK_ID": _hk_id,
    "IBAN": _iban,
    "MY_NRIC": _my_nric,
    "CREDIT_CARD": _credit_card,
    "EMAIL_ADDRESS": _email,
    "IP_ADDRESS": _ip,
    "PHONE_NUMBER": _phone,
}

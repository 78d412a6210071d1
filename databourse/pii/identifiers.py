"""Vectorized validators of personal identifiers (shape, checksum, date, phone metadata)."""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import iban as stdnum_iban

from databourse.pii.cards import card_mask
from databourse.pii.digits import Mask, real_dates
from databourse.pii.digits import matrix as _matrix
from databourse.pii.digits import number as _number
from databourse.pii.emails import EMAIL_SHAPE, email_mask
from databourse.pii.identifiers_intl import (
    CHANCE_LEVEL_INTL,
    CHECKS_INTL,
    LOOK_ALIKES_INTL,
    RUN_CATEGORIES_INTL,
    SEPARATED_INTL,
    SHAPES_INTL,
)
from databourse.pii.phones import (
    PHONE_CODE_LIKE,
    PHONE_SHAPE,
    PHONE_TEXT,
    PHONE_TEXT_PREFILTER,
    phone_mask,
)

# Whole-value shapes, RE2 syntax (pyarrow.compute); a candidate must match before it is checked.
SHAPES: dict[str, str] = {
    # bare, or grouped as written on forms: region, birth date, sequence and check (6-8-4)
    "CN_RESIDENT_ID": r"^(?:\d{17}[\dXx]|\d{6}[ -]\d{8}[ -]\d{3}[\dXx])$",
    "SG_NRIC_FIN": r"^[STFGMstfgm]\d{7}[A-Za-z]$",
    "CN_USCC": r"^[1-9][1-9] ?\d{6} ?[0-9A-HJ-NP-RT-Y]{9}[0-9A-HJ-NP-RT-Y]$",  # 2-6-10 spaced
    "HK_ID": r"^[A-Z]{1,2}\d{6}(?:[0-9A]|\([0-9A]\))$",
    "MY_NRIC": r"^(?:\d{6}-\d{2}-\d{4}|\d{12})$",
    # as written: any grouping by spaces, dashes or dots, lower case letters in the BBAN
    "IBAN": r"^[A-Z]{2}[ .-]?\d(?:[ .-]?[A-Za-z0-9]){12,33}$",
    "CREDIT_CARD": (  # bare 12-19 digits; 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4
        r"^(?:\d{12,19}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}(?:[ -]\d{3})?|\d{4}[ -]\d{6}[ -]\d{4,5})$"
    ),
    "EMAIL_ADDRESS": EMAIL_SHAPE,
    "IP_ADDRESS": (
        r"^(?:(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        r"|(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){6}[\d.]{7,15}"
        r"|[0-9A-Fa-f:.]*::[0-9A-Fa-f:.]*)(?:%[0-9A-Za-z._~-]{1,64})?)$"  # IPv6, zone id
    ),
    "PHONE_NUMBER": PHONE_SHAPE,
    **SHAPES_INTL,  # the next markets: identifiers_intl
}
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
RUN_CATEGORIES = ("CN_RESIDENT_ID", "CREDIT_CARD", "PHONE_NUMBER", *RUN_CATEGORIES_INTL)
SEPARATED: dict[str, tuple[str, re.Pattern[str]]] = {  # category -> (RE2 prefilter, extractor)
    "CN_RESIDENT_ID": (  # grouped 6-8-4 (a bare one is a digit run)
        r"\d{6}[ -]\d{8}[ -]\d{3}[\dXx]",
        re.compile(r"(?<![\d-])\d{6}[ -]\d{8}[ -]\d{3}[\dXx](?![0-9A-Za-z-])"),
    ),
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
    "PHONE_NUMBER": (PHONE_TEXT_PREFILTER, re.compile(PHONE_TEXT)),
    **SEPARATED_INTL,
}
ANY_SEPARATED = "|".join(prefilter for prefilter, _ in SEPARATED.values())
# The same in two parts (two RE2 passes over text are faster than one over the union).
ANY_SEPARATED_INTL = "|".join(prefilter for prefilter, _ in SEPARATED_INTL.values())
ANY_SEPARATED_BASE = "|".join(p for c, (p, _) in SEPARATED.items() if c not in SEPARATED_INTL)
# Categories that random look-alikes pass often (a check digit in ten, a date, a phone plan):
# below the classification threshold a column holds one only when at least CHANCE_FLOOR of its
# values shaped like it (LOOK_ALIKES) are valid (pii_findings._reported).
CHANCE_LEVEL = CHANCE_LEVEL_INTL | {"PHONE_NUMBER"}
LOOK_ALIKES = {**LOOK_ALIKES_INTL, "PHONE_NUMBER": PHONE_CODE_LIKE}  # phones: bare digits
CHANCE_FLOOR = 0.5
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
# In free text a digit run is a card only at 13 digits or more and never a UATP (1 + 14 digits):
# shorter runs and runs starting with 1 are as often order numbers, with a 1 in 10 Luhn chance.
TEXT_CARD_MIN_LENGTH = 13


def valid_mask(category: str, candidates: pa.Array) -> Mask:
    """Return which candidate strings (already trimmed) are valid values of `category`."""
    arr = candidates.cast(pa.large_string())
    out = np.zeros(len(arr), dtype=bool)
    shaped = pc.fill_null(pc.match_substring_regex(arr, SHAPES[category]), False)
    idx = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    if len(idx):
        out[idx] = _CHECKS[category](arr.take(pa.array(idx)))
    return out


def _cn_resident_id(arr: pa.Array) -> Mask:
    mat = _matrix(pc.utf8_upper(pc.replace_substring_regex(arr, r"[ -]", "")), 18)
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
    return email_mask(arr)


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


_CHECKS: dict[str, Callable[[pa.Array], Mask]] = {
    "CN_RESIDENT_ID": _cn_resident_id,
    "SG_NRIC_FIN": _sg_nric_fin,
    "CN_USCC": _cn_uscc,
    "HK_ID": _hk_id,
    "IBAN": _iban,
    "MY_NRIC": _my_nric,
    "CREDIT_CARD": card_mask,
    "EMAIL_ADDRESS": _email,
    "IP_ADDRESS": _ip,
    "PHONE_NUMBER": phone_mask,
    **CHECKS_INTL,
}

"""Validators for pattern and dictionary categories: names, addresses, plates, passports, more.

None of these has a strong checksum, so each is decided at column level (most values must match)
and carries a lower confidence than the checksum-backed identifiers. BANK_ACCOUNT and
DATE_OF_BIRTH are only ever decided with the column name as a signal (see `column_factor`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.addresses import SHAPE as ADDRESS_SHAPE
from databourse.pii.addresses import address_mask
from databourse.pii.digits import luhn, matrix
from databourse.pii.identifiers import CN_PROVINCES, Mask, real_dates
from databourse.pii.person_names import SHAPE as NAME_SHAPE
from databourse.pii.person_names import name_evidence

_ALNUM_PLATE = "[A-HJ-NP-Z0-9]"
_CN_PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_MY_STATE_LETTERS = "ABCDFJKMNPQRSTVW"
PASSPORT_KINDS: tuple[tuple[str, str], ...] = (  # (country, whole-value pattern)
    ("CN", r"^(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})$"),
    ("MY", r"^[AHK]\d{8}$"),
    ("SG", r"^[EK]\d{7}[A-Z]$"),
)
_SG_PLATE_LETTERS = np.frombuffer(b"AZYXUTSRPMLKJHGEDCB", np.uint8)
_SG_PLATE = r"^S[A-HJ-NP-Z]{1,2} ?[1-9]\d{0,3} ?[A-HJ-NP-Z]$"
_DATE_FORMS = (  # (pattern with year, month, day groups)
    r"^(?P<y>(?:19|20)\d\d)[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$",
    r"^(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>(?:19|20)\d\d)$",
    r"^(?P<y>(?:19|20)\d\d)(?P<m>[01]\d)(?P<d>[0-3]\d)$",
    r"^(?P<y>(?:19|20)\d\d)年(?P<m>\d{1,2})月(?P<d>\d{1,2})日$",
)
SHAPES: dict[str, str] = {
    "GEO_COORDINATES": (
        r"^\(?[-+]?\d{1,3}\.\d{4,}°?[NS]?\s*[,;/ ]\s*[-+]?\d{1,3}\.\d{4,}°?[EW]?\)?$"
    ),
    "PASSPORT": "^(?:" + "|".join(p[1:-1] for _, p in PASSPORT_KINDS) + ")$",
    "LICENSE_PLATE": (
        rf"^[{_CN_PROVINCE_CHARS}][A-HJ-NP-Z][·•. -]?{_ALNUM_PLATE}{{5,6}}$"
        rf"|^[{_MY_STATE_LETTERS}][A-HJ-NP-Z]{{1,2}} ?[1-9]\d{{0,3}}(?: ?[A-HJ-NP-Z])?$"
    ),
    "PERSON_NAME": NAME_SHAPE,
    "ADDRESS": ADDRESS_SHAPE,
    "DATE_OF_BIRTH": "^(?:" + "|".join(f"(?:{f[1:-1]})" for f in _DATE_FORMS) + ")$",
    "BANK_ACCOUNT": r"^\d(?:[ -]?\d){9,18}$",
}
COLUMN_LEVEL = frozenset({"PASSPORT", "BANK_ACCOUNT", "DATE_OF_BIRTH"})
BANK_CUES = re.compile(
    r"(?i)bank|acct|account|a/c|iban|akaun|no_?rek|账号|账户|帐号|帐户|银行|銀行|賬戶|開戶|开户"
)
DOB_CUES = re.compile(r"(?i)birth|dob|born|lahir|出生|生日|生年")


def _hits(arr: pa.Array, pattern: str) -> Mask:
    return pc.match_substring_regex(arr, pattern).to_numpy(zero_copy_only=False)


def _geo(arr: pa.Array) -> Mask:
    parts = pc.extract_regex(arr, r"^\(?(?P<a>[-+]?[\d.]+)°?[NS]?\s*[,;/ ]\s*(?P<b>[-+]?[\d.]+)")
    lat = pc.cast(pc.struct_field(parts, "a"), pa.float64()).to_numpy(zero_copy_only=False)
    lon = pc.cast(pc.struct_field(parts, "b"), pa.float64()).to_numpy(zero_copy_only=False)
    return (np.abs(lat) <= 90) & (np.abs(lon) <= 180) & ~((lat == 0) & (lon == 0))


def passport_kind(arr: pa.Array) -> np.ndarray:
    """Index in PASSPORT_KINDS of each passport-shaped value's country, or -1."""
    kind = np.full(len(arr), -1, dtype=np.int64)
    for index, (_, pattern) in enumerate(PASSPORT_KINDS):
        kind[(kind < 0) & _hits(arr, pattern)] = index
    return kind


def _passport(arr: pa.Array) -> Mask:
    digits = pc.replace_substring_regex(arr, r"\D", "")
    # a run of one digit or a counting sequence is a placeholder, not a document number
    placeholder = _hits(digits, r"^(?:0+|1+|9+|12345678?|1234567)$")
    return ~placeholder


def _plate(arr: pa.Array) -> Mask:
    """Pattern only, but a Singapore plate's check letter must be right (weights 9 4 5 4 3 2)."""
    out = np.ones(len(arr), dtype=bool)
    rows = np.flatnonzero(_hits(arr, _SG_PLATE))
    if len(rows):
        parts = pc.extract_regex(
            arr.take(pa.array(rows, pa.int64())),
            r"^S(?P<l>[A-Z]{1,2}) ?(?P<n>\d{1,4}) ?(?P<c>[A-Z])$",
        )
        letters = matrix(pc.utf8_lpad(pc.struct_field(parts, "l"), 2, "@"), 2).astype(np.int64)
        digits = matrix(pc.utf8_lpad(pc.struct_field(parts, "n"), 4, "0"), 4).astype(np.int64)
        total = (letters - 64) @ np.array([9, 4]) + (digits - 48) @ np.array([5, 4, 3, 2])
        check = matrix(pc.struct_field(parts, "c"), 1)[:, 0]
        out[rows] = _SG_PLATE_LETTERS[total % 19] == check
    return out


def _person(arr: pa.Array) -> Mask:
    return name_evidence(arr)[0]


def _date_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    year, month, day = (np.zeros(len(arr), dtype=np.int64) for _ in range(3))
    for form in _DATE_FORMS:
        rows = np.flatnonzero(_hits(arr, form) & (year == 0))
        if len(rows):
            parts = pc.extract_regex(arr.take(pa.array(rows, pa.int64())), form)
            for target, name in ((year, "y"), (month, "m"), (day, "d")):
                target[rows] = pc.cast(pc.struct_field(parts, name), pa.int64()).to_numpy()
    return year, month, day


def _birth_date(arr: pa.Array) -> Mask:
    """A real past date that puts the person's age between 0 and 110."""
    year, month, day = _date_parts(arr)
    return real_dates(year, month, day) & (year >= dt.date.today().year - 110)


# Korea's business registration number, 3-2-5 as printed (the layout of Public Bank's accounts):
# the National Tax Service's check digit (weights 1 3 7 1 3 7 1 3 5, plus half the ninth digit
# times five). One random 3-2-5 account in ten passes it; a column of them is no bank account.
_KR_BRN = r"^\d{3}-\d{2}-\d{5}$"
_KR_BRN_WEIGHTS = np.array([1, 3, 7, 1, 3, 7, 1, 3, 5])


def _kr_brn(arr: pa.Array) -> Mask:
    out = _hits(arr, _KR_BRN)
    rows = np.flatnonzero(out)
    if len(rows):
        digits = pc.replace_substring(arr.take(pa.array(rows, pa.int64())), "-", "")
        mat = matrix(digits, 10).astype(np.int64) - 48
        total = mat[:, :9] @ _KR_BRN_WEIGHTS + mat[:, 8] * 5 // 10
        out[rows] = (10 - total % 10) % 10 == mat[:, 9]
    return out


def _bank_account(arr: pa.Array) -> Mask:
    """10-19 digits that are no Luhn-valid card, timestamp, CN id, date-prefixed order number or
    Korean business registration number."""
    digits = pc.replace_substring_regex(arr, r"[ -]", "")
    lengths = pc.utf8_length(digits).to_numpy()
    head = pc.utf8_slice_codeunits(digits, 0, 13)
    lead = pc.cast(head, pa.int64()).to_numpy(zero_copy_only=False) // 10 ** np.maximum(
        0, np.minimum(lengths, 13) - 10
    )
    timestamp = np.isin(lengths, [10, 13, 16, 19]) & (lead >= 9 * 10**8) & (lead < 21 * 10**8)
    y = pc.cast(pc.utf8_slice_codeunits(digits, 0, 4), pa.int64()).to_numpy()
    m = pc.cast(pc.utf8_slice_codeunits(digits, 4, 6), pa.int64()).to_numpy()
    dated = (y >= 1990) & (y <= dt.date.today().year + 1) & (m >= 1) & (m <= 12)
    cn_id_like = (lengths == 18) & np.isin(y // 100, list(CN_PROVINCES))
    card = np.zeros(len(arr), dtype=bool)
    for width in np.unique(lengths[lengths >= 13]):
        rows = np.flatnonzero(lengths == width)
        text = digits.take(pa.array(rows, pa.int64())).to_pylist()
        mat = np.frombuffer("".join(text).encode(), np.uint8).reshape(-1, int(width)) - 48
        card[rows] = luhn(mat)
    plain = pc.equal(pc.utf8_length(arr), pc.utf8_length(digits)).to_numpy(zero_copy_only=False)
    return ~((plain & (timestamp | dated)) | cn_id_like | card | _kr_brn(arr))


CHECKS: dict[str, Callable[[pa.Array], Mask]] = {
    "GEO_COORDINATES": _geo,
    "PASSPORT": _passport,
    "LICENSE_PLATE": _plate,
    "PERSON_NAME": _person,
    "ADDRESS": address_mask,
    "DATE_OF_BIRTH": _birth_date,
    "BANK_ACCOUNT": _bank_account,
}


def text_valid_mask(category: str, candidates: pa.Array) -> Mask:
    """Which candidate strings (already trimmed) are whole values of `category`."""
    arr = candidates.cast(pa.large_string())
    out = np.zeros(len(arr), dtype=bool)
    shaped = pc.fill_null(pc.match_substring_regex(arr, SHAPES[category]), False)
    idx = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    if len(idx):
        out[idx] = CHECKS[category](arr.take(pa.array(idx, pa.int64())))
    return out


def detail_keys(category: str, values: pa.Array) -> list[str]:
    """Sub-kinds that column decisions need: a passport's country, a bank account's format,
    whether a name-shaped value is strong evidence of a person's name."""
    if category == "PERSON_NAME":
        return np.where(name_evidence(values)[1], "strong", "shaped").tolist()  # type: ignore[no-any-return]
    if category == "PASSPORT":
        return [PASSPORT_KINDS[k][0] for k in passport_kind(values).tolist()]
    if category == "BANK_ACCOUNT":
        return pc.replace_substring_regex(values, r"\d", "9").to_pylist()  # type: ignore[no-any-return]
    return []


# A column of name-shaped values is a name column only when this share of them is strong evidence
# (a title, a patronymic, a known given name and surname, an East Asian surname with syllables, a
# Chinese surname with given-name characters): product names, places and phrases are name-shaped
# but seldom strong (under 0.1 in the independent tables); Faker's id_ID names, the names least
# covered by the lists, are about 0.4 strong.
NAME_EVIDENCE_MIN = 0.25


def enough_evidence(category: str, details: dict[str, float], share: float) -> bool:
    """Whether the column-level evidence of a dictionary category holds (`details` and `share`
    as for `column_factor`, as shares of the checked values)."""
    if category != "PERSON_NAME":
        return True
    return share > 0 and details.get("strong", 0.0) >= NAME_EVIDENCE_MIN * share


# Grouped layouts that banks print account numbers in (digits per group). Without a name cue a
# column is BANK_ACCOUNT only in one of these: any other grouping of 10-19 digits is as likely a
# registration, order or document number (a 6-2-4 grouping is a MyKad, 4-4-4-4 a card). Maybank
# (MY) prints its 12 digits 4-4-4, as India prints Aadhaar numbers and shops gift and voucher
# codes: a column of them is an account only by its name.
ACCOUNT_LAYOUTS = frozenset(
    {
        (3, 6, 1),  # DBS (SG)
        (3, 5, 1),  # POSB (SG)
        (3, 6, 3),  # OCBC (SG), HSBC and Hang Seng (HK)
        (3, 3, 3, 1),  # UOB (SG)
        (3, 2, 5),  # Public Bank (MY)
        (3, 3, 6),  # Bank of China (HK)
    }
)


def _fixed_format(fmt: str) -> bool:
    """A known grouped account layout (`ACCOUNT_LAYOUTS`), whichever separators it uses."""
    return tuple(len(g) for g in re.split(r"[ -]", fmt)) in ACCOUNT_LAYOUTS


def column_factor(
    category: str, column_name: str, details: dict[str, float], share: float
) -> float:
    """Confidence factor of a column-level category, 0 when the column must not be classified.

    `details` are the shares (of checked values) of each sub-kind from `detail_keys`; `share` is
    the category's share, already at or above the threshold. PASSPORT: one country's pattern must
    itself reach that share's floor (the threshold is applied by the caller on `share`), 0.7.
    DATE_OF_BIRTH needs a name cue (birth, dob, 出生, lahir...): past dates without one are as
    likely order or founding dates; 0.9. BANK_ACCOUNT: with a cue (bank, account, 账号, akaun...)
    0.9; without one, most values must share one known bank layout (`ACCOUNT_LAYOUTS`), 0.7: plain
    or otherwise grouped digits without a cue are as likely order or registration numbers.
    """
    if category == "DATE_OF_BIRTH":
        return 0.9 if DOB_CUES.search(column_name) else 0.0
    top = max(details.items(), key=lambda kv: kv[1], default=("", 0.0))
    if category == "PASSPORT":
        return 0.7 if top[1] >= 0.9 * share else 0.0
    if BANK_CUES.search(column_name):
        return 0.9
    return 0.7 if _fixed_format(top[0]) and top[1] >= 0.9 * share else 0.0

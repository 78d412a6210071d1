"""Phone numbers as people write them, validated against phonenumbers' metadata, vectorized.

International numbers (a plus or the 00 exit code) are read in the region of their country code.
A national number (no country code) cannot say its country: one written with a trunk 0 (and 9
digits or more) is a phone number when it is valid in any region of `TRUNK_ZERO_REGIONS`, the
exchange's markets; 8-digit groups are read as SG or HK numbers, grouped 3-3-4 ones in the NANP
regions, 11 digits from 13x-19x as CN mobiles. A bare run of digits without a trunk 0 (an
Indian mobile written as 10 digits, a US number without separators) is not read as a phone: it
is as often an order or account number, and one in three random 10-digit runs is valid somewhere.
In a column named as phones (`serials.phone_named`) the name says what content cannot: a bare run
of 8-13 digits there is a national number written without its trunk prefix (`bare_national`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.digits import Mask

_EXTENSION_TAIL = r"(?:,? ?(?:x|ext\.?|extension|#) ?\d{1,6})?"
PHONE_SHAPE = (  # as people write them: brackets, dots, mixed separators, an extension
    r"^(?:(?:\+|00[ .-]?)\d[\d .()/-]{5,22}\d"  # international: a plus or the 00 exit code
    r"|\(\+\d{1,4}\) ?\d[\d .()/-]{5,18}\d"
    r"|1[3-9]\d[ .-]?\d{4}[ .-]?\d{4}"  # CN mobile
    # national with a trunk 0: (0xx) 1234 5678, 0812-3456-7890, 0 866 048 764, 0-2123-4567
    # (how its digits are grouped is checked apart: NATIONAL_MALFORMED)
    r"|\(0\d{1,4}\)[ .-]?\d[\d .-]{2,16}\d|0[\d .-]{7,18}\d"
    r"|[2-9]\d{3}[ .-]\d{4}"  # SG, HK: 8 digits only when grouped
    r"|\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]\d{4}"  # US, CA: grouped 3-3-4
    r")" + _EXTENSION_TAIL + "$"
)
# The phone numbers a random code can pass for: bare digits, a CN mobile's 11 or a trunk 0 and
# more (order numbers, account numbers). Written with a plus, brackets or grouped, a value is
# phone-formatted: no code is written so (`dirty_columns`, `pii_findings._reported`).
PHONE_CODE_LIKE = r"^(?:1[3-9]\d{9}|0\d{8,18})$"
PHONE_EXTENSION = r",? ?(?:x|ext\.?|extension|#) ?\d{1,6}$"
# An international number: a plus or the 00 exit code (not NANP's 011: MY mobiles start 011).
PHONE_EXIT = r"^\(?(?:\+|00)"
NANP_GROUPED = r"^\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]\d{4}$"
# Country codes read in one region, vectorized (the rest are parsed one by one).
COUNTRY_CODES = {
    "86": "CN",
    "60": "MY",
    "65": "SG",
    "852": "HK",
    "886": "TW",
    "62": "ID",
    "66": "TH",
    "84": "VN",
    "63": "PH",
    "82": "KR",
    "81": "JP",
    "91": "IN",
    "44": "GB",
}
# Regions whose national numbers are written with a trunk 0 (which '+cc 0...' also drops).
TRUNK_ZERO_REGIONS = ("MY", "CN", "ID", "TH", "VN", "PH", "TW", "KR", "JP", "IN", "GB")
# With its trunk 0 no national number of those regions has fewer digits; 8 are a date's.
NATIONAL_MIN_DIGITS = 9
# Not a national number however valid its digits: a group of one digit after a separator (an
# account's check digit: 074-692396-5), two separators in a row, a decimal fraction (0.2153...).
NATIONAL_MALFORMED = r"[ .-]\d(?:[ .-]|$)|[ .-][ .-]|^0\."
NANP_REGIONS = tuple(phonenumbers.region_codes_for_country_code(1))  # US, CA, the Caribbean
_DESC_NAMES = ("mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip")
_DESC_NAMES2 = ("personal_number", "pager", "uan", "voicemail")
# In free text: an RE2 prefilter and the extractor of candidates.
PHONE_TEXT_PREFILTER = r"\+\d|\d[ -]\d{3,4}[ -]?\d{4}|[2-9]\d{3} \d{4}"
PHONE_TEXT = (  # national shapes must not be a piece of a longer digit group
    r"\+\d(?:[ -]?\d){6,14}(?!\d)"
    r"|(?<!\d)(?<![\d+][ -])(?:1[3-9]\d(?:[ -]?\d{4}){2}|0\d{1,3}[ -]\d{3,4}[ -]?\d{4}"
    r"|[2-9]\d{3} \d{4})(?![ -]?\d)"
)

# The regions whose national numbers a bare run of digits may be: the trunk-0 markets (written
# without their 0), the NANP regions (10 digits, no trunk prefix written) and SG, HK (none).
BARE_REGIONS = (*TRUNK_ZERO_REGIONS, *NANP_REGIONS, "SG", "HK")
BARE_DIGITS = r"^[1-9]\d{7,12}$"

Desc = tuple[str, tuple[int, ...]]  # national number pattern, possible lengths


@lru_cache(maxsize=32)
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


def phone_mask(arr: pa.Array) -> Mask:
    """Which phone-shaped candidates are valid numbers (see the module docstring)."""
    text = pc.replace_substring(pc.replace_substring_regex(arr, PHONE_EXTENSION, ""), "(0)", "")
    digits = pc.replace_substring_regex(text, r"\D", "")
    dialled = pc.match_substring_regex(text, r"^\(?00")  # the exit code is not the number's
    digits = pc.if_else(dialled, pc.utf8_slice_codeunits(digits, 2), digits)
    lengths = pc.utf8_length(digits).to_numpy()
    plus = pc.match_substring_regex(text, PHONE_EXIT).to_numpy(zero_copy_only=False)
    first = pc.utf8_slice_codeunits(digits, 0, 1).to_numpy(zero_copy_only=False)
    out = np.zeros(len(arr), dtype=bool)
    known = ~plus
    for code, region in COUNTRY_CODES.items():
        rows = plus & pc.starts_with(digits, code).to_numpy(zero_copy_only=False)
        known |= rows
        out |= _valid_in(rows, digits, len(code), (region,))
        if region in TRUNK_ZERO_REGIONS:  # '+60 012...' is read as '+60 12...' by phonenumbers
            trunk = rows & pc.starts_with(digits, code + "0").to_numpy(zero_copy_only=False)
            out |= _valid_in(trunk, digits, len(code) + 1, (region,))
    for i in np.flatnonzero(~known & (lengths >= 8) & (lengths <= 15)):
        try:
            out[i] = phonenumbers.is_valid_number(phonenumbers.parse("+" + digits[int(i)].as_py()))
        except phonenumbers.NumberParseException:
            pass
    malformed = pc.match_substring_regex(text, NATIONAL_MALFORMED).to_numpy(zero_copy_only=False)
    national = ~plus & (first == "0") & (lengths >= NATIONAL_MIN_DIGITS) & ~malformed
    out |= _valid_in(national, digits, 1, TRUNK_ZERO_REGIONS)
    out |= _valid_in(~plus & (first == "1"), digits, 0, ("CN",))
    out |= _valid_in(~plus & (lengths == 8), digits, 0, ("SG", "HK"))
    nanp = ~plus & pc.match_substring_regex(text, NANP_GROUPED).to_numpy(zero_copy_only=False)
    out |= _valid_in(nanp, digits, 0, NANP_REGIONS)
    return out


def _valid_in(rows: Mask, digits: pa.Array, skip: int, regions: tuple[str, ...]) -> Mask:
    """Valid in any of `regions` after dropping `skip` leading digits, for the selected rows."""
    out = np.zeros(len(rows), dtype=bool)
    idx = np.flatnonzero(rows)
    if len(idx):
        nsn = pc.utf8_slice_codeunits(digits.take(pa.array(idx, pa.int64())), skip)
        ok = np.zeros(len(idx), dtype=bool)
        for region in regions:
            pending = np.flatnonzero(~ok)
            if len(pending) == 0:
                break
            ok[pending] = national_valid(region, nsn.take(pa.array(pending, pa.int64())))
        out[idx] = ok
    return out


def bare_national(values: pa.Array) -> Mask:
    """Which values are bare runs of 8-13 digits that are a valid national significant number
    of some region of `BARE_REGIONS`: nine in ten random runs of 8-10 digits are, so this
    reads a column only when its name says phones (`categories.named_phones`)."""
    plain = pc.fill_null(pc.match_substring_regex(values, BARE_DIGITS), False)
    return _valid_in(plain.to_numpy(zero_copy_only=False), values, 0, BARE_REGIONS)

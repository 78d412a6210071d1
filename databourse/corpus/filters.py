"""Quality filters of corpus documents: the published Gopher and C4 rules, as named thresholds.

Gopher (Rae et al. 2021, "Scaling Language Models", Appendix A.1.1 quality filters and Table A1
repetition removal) and C4 (Raffel et al. 2020, section 2.2), with the thresholds of datatrove's
`GopherQualityFilter`, `GopherRepetitionFilter` and `C4QualityFilter`
(src/datatrove/pipeline/filters/, commit a649de7): 50-100,000 words, mean word length 3-10,
at most 0.1 `#` or ellipses per word, at most 90% bullet lines and 30% lines ending in an
ellipsis, at least 80% words with a letter, at least 2 of the stop words; duplicate lines or
paragraphs at most 30% (by count) and 20% (by characters); the top 2-, 3-, 4-gram at most 20%,
18%, 16% of the characters; duplicated 5- to 10-grams at most 15% down to 10%; C4: no
"lorem ipsum", no curly bracket (anywhere in the page, as the paper says), at least 5 sentences
in the lines C4 keeps (terminal punctuation, 3+ words, no JavaScript or policy notice).
Documents are judged in rule order and count against the FIRST rule they fail only, so the
counts of a batch add up to the documents removed. Texts are judged, never rewritten
(`c4_kept_lines` gives C4's lines for a later rewriting step).

Words are whitespace-separated tokens (punctuation stays attached), except that Chinese and Thai
have no spaces between words:
- each Han or kana character is a word (a Chinese word is 1-2 characters: close to the word
  count, and n-gram rules keep their meaning);
- a token with Thai letters counts one word per THAI_CHARS_PER_WORD of them, and is one token
  for the n-gram rules (Thai puts spaces between phrases, and C4's terminal-punctuation rule does
  not apply to its lines: a Thai sentence ends with a space; its phrases count as sentences);
- the mean word length looks at space-separated words only, and is skipped when they are under
  half of the document's words; the letter ratio weighs tokens as words;
- the stop-word rule needs the document's language (a `langid` label) to have a list: Gopher's
  English list is the only default, other languages skip the rule;
- a full stop directly followed by a CJK character ends a sentence, as do 。！？.
Differences from datatrove: a top n-gram seen once is no repetition (0), n-grams are compared as
word tuples (datatrove joins them without spaces), and C4's lorem-ipsum and bracket rules look at
the whole page. Each document is judged in Python, in time linear in its length (n-grams as
exact integer ids, `gram_ids`, counted with NumPy).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from databourse.config.corpus import GOPHER_STOP_WORDS as GOPHER_STOP_WORDS
from databourse.config.corpus import QualityRules as QualityRules
from databourse.corpus.langid import Batch, batch_texts

THAI_CHARS_PER_WORD = 5
PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~、。，！？；：「」『』（）《》“”‘’…·—")
TERMINAL = (".", "?", "!", '"', "'", "。", "！", "？", "」", "”", "』")
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and Han
THAI = "\u0e00-\u0e7f"
TOKEN = re.compile(rf"[{CJK}]|[^\s{CJK}]+")
SENTENCE_END = re.compile(rf"[.!?]+(?=\s|$|[{CJK}])|[。！？]+")
PARAGRAPHS = re.compile(r"\n{2,}")
LINES = re.compile(r"\n+")


SCRIPT_WORD = re.compile(rf"[{CJK}{THAI}]")
THAI_LETTERS = re.compile(rf"[{THAI}]")
CJK_CHAR = re.compile(rf"[{CJK}]")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
          "use cookies")  # fmt: skip
_LETTER_LIKE = re.compile(r"[^\W\d_]")
CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")


@dataclass
class Document:
    """What the rules look at in one document, computed once."""

    text: str
    language: str | None
    tokens: list[str]  # whitespace-separated tokens, each Han or kana character apart
    content: list[str]  # tokens with at least one character that is not punctuation
    words: float  # word_count(content)
    all_words: float  # word_count(tokens)
    thai: bool = False  # whether it has Thai letters (else a token is a word)
    fractions: dict[str, float] | None = None  # repetition measures, once one rule needs them

    @classmethod
    def of(cls, text: str, language: str | None = None) -> Document:
        """Tokens and word count of a text; `language` (a langid label) picks the stop words."""
        tokens = TOKEN.findall(text)
        content = [token for token in tokens if not set(token) <= PUNCTUATION]
        if THAI_LETTERS.search(text) is None:  # no token has a Thai letter: one word each
            return cls(text, language, tokens, content, len(content), len(tokens))
        return cls(
            text, language, tokens, content, word_count(content), word_count(tokens), thai=True
        )

    def count_words(self, tokens: Sequence[str]) -> float:
        """`word_count` of some of its tokens."""
        return word_count(tokens) if self.thai else len(tokens)


def word_count(tokens: Sequence[str]) -> float:
    """Words in tokens: a token with Thai letters is one word per THAI_CHARS_PER_WORD of them."""
    if not THAI_LETTERS.search(" ".join(tokens)):
        return len(tokens)
    return sum(
        max(1, math.ceil(len(THAI_LETTERS.findall(t)) / THAI_CHARS_PER_WORD)) for t in tokens
    )


@dataclass(frozen=True)
class FilterResult:
    """Which documents of a batch are kept, and how many each rule removed (first failure)."""

    keep: np.ndarray
    removed_by: dict[str, int]
    reasons: list[str | None]


def quality_filter(
    batch: Batch, rules: QualityRules | None = None, languages: Sequence[str] | None = None
) -> FilterResult:
    """Apply the rules to a batch; `languages` (one label per document) enables stop words."""
    rules = rules or QualityRules()
    texts = batch_texts(batch)
    reasons = [
        first_failure(Document.of(text, languages[i] if languages else None), rules)
        for i, text in enumerate(texts)
    ]
    removed = Counter(reason for reason in reasons if reason)
    return FilterResult(
        keep=np.array([reason is None for reason in reasons], dtype=bool),
        removed_by={name: removed[name] for name in RULES if removed[name]},
        reasons=reasons,
    )


def first_failure(doc: Document, rules: QualityRules) -> str | None:
    """The name of the first rule the document fails, or None when it passes them all."""
    for name, rule in RULES.items():
        if not rule(doc, rules):
            return name
    return None


def has_letter(token: str) -> bool:
    """Whether a character of the token is a letter (`str.isalpha`). A letter is a word
    character that is no digit and no underscore, so the regex finds the first candidate; a
    candidate that is none (a numeral such as ½) has the token read character by character."""
    found = _LETTER_LIKE.search(token)
    if found is None:
        return False
    return found.group().isalpha() or any(c.isalpha() for c in token)


def _within(value: float, limit: float | None, *, at_most: bool = True) -> bool:
    return limit is None or (value <= limit if at_most else value >= limit)


def _mean_word_length(doc: Document) -> float | None:
    """Over space-separated words; None when they are under half the document's words."""
    spaced = [token for token in doc.content if not SCRIPT_WORD.match(token)]
    if not spaced or len(spaced) < doc.words / 2:
        return None
    return sum(map(len, spaced)) / len(spaced)


def _ratio_lines(text: str, predicate: Callable[[str], bool]) -> float:
    lines = text.splitlines()
    return sum(map(predicate, lines)) / len(lines) if lines else 0.0


def _stop_words(doc: Document, rules: QualityRules) -> bool:
    listed = rules.stop_words.get(doc.language or "")
    if rules.min_stop_words is None or listed is None:
        return True
    found = {token.lower().strip("".join(PUNCTUATION)) for token in doc.tokens} & listed
    return len(found) >= rules.min_stop_words


def _mean_rule(doc: Document, limit: float | None, *, at_most: bool) -> bool:
    mean = _mean_word_length(doc)
    return mean is None or _within(mean, limit, at_most=at_most)


def _per_word(doc: Document, count: int, limit: float | None) -> bool:
    return _within(count / max(doc.all_words, 1), limit)


Rule = Callable[[Document, QualityRules], bool]  # True: the document passes
GOPHER_QUALITY: dict[str, Rule] = {
    "gopher_short_doc": lambda d, r: _within(d.words, r.min_doc_words, at_most=False),
    "gopher_long_doc": lambda d, r: _within(d.words, r.max_doc_words),
    "gopher_below_avg_word_length": lambda d, r: _mean_rule(
        d, r.min_mean_word_length, at_most=False
    ),
    "gopher_above_avg_word_length": lambda d, r: _mean_rule(
        d, r.max_mean_word_length, at_most=True
    ),
    "gopher_too_many_hashes": lambda d, r: _per_word(d, d.text.count("#"), r.max_symbol_word_ratio),
    "gopher_too_many_ellipsis": lambda d, r: _per_word(
        d, d.text.count("...") + d.text.count("…"), r.max_symbol_word_ratio
    ),
    "gopher_too_many_bullets": lambda d, r: _within(
        _ratio_lines(d.text, lambda line: line.lstrip().startswith(("•", "-"))),
        r.max_bullet_lines_ratio,
    ),
    "gopher_too_many_end_ellipsis": lambda d, r: _within(
        _ratio_lines(d.text, lambda line: line.rstrip().endswith(("...", "…"))),
        r.max_ellipsis_lines_ratio,
    ),
    "gopher_below_alpha_threshold": lambda d, r: _within(
        d.count_words([t for t in d.tokens if has_letter(t)]) / max(d.all_words, 1),
        r.min_alpha_words_ratio,
        at_most=False,
    ),
    "gopher_enough_stop_words": _stop_words,
}


def _duplicates(elements: Sequence[str]) -> tuple[int, int]:
    """Elements equal to an earlier one, and their characters."""
    seen: set[str] = set()
    count = chars = 0
    for element in elements:
        if element in seen:
            count, chars = count + 1, chars + len(element)
        seen.add(element)
    return count, chars


def _gram_length(gram: tuple[str, ...]) -> int:
    """Characters of an n-gram as written: a space between words, none between CJK characters."""
    gaps = sum(not (CJK_CHAR.match(a) and CJK_CHAR.match(b)) for a, b in pairwise(gram))
    return sum(map(len, gram)) + gaps


def gram_ids(tokens: Sequence[str], up_to: int) -> list[np.ndarray]:
    """For n = 1..up_to (index n - 1), an id of the n-gram starting at each position: equal ids,
    equal n-grams (exactly: an n-gram's id is a rank of the pair (its (n-1)-gram's id, its last
    token's id), never a hash)."""
    index: dict[str, int] = {}
    ids = np.fromiter((index.setdefault(t, len(index)) for t in tokens), np.int64, len(tokens))
    out = [ids]
    for n in range(2, up_to + 1):
        if len(tokens) < n:
            out.append(np.empty(0, np.int64))
            continue
        pairs = out[-1][:-1] * (len(tokens) + 1) + ids[n - 1 :]
        out.append(np.unique(pairs, return_inverse=True)[1].astype(np.int64))
    return out


def top_ngram_fraction(tokens: Sequence[str], grams: np.ndarray, n: int, length: int) -> float:
    """Characters covered by the most frequent n-gram (all its occurrences) over the text's; of
    equally frequent ones, the first to occur (`grams`: `gram_ids`' n-gram ids).

    An n-gram seen once is no repetition: 0 (datatrove counts it, which only matters for texts
    of a few long tokens, such as Thai phrases)."""
    if not len(grams) or not length:
        return 0.0
    counts = np.bincount(grams)
    most = int(counts.max())
    if most < 2:
        return 0.0
    at = int(np.flatnonzero(counts[grams] == most)[0])
    return _gram_length(tuple(tokens[at : at + n])) * most / length


def duplicate_ngram_fraction(
    tokens: Sequence[str], grams: np.ndarray, n: int, length: int
) -> float:
    """Characters (spaces excluded) in n-grams that repeat an earlier one, without overlaps
    (`grams`: `gram_ids`' n-gram ids)."""
    if not length or not len(grams) or np.bincount(grams).max() < 2:
        return 0.0
    ends = np.concatenate(([0], np.cumsum([len(t) for t in tokens])))
    seen: set[int] = set()
    repeated, at, ids = 0, 0, grams.tolist()
    while at < len(ids):
        if ids[at] in seen:
            repeated, at = repeated + int(ends[at + n] - ends[at]), at + n
        else:
            seen.add(ids[at])
            at += 1
    return repeated / length


def repetition_fractions(doc: Document, rules: QualityRules) -> dict[str, float]:
    """Gopher's repetition measures of a document (Table A1), by rule name."""
    length = max(len(doc.text), 1)
    paragraphs = PARAGRAPHS.split(doc.text.strip())
    lines = LINES.split(doc.text)
    para_count, para_chars = _duplicates(paragraphs)
    line_count, line_chars = _duplicates(lines)
    fractions = {
        "gopher_dup_para_frac": para_count / len(paragraphs),
        "gopher_dup_para_char_frac": para_chars / length,
        "gopher_dup_line_frac": line_count / len(lines),
        "gopher_dup_line_char_frac": line_chars / length,
    }
    sizes = [n for n, _ in (*rules.top_ngram_char_frac, *rules.dup_ngram_char_frac)]
    grams = gram_ids(doc.tokens, max(sizes, default=1))
    for n, _ in rules.top_ngram_char_frac:
        fractions[f"gopher_top_{n}_gram"] = top_ngram_fraction(doc.tokens, grams[n - 1], n, length)
    for n, _ in rules.dup_ngram_char_frac:
        fractions[f"gopher_duplicated_{n}_n_grams"] = duplicate_ngram_fraction(
            doc.tokens, grams[n - 1], n, length
        )
    return fractions


def repetition_limits(rules: QualityRules) -> dict[str, float | None]:
    """The threshold of each repetition measure, by rule name."""
    limits: dict[str, float | None] = {
        "gopher_dup_para_frac": rules.max_dup_para_frac,
        "gopher_dup_para_char_frac": rules.max_dup_para_char_frac,
        "gopher_dup_line_frac": rules.max_dup_line_frac,
        "gopher_dup_line_char_frac": rules.max_dup_line_char_frac,
    }
    limits |= {f"gopher_top_{n}_gram": f for n, f in rules.top_ngram_char_frac}
    limits |= {f"gopher_duplicated_{n}_n_grams": f for n, f in rules.dup_ngram_char_frac}
    return limits


def _repetition_rule(name: str) -> Rule:
    def rule(doc: Document, rules: QualityRules) -> bool:
        limit = repetition_limits(rules)[name]
        return limit is None or _repetition(doc, rules, name) <= limit

    return rule


def _repetition(doc: Document, rules: QualityRules, name: str) -> float:
    if doc.fractions is None:  # one computation per document, shared by the repetition rules
        doc.fractions = repetition_fractions(doc, rules)
    return doc.fractions[name]


def c4_kept_lines(text: str, min_words: int = 3) -> list[str]:
    """Lines C4 keeps: terminal punctuation (not for Thai), 3+ words, no JavaScript or policy."""
    kept = []
    for raw in text.splitlines():
        words = raw.split()
        line = CITATION.sub("", raw.strip())
        thai = THAI_LETTERS.search(line) is not None
        if any(len(word) > 1000 for word in words) or line.endswith("..."):
            continue
        if not thai and not line.endswith(TERMINAL):
            continue
        lowered = line.lower()
        tokens = TOKEN.findall(line)
        if (word_count(tokens) if thai else len(tokens)) < min_words or "javascript" in lowered:
            continue
        if not any(phrase in lowered for phrase in POLICY):
            kept.append(line)
    return kept


def c4_sentences(text: str, min_words: int = 3) -> int:
    """Sentences in the lines C4 keeps (a line with Thai: its space-separated phrases)."""
    return sum(
        len(line.split()) if THAI_LETTERS.search(line) else max(1, len(SENTENCE_END.findall(line)))
        for line in c4_kept_lines(text, min_words)
    )


C4: dict[str, Rule] = {
    "c4_lorem_ipsum": lambda d, r: not (r.c4_lorem_ipsum and "lorem ipsum" in d.text.lower()),
    "c4_curly_bracket": lambda d, r: not (r.c4_curly_bracket and "{" in d.text),
    "c4_too_few_sentences": lambda d, r: _within(
        c4_sentences(d.text, r.c4_min_words_per_line), r.c4_min_sentences, at_most=False
    ),
}
RULES: dict[str, Rule] = (
    GOPHER_QUALITY
    | {name: _repetition_rule(name) for name in repetition_limits(QualityRules())}
    | C4
)

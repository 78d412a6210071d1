"""Gopher and C4 quality rules: hand-checkable documents per rule, counts by first failure,
Chinese/Thai/Vietnamese prose kept and junk removed, and the repetition measures against a
naive implementation written from the paper's definitions."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from databourse.corpus.filters import (
    RULES,
    Document,
    QualityRules,
    c4_kept_lines,
    first_failure,
    quality_filter,
    repetition_fractions,
)

# Six sentences, one a line, 84 words of mean length 4.51 (punctuation kept): passes every rule.
GOOD = "\n".join(
    [
        "The river that runs past the old mill has been with the town for centuries.",
        "Farmers used its water to turn stones and grind wheat into flour for bread.",
        "Later a small factory with brick walls was built to weave cotton cloth.",
        "When the factory closed, the building stood empty and quiet for many years.",
        "Today a group of volunteers have turned it into a museum of local history.",
        "Visitors can see the wheel, the looms and photographs of the families who worked there.",
    ]
)


def reason(text: str, language: str | None = "en", **thresholds: object) -> str | None:
    return first_failure(Document.of(text, language), QualityRules(**thresholds))  # type: ignore[arg-type]


def test_the_good_document_passes_every_rule() -> None:
    assert reason(GOOD) is None


def test_word_count_bounds() -> None:
    words = GOOD.split()
    assert len(words) == 84
    assert reason(GOOD, min_doc_words=85) == "gopher_short_doc"
    assert reason(GOOD, min_doc_words=84) is None
    assert reason(GOOD, max_doc_words=83) == "gopher_long_doc"
    assert reason(GOOD, max_doc_words=84) is None


def test_mean_word_length() -> None:
    assert reason(GOOD, min_mean_word_length=4.52) == "gopher_below_avg_word_length"
    assert reason(GOOD, min_mean_word_length=4.51) is None
    assert reason(GOOD, max_mean_word_length=4.51) == "gopher_above_avg_word_length"
    long_words = " ".join(["internationalization."] * 60)
    assert reason(long_words) == "gopher_above_avg_word_length"


def test_hashes_and_ellipses_per_word() -> None:
    # 84 words and one of hashes: 8 is under 0.1 a word, 9 is over
    assert reason(GOOD + " " + "#" * 8) is None
    assert reason(GOOD + " " + "#" * 9) == "gopher_too_many_hashes"
    assert reason(GOOD + " " + "..." * 9) == "gopher_too_many_ellipsis"


def test_bullet_and_ellipsis_lines() -> None:
    lines = GOOD.splitlines()
    bulleted = "\n".join(["- " + line for line in lines] * 2)  # 12 of 12 lines are bullets
    assert reason(bulleted) == "gopher_too_many_bullets"
    trailing = "\n".join([*lines[:4], *(line[:-1] + "..." for line in lines[4:])])
    # 2 of 6 lines end in an ellipsis: 33% > 30%
    assert reason(trailing) == "gopher_too_many_end_ellipsis"


def test_alphabetic_words() -> None:
    numbers = GOOD + " " + " ".join(str(n) for n in range(1000, 1025))  # 84 of 109 have a letter
    assert reason(numbers) == "gopher_below_alpha_threshold"
    fewer = GOOD + " " + " ".join(str(n) for n in range(1000, 1020))  # 84 of 104
    assert reason(fewer) != "gopher_below_alpha_threshold"


def test_stop_words_apply_to_languages_with_a_list() -> None:
    no_stop = GOOD
    for word in ("the", "The", "that", "with", "to", "and", "of", "have", "be"):
        no_stop = no_stop.replace(f" {word} ", " a ").replace(f"{word} ", "A ")
    assert reason(no_stop, "en") == "gopher_enough_stop_words"
    assert reason(no_stop, "ms") is None  # no Malay list: the rule does not apply
    assert reason(no_stop, None) is None


def test_repeated_lines_and_paragraphs() -> None:
    lines = GOOD.splitlines()
    assert reason("\n\n".join([GOOD, GOOD])) == "gopher_dup_para_frac"  # 1 of 2 paragraphs
    # 2 of 8 lines (25%) is under 30%, but their characters are 24% of the text: over 20%
    assert reason("\n".join([*lines, *lines[:2]])) == "gopher_dup_line_char_frac"
    # 3 of 9 lines (33%) is over 30%
    three = "\n".join([*lines, *lines[:3]])
    assert reason(three, max_dup_line_char_frac=None) == "gopher_dup_line_frac"
    assert repetition_fractions(Document.of("a\na\nb"), QualityRules())["gopher_dup_line_frac"] == (
        pytest.approx(1 / 3)
    )


def test_top_and_duplicated_ngrams() -> None:
    spam = GOOD + "\n" + " ".join(["buy cheap watches now."] * 12)
    assert reason(spam).startswith("gopher_top_")  # type: ignore[union-attr]


def test_c4_rules() -> None:
    assert reason(GOOD + "\nLorem ipsum dolor sit amet.") == "c4_lorem_ipsum"
    assert reason(GOOD + "\nvar x = {a: 1};") == "c4_curly_bracket"
    menu = "\n".join([*GOOD.splitlines()[:4], "Home", "About us", "Contact"])
    assert reason(menu, min_doc_words=10) == "c4_too_few_sentences"  # 4 sentences
    assert c4_kept_lines(
        "Please enable JavaScript to view this page.\nOur privacy policy applies.\nA b c."
    ) == ["A b c."]


def test_batch_counts_first_failure_only() -> None:
    short = "Too short."
    both = "#" * 40  # too short AND too many hashes: counted as short only
    batch = pa.array([GOOD, short, both, None, GOOD + "\nLorem ipsum again here."])
    result = quality_filter(batch, languages=["en"] * 5)
    assert result.keep.tolist() == [True, False, False, False, False]
    assert result.removed_by == {"gopher_short_doc": 3, "c4_lorem_ipsum": 1}
    assert sum(result.removed_by.values()) == (~result.keep).sum()
    assert list(result.removed_by) == [name for name in RULES if name in result.removed_by]


@pytest.mark.parametrize("locale", ["zh_CN", "zh_TW", "th_TH", "vi_VN"])
def test_prose_without_spaces_or_with_syllables_passes(locale: str) -> None:
    faker = Faker(locale)
    faker.seed_instance(5)
    docs = ["\n".join(faker.paragraph(nb_sentences=6) for _ in range(3)) for _ in range(40)]
    result = quality_filter(docs)
    assert result.keep.mean() >= 0.95, result.removed_by


@pytest.mark.parametrize("locale", ["zh_CN", "th_TH", "vi_VN"])
def test_junk_in_those_scripts_is_removed(locale: str) -> None:
    faker = Faker(locale)
    faker.seed_instance(6)
    sentence = faker.sentence(nb_words=12)
    prose = "\n".join(faker.paragraph(nb_sentences=6) for _ in range(3))
    junk = {
        "repeated": "\n".join([sentence] * 12),
        "symbols": " ".join(["$$", "%%", "!!", "##", "123"] * 30),
        "menu": "\n".join(faker.word() for _ in range(60)),
        "spam": prose + "\n" + "\n".join([sentence] * 8),
    }
    reasons = {name: reason(text, None) for name, text in junk.items()}
    assert all(reasons.values()), reasons


def naive_fractions(text: str, tokens: list[str]) -> dict[str, float]:
    """Gopher's repetition measures, written straight from the definitions (Table A1)."""
    import re

    def dup(elements: list[str]) -> tuple[float, float]:
        repeated = [e for i, e in enumerate(elements) if e in elements[:i]]
        return len(repeated) / len(elements), sum(map(len, repeated)) / len(text)

    out: dict[str, float] = {}
    paragraphs = re.split(r"\n{2,}", text.strip())
    out["gopher_dup_para_frac"], out["gopher_dup_para_char_frac"] = dup(paragraphs)
    lines = re.split(r"\n+", text)
    out["gopher_dup_line_frac"], out["gopher_dup_line_char_frac"] = dup(lines)
    for n in (2, 3, 4):
        grams = [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        best = max(grams, key=grams.count) if grams else ""
        count = grams.count(best) if grams else 0
        out[f"gopher_top_{n}_gram"] = len(best) * count / len(text) if count > 1 else 0.0
    for n in range(5, 11):
        i, seen, repeated = 0, [], 0
        while i + n <= len(tokens):
            gram = tokens[i : i + n]
            if gram in seen:
                repeated += sum(map(len, gram))
                i += n
            else:
                seen.append(gram)
                i += 1
        out[f"gopher_duplicated_{n}_n_grams"] = repeated / len(text)
    return out


words = st.sampled_from(["alpha", "beta", "gamma", "delta", "x", "eps", "the", "of", "a."])
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n"])
pieces = st.lists(st.tuples(words, separators), min_size=1, max_size=12)


@st.composite
def repetitive_texts(draw: st.DrawFn) -> str:
    """Runs of words and separators, some repeated several times: n-grams recur."""
    runs = draw(st.lists(st.tuples(pieces, st.integers(1, 4)), min_size=1, max_size=6))
    return "".join(word + sep for run, times in runs for _ in range(times) for word, sep in run)


@settings(max_examples=300, deadline=None)
@given(repetitive_texts())
def test_repetition_measures_match_a_naive_implementation(text: str) -> None:
    text = text.strip() or "x"
    doc = Document.of(text)
    ours = repetition_fractions(doc, QualityRules())
    expected = naive_fractions(text, doc.tokens)
    assert ours == pytest.approx(expected)
    assert Counter(doc.tokens) == Counter(text.split())


def test_has_letter_is_str_isalpha_on_every_character_and_mixtures() -> None:
    """The letter test of the alpha-words rule (a regex first, then `str.isalpha`) answers as
    `any(c.isalpha() ...)` does: every character of the Basic Multilingual Plane alone, and
    random tokens of letters, digits, numerals such as ½ and Ⅻ, marks and symbols."""
    import random

    from databourse.corpus.filters import has_letter

    chars = [chr(i) for i in range(0x10000) if not 0xD800 <= i < 0xE000]
    assert [c for c in chars if has_letter(c) != c.isalpha()] == []
    rng = random.Random(8)
    tricky = "½Ⅻ²³_0٣·—-'\u0301\u0e31abcน中"
    for _ in range(20_000):
        token = "".join(rng.choice(tricky) for _ in range(rng.randint(1, 6)))
        assert has_letter(token) == any(c.isalpha() for c in token), token

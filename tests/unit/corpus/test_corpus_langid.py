"""Language identification of corpus documents: Faker text (written by nobody here) per locale,
the product's language list against py3langid's own `set_languages`, `other`, `mixed`, the
Simplified/Traditional split, and no network at run time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest
from faker import Faker
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from databourse.corpus.langid import (
    LanguageIdentification,
    chinese_script,
    language_counts,
    script_only_characters,
)

PRODUCT = frozenset({"zh", "ms", "id", "en", "th", "vi"})


def faker_texts(locale: str, count: int, *, sentences: bool = False) -> list[str]:
    faker = Faker(locale)
    faker.seed_instance(24)
    if sentences:
        return [faker.sentence(nb_words=12) for _ in range(count)]
    return [faker.paragraph(nb_sentences=5) for _ in range(count)]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en_US", "en"), ("th_TH", "th"), ("vi_VN", "vi"), ("zh_CN", "zh-Hans"), ("zh_TW", "zh-Hant")],
)
@pytest.mark.parametrize("languages", [None, PRODUCT])
def test_faker_paragraphs_get_their_language(
    locale: str, expected: str, languages: frozenset[str] | None
) -> None:
    labels = LanguageIdentification(languages).labels(faker_texts(locale, 60))
    assert sum(label == expected for label in labels) >= 0.95 * len(labels)


def test_a_product_list_gives_py3langid_set_languages_verdict() -> None:
    listed = ["ms", "id", "en", "th", "vi"]
    restricted = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    restricted.set_languages(listed)
    ours = LanguageIdentification(frozenset(listed))
    texts = []
    for locale in ("en_US", "vi_VN", "tl_PH", "de_DE", "fr_FR", "it_IT", "pl_PL"):
        faker = Faker(locale)
        faker.seed_instance(24)
        texts += [" ".join(faker.words(2)) for _ in range(60)]  # short: the list often decides
    labels = ours.labels(texts)
    compared = [
        (label, text) for label, text in zip(labels, texts, strict=True) if label != "other"
    ]
    assert {label for label, _ in compared} <= set(listed)
    assert all(label == restricted.classify(text)[0] for label, text in compared)
    unrestricted = LanguageIdentification().labels([text for _, text in compared])
    decided_by_the_list = sum(u not in listed for u in unrestricted)
    assert decided_by_the_list >= 8


def test_languages_outside_the_list_are_other() -> None:
    ours = LanguageIdentification(PRODUCT)
    for locale in ("de_DE", "ru_RU", "ja_JP", "fr_FR"):
        labels = ours.labels(faker_texts(locale, 20))
        assert labels.count("other") >= 19, (locale, language_counts(labels))


def test_unknown_listed_language_is_refused() -> None:
    with pytest.raises(ValueError, match="no language"):
        LanguageIdentification(frozenset({"en", "xx"}))


def _weights(text: str) -> tuple[int, int]:
    """Letters in Latin script, and in Han (3 each) or Thai script: the documented weights."""
    latin = sum(char.isascii() and char.isalpha() for char in text)
    han = sum("\u4e00" <= char <= "\u9fff" for char in text)
    thai = sum("\u0e01" <= char <= "\u0e2e" or "\u0e30" <= char <= "\u0e45" for char in text)
    return latin, 3 * han + thai


def test_code_switched_documents_are_mixed_and_monolingual_ones_are_not() -> None:
    ours = LanguageIdentification(PRODUCT)
    english = faker_texts("en_US", 60, sentences=True)
    mixed = []
    for locale in ("zh_CN", "th_TH"):
        other = faker_texts(locale, 30, sentences=True)
        for i in range(0, 30, 3):  # English and Chinese (or Thai) sentences in turn
            mixed.append(" ".join(f"{english[j]} {other[j]}" for j in range(i, i + 3)))
    balanced = [doc for doc in mixed if max(_weights(doc)) < 0.55 * sum(_weights(doc))]
    assert len(balanced) >= 10
    assert ours.labels(balanced) == ["mixed"] * len(balanced)
    mono = [" ".join(english[i : i + 8]) for i in range(0, 40, 8)]
    mono += [" ".join(faker_texts("th_TH", 8, sentences=True))]
    assert "mixed" not in ours.labels(mono)


def test_a_clear_majority_is_not_mixed() -> None:
    english = faker_texts("en_US", 12, sentences=True)
    chinese = faker_texts("zh_CN", 1, sentences=True)
    # one Chinese sentence in eleven English ones is far under 40% of the letters' bytes
    assert LanguageIdentification(PRODUCT).label(" ".join([*english[:11], *chinese])) == "en"


def test_chinese_script_is_told_by_characters_of_one_script() -> None:
    simplified, traditional = script_only_characters()
    assert {"们", "国", "这", "说"} <= simplified
    assert {"們", "國", "這", "說"} <= traditional
    assert not simplified & traditional
    assert chinese_script("我们的国家") == "zh-Hans"
    assert chinese_script("我們的國家") == "zh-Hant"
    assert chinese_script("人大中山") == "zh"  # no character differs between the scripts


def test_arrow_batches_nulls_and_counts() -> None:
    batch = pa.array([faker_texts("vi_VN", 1)[0], None, "   ", "12345 !!!"])
    labels = LanguageIdentification().labels(batch)
    assert labels == ["vi", "und", "und", "und"]
    assert language_counts(labels) == {"und": 3, "vi": 1}


def test_the_model_loads_and_runs_with_the_network_blocked() -> None:
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network blocked by the test")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from databourse.corpus.langid import LanguageIdentification
        print(LanguageIdentification().labels(["Ini adalah rumah saya yang baru.", "我們的國家"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "zh-Hant" in done.stdout


def test_the_batched_scores_are_py3langids_own() -> None:
    """`langid_scores` walks a whole batch at once; each row is what py3langid's `rank` gives
    the text alone (its probabilities, aliases folded), on texts nobody here wrote: Faker in
    several scripts, short and long, upper case, empty, digits only, and some long enough to
    be walked one by one after the lockstep."""
    from databourse.corpus.langid import rankings

    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    texts = ["", "1234 5678", "HELLO WORLD THIS IS LOUD", "a"]
    for locale in ("en_US", "th_TH", "vi_VN", "zh_CN", "zh_TW", "id_ID", "ja_JP", "ru_RU"):
        texts += faker_texts(locale, 12, sentences=True) + faker_texts(locale, 6)
    texts += [" ".join(faker_texts("en_US", 40)), " ".join(faker_texts("zh_CN", 30))]
    ours = rankings(texts)
    for text, ranked in zip(texts, ours, strict=True):
        theirs = dict(reference.rank(text))
        assert set(ranked) == set(theirs)
        assert max(ranked, key=ranked.__getitem__) == max(theirs, key=theirs.__getitem__)
        assert all(abs(ranked[k] - theirs[k]) < 1e-4 for k in theirs), text[:40]


def _one_by_one(text: str, languages: frozenset[str] | None, ident: LanguageIdentifier) -> str:
    """The verdict of one text from py3langid's own `rank` of it alone (the oracle of
    `verdicts`): Chinese, Wu, Cantonese (and `ja` on Han without kana) as zh, then the list."""
    from databourse.corpus.langid import HAN, KANA

    ranked = dict(ident.rank(text))
    chinese = sum(ranked.pop(label, 0.0) for label in ("zh", "yue", "wuu"))
    if ranked.get("ja", 0.0) > 0 and HAN.search(text) and not KANA.search(text):
        chinese += ranked.pop("ja")
    ranked["zh"] = chinese
    if languages is not None:
        listed = {lang: p for lang, p in ranked.items() if lang in languages}
        top = max(ranked, key=ranked.__getitem__)
        if top not in listed and ranked[top] > sum(listed.values()):
            return "other"
        ranked = listed
    best = max(ranked, key=ranked.__getitem__)
    return chinese_script(text) if best == "zh" else best


def _runs_char_by_char(sentence: str) -> list[str]:
    """Script runs cut one character at a time (the oracle of the regular expression)."""
    from databourse.corpus.langid import HAN, KANA

    def script(char: str) -> str:
        if HAN.match(char) or KANA.match(char):
            return "han"
        if "\u0e00" <= char <= "\u0e7f":
            return "thai"
        return "latin" if char.isalpha() else ""

    runs, current, start = [], "", 0
    for at, char in enumerate(sentence):
        found = script(char)
        if found and current and found != current:
            runs.append(sentence[start:at])
            start = at
        current = found or current
    runs.append(sentence[start:])
    return runs


@pytest.mark.parametrize("languages", [None, PRODUCT])
def test_the_batched_verdicts_are_those_of_each_text_alone(
    languages: frozenset[str] | None,
) -> None:
    from databourse.corpus.langid import script_runs

    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    texts = ["", "42", "Hello", "我们", "日本語の文章です", "สวัสดีครับ"]
    for locale in ("en_US", "th_TH", "vi_VN", "zh_CN", "zh_TW", "id_ID", "ja_JP", "de_DE"):
        texts += faker_texts(locale, 10, sentences=True) + faker_texts(locale, 4)
        faker = Faker(locale)
        faker.seed_instance(7)
        texts += [" ".join(faker.words(2)) for _ in range(10)]
    texts += [a + " " + b for a, b in zip(texts[10:40], texts[60:90], strict=True)]  # switched
    verdicts = LanguageIdentification(languages).verdicts(texts)
    assert verdicts == [_one_by_one(t, languages, reference) for t in texts]
    for text in texts:
        assert script_runs(text) == _runs_char_by_char(text)

"""Person names in table cells: token structure, checked against name statistics (vectorised).

A value is name-shaped when it is two to five capitalized words (initials and the connectors of
Malay, Indian and European names allowed), after an optional title and academic degree, with no
word of a place, street, organisation or sentence; or a Chinese surname with one or two more
characters; or two Thai words; or a Korean surname in Hangul with one or two more syllables
(김영철, 김 영철). It is strong evidence of a name when a title, a degree or a
patronymic connector (bin, binti, a/l, a/p...) is there, when a known given name comes first and
a known surname last, or when a Chinese, Korean or Vietnamese surname stands with romanized
syllables; Chinese names when every given-name character is a known one; Korean ones when a
given-name syllable is a known one. A column is a name
column when most values are name-shaped and enough of them are strong (`pii_text.column_factor`):
product names, places and phrases are name-shaped but seldom strong.
Word lists: `databourse.pii.name_lists`; the vocabularies below are structure, not names.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.digits import Mask
from databourse.pii.name_lists import WordList, han_names, hangul_names, latin_names


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _alt(words: str) -> str:
    return "|".join(sorted(words.split(), key=len, reverse=True))


# Titles and honorifics written before a name (lower case, without their dot): English, Malay,
# Indonesian, Vietnamese. Those in STRONG_TITLES say that a person is named; the others (Anh, Em
# are also given names) are only removed.
STRONG_TITLES = (
    "mr mrs ms miss mx mdm madam dr prof sir dame rev tuan puan encik cik datuk dato datin "
    "tan&sri puan&sri haji hajah hj hjh drg drs dra ir tgk kh raden r.a r.m r.ay dt "
    "quý&ông quý&cô quý&bà cô bà ông chị bác ngài"
)
WEAK_TITLES = "anh em h r"
_TITLE = r"(?i)^(?:(?:" + _alt(STRONG_TITLES).replace("&", " ").replace(".", r"\.") + r")\.? )+"
_WEAK_TITLE = r"(?i)^(?:" + _alt(WEAK_TITLES) + r")\.? "
# Degrees and generation suffixes after a name: ", S.Kom", ", M.TI.", " PhD", " Jr."
_DEGREE = (
    r"(?:,\s*[A-Za-z]{1,5}(?:\.[A-Za-z]{1,5})*\.?)+$"
    r"|(?i) (?:jr|sr|ii|iii|iv|phd|md|dds|dvm|esq|mba|cpa)\.?$"
)
# A capitalized word (O'Brien, McDonald, Wright-Warner, Siu-ming), a word in capitals, an initial.
_WORD = (
    r"\p{Lu}\p{Ll}*(?:\p{Lu}\p{Ll}+)?(?:['’]\p{Lu}?\p{Ll}+)?(?:-\p{L}\p{Ll}*)*"
    r"|\p{Lu}{2,}(?:['’-]\p{Lu}+)*|\p{Lu}\.(?:\p{Lu}\.)*"
)
PATRONYMIC = "bin binti bte bt binte b. bin. ibni a/l a/p s/o d/o"
PARTICLES = "van von der den de da dos das du del della di la le al el ibn ben abu"
_CONNECTOR = r"(?i:" + _alt(PATRONYMIC).replace(".", r"\.") + r")|" + _alt(PARTICLES)
_TOKEN = rf"^(?:{_WORD}|{_CONNECTOR})$"  # each word of a name, checked one by one (faster)
# Words that make a value a place, street, organisation or phrase rather than a person.
STOP_WORDS = _words(
    "street st avenue ave road rd lane ln drive boulevard blvd way court ct place pl circle "
    "crescent close terrace highway hwy parkway square plaza alley row walk trail path "
    "north south east west new lake port fort mount mt saint san santa los las city town "
    "village county state province district island islands bay beach river valley park "
    "hill hills heights springs falls creek harbor harbour centre center mall tower building "
    "garden gardens estate view point station airport stream streets corner corners dam "
    "vista inlet rapids plains plain estates mountain mountains valley canyon creek crossing "
    "curve expressway freeway junction loop manor meadows mews orchard passage pike plaza "
    "ramp ranch route skyway stravenue summit throughway trafficway tunnel turnpike "
    "underpass viaduct villages ville wharf rise "
    "jalan jln lorong lrg taman tmn bandar kota kampung kampong kg sungai bukit pulau batu "
    "kuala teluk tanjung simpang padang persiaran lebuh blok blk block "
    "inc ltd llc plc co corp corporation company group sons brothers bros partners "
    "associates holdings bank trust university college school academy institute hospital "
    "clinic hotel restaurant cafe bakery shop store market services solutions systems "
    "technologies technology consulting international global industries enterprises sdn "
    "bhd pte pty gmbh limited foundation association society club church ministry "
    "department office agency pt cv ud pd perum persero tbk yayasan koperasi tập công tnhh "
    "kingdom republic democratic federation emirates territories territory united states "
    "burg wall isle ferry lodge mission rest radial harbors rapid forge crest cliff key "
    "the and of for with from than that this these those your our their its not are was "
    "were has have had will would can could should into onto over under about after before "
    "very more most less all any some each every other such only also just "
    # Vietnamese function words (never names; Như, Thế, Từ are, and are not here)
    "và của có là không những các cho với được trong này đó khi thì để đến cũng nhưng vì "
    "nếu rất nhiều nào đi chưa đã sẽ đang tại theo về ra vào lên xuống dưới trên sau trước "
    "giữa cách điều hay hoặc nên mà gì ai đâu nữa lại rồi vẫn đều chỉ mỗi mọi bởi bị phải "
    "muốn biết làm nói đúng doanh nghiệp cổ phần"
)
# One to three romanized East Asian syllables (pinyin, Wade-Giles, Cantonese, Vietnamese without
# accents): Wei, Xiuying, Siu, Tsz, Nguyen.
ONE_SYLLABLE = r"[bcdfghjklmnpqrstvwxyz]{0,3}[aeiouy]{1,3}(?:ng|nh|ch|[nmptkh])?"
SYLLABLE = rf"^(?:(?:{ONE_SYLLABLE}){{1,3}}|ng|m|hm|tsz|sze)$"
THAI_TITLES = "นาย นางสาว นาง เด็กชาย เด็กหญิง ด.ช. ด.ญ. คุณ ดร."
# Thai: given name and family name; family names are long (five letters or more for 98% of
# Faker's, against half of two-word phrases).
_THAI = r"^(?:(?:" + _alt(THAI_TITLES).replace(".", r"\.") + r") ?)?\p{Thai}{2,20} \p{Thai}{5,30}$"
# Place words that are also common surnames (Hill, Lane, West): a place only when the first word
# is no known given name ("Lake Jennifer" is a town, "Jeffrey Hill" a man).
SURNAME_PLACES = _words(
    "hill hills lane west east north south park parks field fields ford brook brooks bridge "
    "bridges dale glen grove groves hall mill mills ridge green greens wood woods way cross "
    "shore shores springs spring banks bay beach lake lakes mount port ports haven forest "
    "fork forks island key keys knoll lodge meadow pines point points river rivers run "
    "square terrace trail view views walk walls well wells"
)
# Malay and Indonesian words that end place names ("Petaling Jaya", "Johor Bahru", "Shah Alam"):
# a place when last and the first word is no known given name (Indah, Jaya are given names too).
PLACE_ENDINGS = WordList(
    sorted(
        _words(
            "jaya alam bahru baru baharu utama indah permai perdana selatan utara timur barat "
            "tengah lama raya setia damai makmur emas"
        )
    )
)
HARD_STOPS = WordList(sorted(STOP_WORDS - SURNAME_PLACES))
SOFT_STOPS = WordList(sorted(SURNAME_PLACES))
PATRONYMICS = WordList(sorted(_words(PATRONYMIC)))
PARTICLE_WORDS = WordList(sorted(_words(PARTICLES)))
THAI_ORGANISATIONS = "^(?:ห้างหุ้นส่วน|บริษัท|ธนาคาร|มหาวิทยาลัย|โรงเรียน|โรงพยาบาล|ร้าน|สำนักงาน)|จำกัด|มหาชน"
# Japanese order and spacing: 渡辺 直樹, 加藤 くみ子 (a Chinese name is written without the space).
JAPANESE = r"^\p{Han}[\p{Han}々]{0,3}[ 　][\p{Han}\p{Hiragana}\p{Katakana}ー々]{1,5}$"
# Korean: a surname syllable, then one or two given-name syllables (a space may follow the
# surname); a last syllable that ends place and organisation names (시 city, 구 district, 역
# station, 점 shop, 회 society...) makes it no name.
HANGUL = r"^\p{Hangul}{2,3}$|^\p{Hangul} \p{Hangul}{1,2}$"
HANGUL_NOT_LAST = "시구군읍면로길역점청회당교산항층관"
MAX_LENGTH = 80
# Prefilter (RE2) of the values worth checking; no {m,n} (over Unicode classes: slow in RE2).
SHAPE = (
    r"^\p{Han}{2,5}$|^\p{Han}[\p{Han}々]*[ 　][\p{L}ー々]+$"
    r"|^\p{L}[\p{L}\p{M}'’@./, -]+[\p{L}\p{M}.]$"
)
# Characters that end place names or common words, never a given name here.
NOT_GIVEN = (
    "区市省县镇乡村路街道号巷弄楼室栋店司厂园院馆部局处科组队色的了是在不上下时末业者开门口"
    "縣區號樓棟廠園館處隊業開門"
)


def _hits(arr: pa.Array, pattern: str) -> Mask:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(False)


def name_evidence(values: pa.Array) -> tuple[Mask, Mask]:
    """For each value (trimmed): (name-shaped, strong evidence of a person's name)."""
    arr = pc.replace_substring_regex(values.cast(pa.large_string()), r"\s+", " ")
    shaped, strong = np.zeros(len(arr), bool), np.zeros(len(arr), bool)
    short = pc.less_equal(pc.utf8_length(arr), MAX_LENGTH).to_numpy(False)
    han = _hits(arr, r"^\p{Han}{2,5}$")
    japanese = _hits(arr, JAPANESE)
    thai = _hits(arr, r"\p{Thai}")
    hangul = _hits(arr, HANGUL)
    latin = ~han & ~japanese & ~thai & ~hangul
    checks = ((han, _han), (japanese, _japanese), (thai, _thai), (hangul, _hangul))
    for mask, check in (*checks, (latin, _latin)):
        rows = np.flatnonzero(mask & short)
        if len(rows):
            shaped[rows], strong[rows] = check(arr.take(pa.array(rows, pa.int64())))
    return shaped, strong


@cache
def _han_patterns() -> tuple[str, str]:
    names = han_names()
    surname = "(?:" + "|".join(sorted(names.compound)) + f"|[{''.join(sorted(names.surnames))}])"
    given = "[" + "".join(sorted(names.given - set(NOT_GIVEN))) + "]"
    return rf"^{surname}[^\s{NOT_GIVEN}]{{1,2}}$", rf"^{surname}{given}{{1,2}}$"


def _han(arr: pa.Array) -> tuple[Mask, Mask]:
    shape, strong = _han_patterns()
    shaped = _hits(arr, shape)
    return shaped, shaped & _hits(arr, strong)


@cache
def _hangul_patterns() -> tuple[str, str]:
    names = hangul_names()
    surname = "[" + "".join(sorted(names.surnames)) + "] ?"
    given = "[" + "".join(sorted(names.given)) + "]"
    shaped = rf"^{surname}\p{{Hangul}}?[^\s{HANGUL_NOT_LAST}]$"
    return shaped, rf"^{surname}(?:{given}\p{{Hangul}}?|\p{{Hangul}}{given})$"


def _hangul(arr: pa.Array) -> tuple[Mask, Mask]:
    """A Korean surname and one or two syllables: strong when a given-name syllable is known."""
    shape, strong = _hangul_patterns()
    shaped = _hits(arr, shape)
    return shaped, shaped & _hits(arr, strong)


def _japanese(arr: pa.Array) -> tuple[Mask, Mask]:
    """Family name, a space, given name: strong when the family name is a known one."""
    family = pc.list_element(pc.split_pattern_regex(arr, r"[ 　]"), 0)
    family = pc.replace_substring_regex(family, r"(\p{Han})々", r"\1\1")  # 佐々木 -> 佐佐木
    return np.ones(len(arr), dtype=bool), _family_names().contains(family)


@cache
def _family_names() -> WordList:
    names = han_names()
    return WordList(sorted(names.japanese | names.surnames | names.compound))


def _thai(arr: pa.Array) -> tuple[Mask, Mask]:
    shaped = _hits(arr, _THAI) & ~_hits(arr, THAI_ORGANISATIONS)
    return shaped, shaped


def _latin(arr: pa.Array) -> tuple[Mask, Mask]:
    degree = _hits(arr, _DEGREE)
    core = pc.replace_substring_regex(arr, _DEGREE, "")
    titled = _hits(core, _TITLE)
    core = pc.replace_substring_regex(core, _TITLE, "")
    core = pc.replace_substring_regex(core, _WEAK_TITLE, "")
    shaped, strong = _cased(core), titled | degree
    rows = np.flatnonzero(shaped)  # the word lists are only asked about cased values
    words = _Words(core.take(pa.array(rows, pa.int64())))
    shaped[rows] = (words.stops == 0) & ((words.count >= 2) | titled[rows]) & (words.tokens <= 6)
    strong[rows] |= words.patronymic | words.given_surname | words.asian
    return shaped, shaped & strong


def _cased(core: pa.Array) -> Mask:
    """Whether every word of each value is a capitalized word, an initial or a connector."""
    tokens = pc.split_pattern(core, " ")
    parents = pc.list_parent_indices(tokens).to_numpy()
    bad = ~_hits(pc.list_flatten(tokens), _TOKEN)
    return (np.bincount(parents[bad], minlength=len(core)) == 0) & _hits(core, r"\S")


class _Words:
    """Per-value counts and flags of the words of a name's core."""

    def __init__(self, core: pa.Array) -> None:
        n = len(core)
        lower = pc.split_pattern(pc.utf8_lower(core), " ")
        parents = pc.list_parent_indices(lower).to_numpy()
        plain = pc.list_flatten(lower)  # as written, lower case: stop words
        folded = _folded(plain)  # and without accents: the name lists
        lengths = pc.list_value_length(lower).to_numpy()
        ends = np.cumsum(lengths)
        position = np.arange(len(plain)) - np.repeat(ends - lengths, lengths)
        inner = (position > 0) & (position < np.repeat(lengths, lengths) - 1)
        patronymic = _in(plain, PATRONYMICS)
        connector = patronymic | (_in(plain, PARTICLE_WORDS) & inner)
        word = ~connector & ~_hits(plain, r"^\p{L}\.")  # initials are neither
        first, last = _ends(parents[word], np.flatnonzero(word), n)
        parts = pc.split_pattern(folded, "-")
        head, tail = pc.list_element(parts, 0), _last(parts)
        lists = latin_names()
        given = _in(head, lists.given)
        surname = _in(tail, lists.surnames)
        asian = _in(head, lists.asian_surnames) | _in(tail, lists.asian_surnames)
        syllabic = _all_parts(parts, SYLLABLE)
        singular = pc.replace_substring_regex(plain, "s$", "")  # Burgs, Ridges, Harbors
        hard = _in(plain, HARD_STOPS) | _in(singular, HARD_STOPS)
        soft = _in(plain, SOFT_STOPS) | _in(singular, SOFT_STOPS)
        has = first >= 0
        first, last = np.maximum(first, 0), np.maximum(last, 0)
        given_first = has & given[first]
        self.count = np.bincount(parents[word], minlength=n)
        self.tokens = lengths
        soft_stops = np.bincount(parents[word & soft], minlength=n)
        self.stops = np.bincount(parents[word & hard], minlength=n)
        self.stops += np.where(given_first & ~soft[first], 0, soft_stops)
        place = _in(plain, PLACE_ENDINGS)[last] & (first != last)  # Shah Alam: weak at best
        self.stops += ~given_first & place
        self.patronymic = np.bincount(parents[patronymic], minlength=n) > 0
        self.given_surname = given_first & surname[last] & (first != last) & ~place
        foreign = np.bincount(parents[word & ~syllabic], minlength=n)
        self.asian = has & (asian[first] | asian[last]) & (foreign == 0) & (self.count <= 4)
        self.asian &= ~place


def _folded(tokens: pa.Array) -> pa.Array:
    """Lower case without accents (Nguyễn -> nguyen, Đặng -> dang)."""
    out = pc.replace_substring(tokens, "đ", "d")
    return pc.replace_substring_regex(pc.utf8_normalize(out, "NFKD"), r"\p{Mn}", "")


def _in(tokens: pa.Array, words: WordList) -> Mask:
    return words.contains(tokens)


def _ends(parents: np.ndarray, index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first and of the last selected token of each value (-1 when none)."""
    first, last = np.full(n, -1), np.full(n, -1)
    first[parents[::-1]] = index[::-1]
    last[parents] = index
    return first, last


def _last(parts: pa.Array) -> pa.Array:
    """The last element of each list (the surname of a hyphenated double name)."""
    ends = np.cumsum(pc.list_value_length(parts).to_numpy()) - 1
    return pc.list_flatten(parts).take(pa.array(np.maximum(ends, 0), pa.int64()))


def _all_parts(parts: pa.Array, pattern: str) -> Mask:
    """Whether every hyphen-separated part of each token matches `pattern`."""
    parents = pc.list_parent_indices(parts).to_numpy()
    bad = ~_hits(pc.list_flatten(parts), pattern)
    return np.bincount(parents[bad], minlength=len(parts)) == 0

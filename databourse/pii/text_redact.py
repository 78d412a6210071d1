"""Personal data inside running text replaced by typed placeholders, and what is left after.

Every category the table scan finds inside text (`pii.scan_batches`: `embedded` identifiers and
the `mentions` of names and addresses) is replaced, in three stages: identifiers (checksums,
phones, emails, IPs) by the rule of `embedded: redact` columns (`redaction.redact_embedded`);
phones and cards written as whole values are written ("(0141) 496 0012", Amex 4-6-5), checked
by the scan's whole-value validators (`number_spans`); names and addresses by the spans of the
patterns `text_mentions` counts them with, with an address's unit, town and postal code
(`name_spans`, `address_spans`). `leftover` re-reads the output with the same detectors.
Counts only: no value ever leaves this module.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from databourse.config import DIRECT_IDENTIFIERS
from databourse.pii.addresses import STREET_AFTER, STREET_BEFORE, THAI_PATTERN, UNIT
from databourse.pii.embedded import TEXT
from databourse.pii.identifiers import ANY_EMBEDDED, run_mask, valid_mask
from databourse.pii.person_names import HARD_STOPS, SOFT_STOPS
from databourse.pii.scan_text import folded
from databourse.pii.text_mentions import (
    CN_AFTER,
    CN_BEFORE,
    STREET_WORDS,
    TEXT_ADDRESS_PATTERNS,
    UNIT_WORDS,
    chinese_name_parts,
    latin_name_tokens,
    mentions,
)
from databourse.pii.text_segments import pieces
from databourse.pii.text_spans import Replace, find_spans, placed, redact_embedded, redact_text

log = logging.getLogger(__name__)

Span = tuple[int, int, str]  # start, end (code points), category
PLACED = tuple(sorted(DIRECT_IDENTIFIERS | {"ADDRESS"}))  # categories a placeholder can name
_EDGE = regex.compile(r"^[\s,;:.()\"“”'‘’]+|[\s,;:()\"“”'‘’]+$")  # trimmed off a found span
# An address goes on after its street: ", Weaverside, NJ 52554", "8樓", " ตำบลบางนา", ", phường
# An Phú"; and may start before it with its unit: "Số 9/44 ", "Apt 5, ".
_THAI_PART = r"(?:ถนน|ถ\.|ซอย|ซ\.|หมู่|ตำบล|ต\.|อำเภอ|อ\.|จังหวัด|จ\.|แขวง|เขต)"
_VI_AREA = r"(?:phường|quận|huyện|xã|thị trấn|thành phố|tỉnh|TP\.|Q\.|P\.)"
_ADDRESS_TAIL = regex.compile(
    r"[\p{Latin}\p{M}\d]+|\p{Thai}{1,20}"  # the rest of the word the pattern stopped in
    r"|[号號楼樓层層室座]|\d+[A-Za-z]?[号號楼樓层層室座]"
    r"|(?:,?[ \t]+|,)(?:\p{Lu}[\p{L}\p{M}'.-]*(?<=-)\d{4,6}|\p{Lu}[\p{L}\p{M}'.-]*|\d[\dA-Za-z/-]*"
    rf"|{_THAI_PART}[\p{{Thai}}.]*(?:\s\d+)?|\p{{Thai}}+(?=(?:\s\p{{Thai}}+){{0,3}}\s\d{{5}})"
    rf"|{_VI_AREA}(?:\s\p{{Lu}}[\p{{L}}\p{{M}}.]*)+"
    r"|[A-Z]{1,2}\d[A-Z\d]?(?: \d[A-Z]{2})?)",
    regex.V1,
)
# Two whole-address forms of `addresses` (military mail, India's house, area, town and PIN),
# as they stand inside text; the scan reads them in a cell only.
WHOLE_IN_TEXT = (
    r"(?:(?:PSC|Unit|USNS|USS|USCGC|USNV)\s[\w ]{1,30},\s(?:Box\s\d+,\s)?)?"
    r"(?:APO|FPO|DPO)\s+A[AEP]\s+\d{5}",
    r"(?:H\.\s?No\.\s?)?\d+[A-Za-z]?(?:/\d+)?,\s\p{Lu}[^,\n]{0,39},\s\p{Lu}[^,\n]{0,29}[ -]\d{6}\b",
)
# Blanked before addresses are looked for: a Thai date's month (ต.ค. reads as ต., a tambon),
# "thành phố" (a city, whose phố reads as a street).
_NOT_ADDRESS = regex.compile(
    r"\d{1,2}\s?(?:ม\.ค|ก\.พ|มี\.ค|เม\.ย|พ\.ค|มิ\.ย|ก\.ค|ส\.ค|ก\.ย|ต\.ค|พ\.ย|ธ\.ค)\.|(?i:thành phố)"
)
_LOWER = regex.compile(r"(?<![\p{L}\p{M}.])[a-z]{2,}(?![\p{L}\p{M}])")
_PARTICLES = "de del da di la le van von of no jl jln gg st and"  # addresses.LOWER_CASE_PARTS
ADDRESS_WORDS = frozenset(" ".join((STREET_AFTER, STREET_BEFORE, UNIT, _PARTICLES)).split())
# Before a Chinese street or area: the rest of its area's name and a postal code ("99074 馬公明"
# 德巷, 河北省), back to a word that introduces it (住在, 地址：).
_HAN = regex.compile(r"\p{Han}")
_HAN_HEAD = regex.compile(
    r"(?:\d{3,6}\s?)?(?:(?![在是于於的到住址为為寄送和与與及])\p{Han}){1,6}$", regex.V1
)
_POSTCODE = regex.compile(r"(?:^|[ ,])(?:\d{4,6}|[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2})$")
_ADDRESS_HEAD = regex.compile(
    r"(?i:h\.\s?no|số|no|apt|unit|blk|block|lot|rm|room|flat|suite|studio|tingkat|lantai)\.?\s*"
    r"(?:#?\d[\dA-Za-z/-]*,?\s+)?$",
    regex.V1,
)
# Numbers written in groups: a plus or a bracket, digits, separators, an extension; and the
# groups of one (a window of them is a candidate), split on spaces.
_NUMBER_RUN = regex.compile(
    r"(?<![A-Za-z0-9+])(?:\+|\(\+?)?\d[\d().-]*(?: ?[\d(][\d().-]*)*"
    r"(?:,? ?(?:x|ext\.?|extension|#) ?\d{1,6})?(?![A-Za-z0-9])"
)
_GROUP = regex.compile(r"[^\s,]+(?:,? ?(?:x|ext\.?|extension|#) ?\d{1,6}(?![\d]))?")
# A phone's area code and extension are part of it, where the scan's in-text pattern took only
# the rest: "(028) <PHONE_NUMBER>", "<PHONE_NUMBER> ext. 904" (RE2; the placeholder or pseudonym
# token, group 1, stays).
AREA_CODE = r"\(\+?\d{1,4}\) ?(" + placed("PHONE_NUMBER") + ")"
EXTENSION = "(" + placed("PHONE_NUMBER") + r"),? ?(?:x|ext\.?|extension|#) ?\d{1,6}\b"
MAX_GROUPS = 6  # groups of one number at most
NUMBER_PREFILTER = r"\d[ .()/-]+\d|\+\d|\(\d|\d{12}"  # RE2: rows number_spans reads
WHOLE_UP_TO = 0  # running text is read by its parts: whole-value reading is for cells
# A Vietnamese name after the lower-case word that addresses its bearer (anh, chị, ông...):
# two to four capitalized syllables (RE2 and `regex`).
VI_NAME = (
    r"(?:^|[\s,.;:!?])(?:anh|chị|em|ông|bà|cô|chú|bác)\s"
    r"(\p{Lu}[\p{Ll}\p{M}]*(?:\s\p{Lu}[\p{Ll}\p{M}]*){1,3})"
)
_VI_NAMES = regex.compile(VI_NAME)
MAX_NAME_WORDS = 4  # a name of more words is cut there
MAX_TAIL = 8  # pieces of a tail at most
_WORD_EDGE = regex.compile(r"^[(\"“'‘]+|[)\"”'’.,;:!?]+$")  # as text_mentions strips a word


@cache
def _addresses() -> tuple[tuple[str, regex.Pattern[str]], ...]:
    """Each address pattern of `text_mentions` as RE2 (a prefilter) and as `regex` (the spans).

    V1: an inline (?i) is scoped to its group, as in RE2. In a cell `.*` runs to the cell's end;
    in running text it would run to the text's end, so it is bounded and lazy here; and a Thai
    address's house number is a number of its own just before its first address word."""
    patterns = (*TEXT_ADDRESS_PATTERNS, *WHOLE_IN_TEXT)
    return tuple((p, regex.compile(_in_text(p), regex.V1)) for p in patterns)


def _in_text(pattern: str) -> str:
    if pattern == THAI_PATTERN:
        pattern = pattern.replace(r"\d.*(?:", r"(?<!\S)\d+(?:/\d+)?\s[^\n\d]{0,12}?(?:", 1)
    return pattern.replace(".*", r"[^\n]{0,40}?")


@cache
def _chinese_names() -> regex.Pattern[str]:
    surname, given = chinese_name_parts()
    name = rf"{surname}{given}{{1,2}}"
    return regex.compile(rf"(?P<n>{name})(?={CN_AFTER})|(?:{CN_BEFORE})(?P<m>{name})", regex.V1)


def _text_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The texts as one plain string array (string or large_string, as given)."""
    array = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise TypeError(f"redaction needs text, not {array.type}")
    return array


def placeholder_counts(texts: pa.Array) -> Counter[str]:
    """How many placeholders (or pseudonym tokens) of each category the texts hold."""
    counts: Counter[str] = Counter()
    texts = texts.filter(pc.fill_null(pc.match_substring_regex(texts, r"<[A-Z]"), False))
    for category in PLACED if len(texts) else ():
        n = pc.sum(pc.count_substring_regex(texts, placed(category))).as_py()
        if n:
            counts[category] = int(n)
    return counts


def name_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """For each text, the spans of the person names the scan's `mentions` finds in it; a name
    goes on over the capitalized words after it (Tan Wei Ming, Nguyễn Văn An)."""
    out: list[list[tuple[int, int]]] = [[] for _ in texts]
    found = latin_name_tokens(pa.array(texts, pa.large_string()))
    if len(found.flat):
        starts, ends = _word_bounds(found.flat, found.parents)
        more = _name_goes_on(found.flat, found.parents)
        titled = set(found.titled.tolist())
        named = [(a, a + 1 if a in titled else a, a + 1) for a in found.pairs.tolist()]
        for first, start, last in named + [(c, c, c + 2) for c in found.triples.tolist()]:
            while last - start + 1 < MAX_NAME_WORDS and more[last]:
                last += 1
            out[found.parents[first]].append((int(starts[start]), int(ends[last])))
    for i, text in enumerate(texts):
        if regex.search(r"\p{Han}", text):
            for m in _chinese_names().finditer(text):
                group = "n" if m.group("n") else "m"
                out[i].append((m.start(group), m.end(group)))
        out[i] += [m.span(1) for m in _VI_NAMES.finditer(text)]
    return out


def _name_goes_on(flat: pa.Array, parents: np.ndarray) -> np.ndarray:
    """For each token, whether the next one (same text, no punctuation between) can continue a
    name: a capitalized word that is no street, place or organisation word."""
    word = pc.utf8_lower(pc.replace_substring_regex(flat, _WORD_EDGE.pattern, ""))
    cased = pc.match_substring_regex(flat, r"^[(\"“'‘]*\p{Lu}\p{Ll}+[)\"”'’.,;:!?]*$")
    ok = cased.to_numpy(False) & ~HARD_STOPS.contains(word) & ~SOFT_STOPS.contains(word)
    ok &= ~STREET_WORDS.contains(word) & ~UNIT_WORDS.contains(word)
    ends = pc.match_substring_regex(flat, r"[.,;:!?)\"”]$").to_numpy(False)
    out = np.zeros(len(flat), dtype=bool)
    out[:-1] = ok[1:] & ~ends[:-1] & (parents[1:] == parents[:-1])
    return out


def _word_bounds(flat: pa.Array, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (code points in its text) of each token's word, its punctuation off."""
    lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
    step = lengths + 1  # tokens are split on one space
    before = np.cumsum(step) - step  # offset of each token from the first text's start
    first = np.flatnonzero(np.r_[True, parents[1:] != parents[:-1]])
    token_start = before - np.repeat(before[first], np.diff(np.r_[first, len(parents)]))
    word = pc.replace_substring_regex(flat, _WORD_EDGE.pattern, "")
    lead = pc.utf8_length(pc.replace_substring_regex(flat, r"^[(\"“'‘]+", "")).to_numpy(False)
    starts = token_start + (lengths - lead)
    return starts, starts + pc.utf8_length(word).to_numpy(zero_copy_only=False)


def address_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """For each text, the spans of the street addresses the scan's `mentions` finds in it, with
    their unit before and their tail (city, state, postal code, floor) after.

    Not read as one: a match with a lower-case English word in it ("12 items from the Main
    Street", "phố Hải Phòng on 1970"), a Thai date (11 ต.ค. 2520), "thành phố" (a city)."""
    out: list[list[tuple[int, int]]] = [[] for _ in texts]
    array = pa.array(texts, pa.large_string())
    masked: dict[int, str] = {}
    for prefilter, pattern in _addresses():
        for i in np.flatnonzero(
            pc.match_substring_regex(array, prefilter).to_numpy(False)
        ).tolist():
            if i not in masked:
                masked[i] = _NOT_ADDRESS.sub(lambda m: " " * len(m.group()), texts[i])
            out[i] += [
                _address_span(texts[i], m.start(), m.end())
                for m in pattern.finditer(masked[i])
                if not any(w.lower() not in ADDRESS_WORDS for w in _LOWER.findall(m.group()))
            ]
    return [[(a, b) for a, b in spans if b > a] for spans in out]


def _address_span(text: str, start: int, end: int) -> tuple[int, int]:
    start, end = _trimmed(text, start, end)
    head = (_HAN_HEAD if _HAN.match(text, start) else _ADDRESS_HEAD).search(
        text, max(0, start - 30), start
    )
    start = head.start() if head else start
    for _ in range(MAX_TAIL):
        tail = _ADDRESS_TAIL.match(text, end)
        if tail is None:
            break
        end = tail.end()
        if _POSTCODE.search(tail.group()):  # the address ends with its postal code
            break
    return start, end


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    lead = _EDGE.match(piece)
    trail = _EDGE.search(piece)
    return start + (lead.end() if lead else 0), end - (len(trail.group()) if trail else 0)


def number_spans(texts: list[str]) -> list[list[Span]]:
    """Phones and cards written as a whole value is (`identifiers.SHAPES`: "0912 345 678",
    "(0141) 496 0012", "+1 623-928-6012 ext. 904", Amex 4-6-5) that the scan's in-text
    patterns do not cut out: every run of a number's groups is tried whole, longest first, with
    the validators of the scan's whole values (a card also as the scan reads a card in text)."""
    windows: list[tuple[int, int, int]] = []  # text, start, end
    for i, text in enumerate(texts):
        for m in _NUMBER_RUN.finditer(text):
            groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, m.start(), m.end())]
            for a in range(len(groups)):
                for b in range(a, min(len(groups), a + MAX_GROUPS)):
                    windows.append((i, groups[a][0], groups[b][1]))
    spans: list[list[Span]] = [[] for _ in texts]
    if not windows:
        return spans
    values = pa.array([texts[i][a:b] for i, a, b in windows], pa.large_string())
    digits = pc.replace_substring_regex(values, r"[^0-9]", "")
    card = valid_mask("CREDIT_CARD", values) & run_mask("CREDIT_CARD", digits)
    phone = valid_mask("PHONE_NUMBER", values) & ~card
    taken: dict[int, list[tuple[int, int]]] = {}
    for k in sorted(np.flatnonzero(card | phone).tolist(), key=lambda k: _longest(windows[k])):
        i, a, b = windows[k]
        if all(b <= x or y <= a for x, y in taken.get(i, [])):
            taken.setdefault(i, []).append((a, b))
            spans[i].append((a, b, "CREDIT_CARD" if card[k] else "PHONE_NUMBER"))
    return [sorted(s) for s in spans]  # redact_text replaces from the last one


def _longest(window: tuple[int, int, int]) -> tuple[int, int]:
    return (window[1] - window[2], window[1])


def _merged(spans: list[Span]) -> list[Span]:
    """Overlapping or space-separated spans joined; the longer part names the category."""
    out: list[Span] = []
    for start, end, category in sorted(spans):
        if out and start <= out[-1][1] + 1:
            a, b, kept = out[-1]
            out[-1] = (a, max(b, end), kept if b - a >= end - start else category)
        else:
            out.append((start, end, category))
    return out


def _mention_spans(texts: list[str], names: np.ndarray, places: np.ndarray) -> list[list[Span]]:
    """Name and address spans of each text (names where `names`, addresses where `places`)."""
    rows = np.flatnonzero(names)
    spans: list[list[Span]] = [[] for _ in texts]
    for i, found in zip(rows.tolist(), name_spans([texts[i] for i in rows]), strict=True):
        spans[i] += [(a, b, "PERSON_NAME") for a, b in found]
    rows = np.flatnonzero(places)
    for i, found in zip(rows.tolist(), address_spans([texts[i] for i in rows]), strict=True):
        spans[i] += [(a, b, "ADDRESS") for a, b in found]
    return [_merged(s) for s in spans]


def mention_spans(texts: list[str]) -> list[list[Span]]:
    """Name and address spans of each text, read line by line and window by window
    (`text_segments`: the detectors were written for cells, not documents)."""
    cut = pieces(texts)
    spans: list[list[Span]] = [[] for _ in texts]
    if not cut:
        return spans
    found = _mentioned(pa.array([part for _, _, part in cut], pa.large_string()))
    names, places = found["PERSON_NAME"], found["ADDRESS"]
    rows = np.flatnonzero(names | places)
    parts = [cut[row][2] for row in rows]
    for row, more in zip(rows, _mention_spans(parts, names[rows], places[rows]), strict=True):
        i, offset, _ = cut[row]
        spans[i] += [(a + offset, b + offset, category) for a, b, category in more]
    return [_merged(s) for s in spans]


def redact_batch(
    texts: pa.Array | pa.ChunkedArray, replace: Replace | None = None
) -> tuple[pa.Array, dict[str, int]]:
    """The texts with every personal datum replaced by `<CATEGORY>`, or by what `replace`
    writes for it (a keyed pseudonym token), nulls kept; and how many of each category were
    replaced."""
    array = _text_array(texts)
    before = placeholder_counts(array)  # written by the provider: not counted
    redacted = redact_embedded(array, whole_up_to=WHOLE_UP_TO, replace=replace)
    redacted = redacted.cast(pa.large_string())
    for part in (EXTENSION, AREA_CODE):
        redacted = pc.replace_substring_regex(redacted, part, r"\1")
    numbers = pc.fill_null(pc.match_substring_regex(redacted, NUMBER_PREFILTER), False)
    redacted = _replaced(redacted, numbers.to_numpy(False), number_spans, replace)
    prose = pc.fill_null(pc.match_substring_regex(redacted, TEXT), False).to_numpy(False)
    redacted = _replaced(redacted, prose, mention_spans, replace)
    counts = placeholder_counts(redacted)
    counts.subtract(before)
    log.debug("redacted %d texts: %s", len(array), dict(counts))
    return redacted.cast(array.type), {c: n for c, n in sorted(counts.items()) if n > 0}


def _replaced(
    values: pa.Array,
    rows: np.ndarray,
    find: Callable[[list[str]], list[list[Span]]],
    replace: Replace | None,
) -> pa.Array:
    """`values`, the spans `find` finds in the rows selected replaced (placeholders/`replace`)."""
    if not rows.any():
        return values
    texts = values.filter(pa.array(rows)).to_pylist()
    changed = [
        redact_text(t, s, replace) if s else t for t, s in zip(texts, find(texts), strict=True)
    ]
    return pc.replace_with_mask(values, pa.array(rows), pa.array(changed, values.type))


def _mentioned(values: pa.Array) -> dict[str, np.ndarray]:
    """Which values mention a name or an address, as the scan reads running text."""
    text = pc.fill_null(pc.match_substring_regex(values, TEXT), False).to_numpy(False)
    out = {c: np.zeros(len(values), dtype=bool) for c in ("PERSON_NAME", "ADDRESS")}
    rows = np.flatnonzero(text)
    if len(rows):
        subset = values.take(pa.array(rows, pa.int64()))
        for category, mask in mentions(subset).items():
            out[category][rows[mask]] = True
        more = pc.match_substring_regex(subset, "|".join(WHOLE_IN_TEXT))
        out["ADDRESS"][rows[more.to_numpy(zero_copy_only=False)]] = True
        more = pc.match_substring_regex(subset, VI_NAME)
        out["PERSON_NAME"][rows[more.to_numpy(zero_copy_only=False)]] = True
    return out


def leftover(texts: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """What the same detectors still find in the texts, per category (spans; where detectors
    overlap, once): identifiers as the scan reads them (`scan_text.folded`), numbers in
    groups, names and addresses."""
    seen = folded(_text_array(texts).drop_null())
    values = seen.to_pylist()
    spans: list[list[Span]] = [[] for _ in values]
    for prefilter, find in ((ANY_EMBEDDED, find_spans), (NUMBER_PREFILTER, number_spans)):
        shaped = pc.fill_null(pc.match_substring_regex(seen, prefilter), False)
        rows = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
        for i, hits in zip(rows.tolist(), find([values[i] for i in rows]), strict=True):
            spans[i] += hits
    prose = pc.fill_null(pc.match_substring_regex(seen, TEXT), False).to_numpy(False)
    rows = np.flatnonzero(prose)
    for i, more in zip(rows.tolist(), mention_spans([values[i] for i in rows]), strict=True):
        spans[i] += more
    return dict(sorted(Counter(c for s in spans for _, _, c in _merged(s)).items()))

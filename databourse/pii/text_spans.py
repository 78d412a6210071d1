"""Identifiers inside free text, found as spans and replaced by typed placeholders.

A product column whose rule says `embedded: redact` keeps its text but not the identifiers in it:
each span the personal-data scan would count (`pii.scan_batches`: digit runs validated as CN
resident ids, cards and phones; separated forms such as dashed MyKad numbers, NRICs, IBANs,
emails, IPs) becomes `<CATEGORY>`, and a value that is wholly an identifier becomes one
placeholder. The same patterns and validators as the scan are used (`databourse.pii.identifiers`),
and the written files are re-scanned afterwards (`productize.verify_written`): whatever this
missed stops the version. Only categories that identify a person (`DIRECT_IDENTIFIERS`) are
replaced; a company's credit code (CN_USCC) is not personal data and stays.

A `Replace` callable (category, the value found) -> text may stand for the placeholder: a corpus
product with `redaction: pseudonym` writes a keyed pseudonym token there (`pseudonym_token`:
`<PERSON_NAME:kqzbtrmhcw>`, ten letters of PSEUDONYM_LETTERS, never a digit, a hex letter or a
vowel, so no detector reads an identifier, a hex token or a word in it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import DIRECT_IDENTIFIERS
from databourse.pii.categories import classify_array
from databourse.pii.embedded import GLUED_ID_LENGTH
from databourse.pii.identifiers import (
    ANY_EMBEDDED,
    HEX_TOKENS,
    MIXED_TOKENS,
    RUN_CATEGORIES,
    SEPARATED,
    run_mask,
    valid_mask,
)
from databourse.pii.scan_text import folded

log = logging.getLogger(__name__)

Span = tuple[int, int, str]  # start, end (code points), category
Hit = tuple[int, int, int, str]  # text index, start, end, category (or the candidate's text)
_HEX = re.compile(HEX_TOKENS)
_MIXED = re.compile(MIXED_TOKENS)
# the pieces pii_embedded._run_hits gets by splitting on RUN_SEPARATORS
_RUN = re.compile(r"[0-9Xx]+")
RUN_LENGTHS = range(10, 20)


Replace = Callable[[str, str], str]  # (category, value found) -> the text written instead
PSEUDONYM_LETTERS = "ghjklmnpqrstvwxz"  # 16: one per hex digit of a digest
PSEUDONYM_LENGTH = 10  # letters of a token: 40 bits of the keyed digest
PSEUDONYM_TOKEN = rf"<([A-Z][A-Z0-9_]*):([{PSEUDONYM_LETTERS}]{{{PSEUDONYM_LENGTH}}})>"  # RE2 too
_TO_LETTERS = str.maketrans("0123456789abcdef", PSEUDONYM_LETTERS)


def placeholder(category: str) -> str:
    """The text that replaces an identifier of `category`."""
    return f"<{category}>"


def placed(category: str) -> str:
    """A pattern (RE2 and `re`) of what replaced an identifier of `category`: its placeholder
    or a pseudonym token."""
    return rf"<{category}(?::[{PSEUDONYM_LETTERS}]{{{PSEUDONYM_LENGTH}}})?>"


def pseudonym_token(category: str, hex_digest: str) -> str:
    """`<CATEGORY:letters>`: the first PSEUDONYM_LENGTH hex digits of a keyed digest, each
    written as a letter of PSEUDONYM_LETTERS."""
    return f"<{category}:{hex_digest[:PSEUDONYM_LENGTH].lower().translate(_TO_LETTERS)}>"


def typed_placeholder(category: str, value: str) -> str:
    """The default `Replace`: the category's placeholder, whatever the value."""
    return placeholder(category)


def _blank(pattern: re.Pattern[str], text: str) -> str:
    """`text` with every match of `pattern` turned into spaces (positions kept)."""
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _validated(category: str, found: list[Hit], *, runs: bool = False) -> list[Hit]:
    """(text index, start, end, category) of the candidates (their text last) valid for it.

    `runs`: the candidates are bare digit runs, checked as the scan checks them (`run_mask`)."""
    if not found:
        return []
    check = run_mask if runs else valid_mask
    ok = check(category, pa.array([c[3] for c in found], pa.large_string()))
    return [(i, a, b, category) for (i, a, b, _), good in zip(found, ok, strict=True) if good]


def _matching(texts: pa.Array, pattern: str) -> np.ndarray:
    """Which texts the RE2 `pattern` matches (a prefilter: only those are read in Python)."""
    return pc.match_substring_regex(texts, pattern).to_numpy(zero_copy_only=False)


def find_spans(texts: list[str]) -> list[list[Span]]:
    """For each text, the spans of the personal identifiers inside it (sorted, not overlapping).

    Each pattern reads only the texts its RE2 prefilter selects, as the scan does."""
    given = pa.array(texts, pa.large_string())
    hexed = _matching(given, HEX_TOKENS)
    hexless = [_blank(_HEX, t) if hit else t for t, hit in zip(texts, hexed, strict=True)]
    mixed = _matching(given, MIXED_TOKENS)  # blanking hex tokens never makes one
    runs: list[Hit] = [
        (i, m.start(), m.end(), m.group())
        for i, t in enumerate(hexless)
        for m in _RUN.finditer(_blank(_MIXED, t) if mixed[i] else t)
        if m.end() - m.start() in RUN_LENGTHS
    ]
    hits: list[Hit] = []
    for category in RUN_CATEGORIES:  # a run counts for the first category it is valid for
        valid = _validated(category, runs, runs=True)
        taken = {(i, a) for i, a, _, _ in valid}
        runs = [r for r in runs if (r[0], r[1]) not in taken]
        hits += valid
    glued: list[Hit] = [  # pii_embedded._glued_ids: CN ids with letters touching them
        (i, m.start(), m.end(), m.group())
        for i, t in enumerate(hexless)
        for m in _RUN.finditer(t)
        if m.end() - m.start() == GLUED_ID_LENGTH
    ]
    hits += _validated("CN_RESIDENT_ID", glued)
    blanked = pa.array(hexless, pa.large_string())
    for category, (prefilter, pattern) in SEPARATED.items():
        found = [(i, m.start(), m.end(), m.group())
                 for i in np.flatnonzero(_matching(blanked, prefilter)).tolist()
                 for m in pattern.finditer(hexless[i])]  # fmt: skip
        hits += _validated(category, found)
    spans: list[list[Span]] = [[] for _ in texts]
    for i, start, end, category in hits:
        if category in DIRECT_IDENTIFIERS:
            spans[i].append((start, end, category))
    return [_merged(s) for s in spans]


def _merged(spans: list[Span]) -> list[Span]:
    """Overlapping spans joined; the joined span takes the category of its longest part."""
    out: list[Span] = []
    for start, end, category in sorted(spans, key=lambda s: (s[0], -s[1])):
        if out and start < out[-1][1]:
            a, b, kept = out[-1]
            longer = category if end - start > b - a else kept
            out[-1] = (a, max(b, end), longer)
        else:
            out.append((start, end, category))
    return out


def redact_text(text: str, spans: list[Span], replace: Replace | None = None) -> str:
    """`text` with each span replaced by its placeholder, or what `replace` writes for it (a
    span overlapping the one before it extends it); one pass, so the time grows with the
    text's length, not length times spans."""
    pieces, at, replace = [], 0, replace or typed_placeholder
    for start, end, category in sorted(spans):
        if start < at:  # overlaps the span just replaced: its placeholder covers it
            at = max(at, end)
            continue
        pieces += [text[at:start], replace(category, text[start:end])]
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def redact_values(
    values: list[str], whole: list[str | None] | None = None, replace: Replace | None = None
) -> tuple[list[str], dict[str, int]]:
    """Each text redacted; and per category, how many of the texts held one.

    `whole` is each text's category as a whole value (`pii_categories.classify_array`), when
    known. A pseudonym token, like a placeholder, holds no digit, '@' or hex letter."""
    if whole is None:
        whole = classify_array(pa.array(values, pa.large_string()))
    out, counts = list(values), dict[str, int]()
    rest = []
    for i, category in enumerate(whole):
        if category in DIRECT_IDENTIFIERS:  # the value is one identifier, nothing around it
            out[i] = (replace or typed_placeholder)(category, values[i])
            counts[category] = counts.get(category, 0) + 1
        else:
            rest.append(i)
    held: dict[int, set[str]] = {}
    while rest:  # a placeholder is a new boundary: "<MY_NRIC>ZJ759382(7)" shows an HK id
        changed = []
        for i, spans in zip(rest, find_spans([out[i] for i in rest]), strict=True):
            if spans:  # each pass removes digits, '@' or ':' for good, so the loop ends
                out[i] = redact_text(out[i], spans, replace)
                held.setdefault(i, set()).update(c for _, _, c in spans)
                changed.append(i)
        rest = changed
    for categories in held.values():
        for category in categories:
            counts[category] = counts.get(category, 0) + 1
    return out, counts


def _redact_disguised(
    texts: list[str | None], counts: dict[str, int], replace: Replace | None = None
) -> None:
    """Values still holding an identifier as the scan reads them (full-width digits, hidden
    characters: `scan_text`) are written back folded, with placeholders; others as they were."""
    current = pa.array(texts, pa.large_string())
    seen = folded(current)
    rows = np.flatnonzero(pc.fill_null(pc.not_equal(seen, current), False).to_numpy(False))
    if not len(rows):
        return
    candidates = seen.take(pa.array(rows, pa.int64()))
    left = find_spans(candidates.to_pylist())
    hit = [i for i, spans in zip(rows.tolist(), left, strict=True) if spans]
    if not hit:
        return
    redacted, more = redact_values([str(seen[i].as_py()) for i in hit], replace=replace)
    for i, text in zip(hit, redacted, strict=True):
        texts[i] = text
    for category, n in more.items():
        counts[category] = counts.get(category, 0) + n


def _whole(values: pa.Array, up_to: int | None) -> list[str | None]:
    """Each value's category as a whole (`pii_categories.classify_array`); None past `up_to`
    characters."""
    if up_to is None:
        return classify_array(values)
    short = np.flatnonzero(pc.less_equal(pc.utf8_length(values), up_to).to_numpy(False))
    whole: list[str | None] = [None] * len(values)
    for i, category in zip(short.tolist(), classify_array(values.take(short)), strict=True):
        whole[i] = category
    return whole


def redact_embedded(
    values: pa.Array | pa.ChunkedArray,
    *,
    whole_up_to: int | None = None,
    replace: Replace | None = None,
) -> pa.Array:
    """A text column with its identifiers replaced by placeholders, or what `replace` writes
    (type and nulls kept).

    Each distinct value is looked at once; only values the scan's prefilter selects, or that
    are wholly an identifier, are redacted in Python. `whole_up_to`: only values of at most
    this many characters are classified as a whole (running text: `text_redact`)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise TypeError(f"embedded: redact needs a text column, not {array.type}")
    encoded = pc.dictionary_encode(array)
    distinct = encoded.dictionary.cast(pa.large_string())
    texts = distinct.to_pylist()
    shaped = pc.match_substring_regex(distinct, ANY_EMBEDDED).to_numpy(zero_copy_only=False)
    whole = _whole(distinct, whole_up_to)
    direct = np.array([c in DIRECT_IDENTIFIERS for c in whole], dtype=bool)
    rows = np.flatnonzero(shaped | direct)
    redacted, counts = redact_values([texts[i] for i in rows], [whole[i] for i in rows], replace)
    for i, text in zip(rows.tolist(), redacted, strict=True):
        texts[i] = text
    _redact_disguised(texts, counts, replace)
    log.debug("redacted identifiers in %d distinct values: %s", len(rows), counts)
    dictionary = pa.array(texts, array.type)
    return pa.DictionaryArray.from_arrays(encoded.indices, dictionary).dictionary_decode()

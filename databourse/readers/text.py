"""Reader text layer: encoding detection, CSV dialect and header detection (streaming: csv_stream).

A text part is sampled once (its first MiB) to choose the encoding, the delimiter and whether the
first row is a header; the whole part is then streamed through `pyarrow.csv.open_csv`, which
transcodes legacy encodings block by block. Positions of errors (byte offset, line, data row) are
computed by rereading the part only once something has failed.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal

import charset_normalizer
import pyarrow as pa
import pyarrow.compute as pc

from databourse.errors import IngestRejected
from databourse.readers.decompress import (
    CappedStream,
    ReadLimits,
    codec_name,
    column_label,
    locate_decode_error,
    reject,
)

Opener = Callable[[], AbstractContextManager[CappedStream]]
DELIMITERS = (",", "\t", ";", "|")
BOMS = (
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
)
DETECTABLE = ["gb18030", "big5"]  # utf-16 is told by its NUL bytes, which these never contain
SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030"}  # providers say GBK and mean GB18030
SNIFF_CHARS, SNIFF_LINES = 1 << 12, 64
SAMPLE_CHARS = 1 << 20  # the sample is one MiB: a header cap beyond it cannot be checked from it
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ReadHints:
    """What the dataset's contract and config say about its files."""

    expected_columns: tuple[str, ...]
    encoding: str | None = None  # declared by the provider; None = detect
    delimiter: str | None = None  # None = detect among , TAB ; |
    header: Literal["auto", "present", "absent"] = "auto"
    sheet: str | None = None  # xlsx sheet, default the first
    allow_hidden_sheets: bool = False  # read a hidden xlsx sheet (refused by default)


@dataclass(frozen=True)
class Plan:
    """How one part (a file, a gzip's content, a zip member) is read, decided from a sample."""

    label: str
    format: str
    columns: list[str]
    batches: Callable[[], Iterator[pa.RecordBatch]] = field(compare=False)
    encoding: str | None = None
    bom: bool = False
    delimiter: str | None = None
    header: bool = True
    raw_offset: int = 0  # where the part starts in the drop (a zip member's header offset)


@dataclass(frozen=True)
class CsvLayout:
    """What the sample said about a CSV part: delimiter, names, rows before the data."""

    delimiter: str
    columns: list[str]
    skip: int  # blank lines and header before the first data row
    header: bool


@dataclass(frozen=True)
class TextEncoding:
    """The codec that decodes a part after its byte-order mark, and the name recorded for it."""

    codec: str
    reported: str
    bom: bytes = b""

    @property
    def may_hold_nul(self) -> bool:
        return self.codec.startswith("utf-16")


def detect_encoding(sample: bytes, at_eof: bool, declared: str | None, label: str) -> TextEncoding:
    """The encoding of a text part: declared, else BOM, UTF-16 by NULs, UTF-8, GB18030 or Big5."""
    if declared:
        return _declared(sample, declared, label)
    for bom, codec, reported in BOMS:
        if sample.startswith(bom):
            return TextEncoding(codec, reported, bom)
    if (nul := sample.find(b"\0")) >= 0:
        if (utf16 := _utf16_by_nuls(sample)) and _decodes(sample, utf16, at_eof):
            return TextEncoding(utf16, utf16)
        raise reject(
            label,
            f"binary content (NUL byte) at byte offset {nul}: not a text file",
            byte_offset=nul,
        )
    if _decodes(sample, "utf-8", at_eof):
        return TextEncoding("utf-8", "utf-8")
    whole = sample
    if not at_eof and (end := sample.rfind(b"\n")) > 0:
        whole = sample[: end + 1]  # no multibyte character cut at the sample's end
    best = charset_normalizer.from_bytes(whole, cp_isolation=DETECTABLE).best()
    if best is None:  # a few short Big5 samples score just over the default 0.2 "chaos"
        best = charset_normalizer.from_bytes(whole, cp_isolation=DETECTABLE, threshold=0.3).best()
    if best is None:
        raise _unrecognised(sample, label)
    name = codecs.lookup(best.encoding).name
    return TextEncoding(name, name)


def _unrecognised(sample: bytes, label: str) -> IngestRejected:
    """Not any detectable encoding: point at the first byte that is not UTF-8."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample)
        offset = len(sample)  # only a character cut at the sample's end: unreachable in practice
    except UnicodeDecodeError as exc:
        offset = exc.start
    line = sample.count(b"\n", 0, offset) + 1
    return reject(
        label,
        f"bytes at byte offset {offset} (line {line}) are not UTF-8, and the text is not"
        " UTF-16, GB18030 or Big5 either; declare the provider's encoding in the dataset config",
        byte_offset=offset,
        line=line,
    )


def _declared(sample: bytes, declared: str, label: str) -> TextEncoding:
    codec = codec_name(declared, label)
    codec = SUPERSETS.get(codec, codec)
    if codec in ("utf-8", "utf-8-sig"):
        bom = codecs.BOM_UTF8 if sample.startswith(codecs.BOM_UTF8) else b""
        return TextEncoding("utf-8", "utf-8-sig" if bom else "utf-8", bom)
    if codec.startswith("utf-16"):
        for bom, name, _ in BOMS[1:]:
            if sample.startswith(bom) and codec in ("utf-16", name):
                return TextEncoding(name, name, bom)
        if codec == "utf-16":
            codec = _utf16_by_nuls(sample) or "utf-16-le"
    return TextEncoding(codec, codec)


def _utf16_by_nuls(sample: bytes) -> str | None:
    """UTF-16 without BOM: ASCII characters put a NUL in every other byte, on one side only."""
    units = len(sample) // 2
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= units * 0.05 and even * 50 <= odd:
        return "utf-16-le"
    if even >= units * 0.05 and odd * 50 <= even:
        return "utf-16-be"
    return None


def _decodes(sample: bytes, codec: str, at_eof: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=at_eof)
    except UnicodeDecodeError:
        return False
    return True


def decode_sample(
    sample: bytes, at_eof: bool, enc: TextEncoding, label: str, opener: Opener
) -> str:
    """The sample as text (a character cut at its end left out)."""
    try:
        return codecs.getincrementaldecoder(enc.codec)().decode(sample[len(enc.bom) :], at_eof)
    except UnicodeDecodeError:
        raise decode_rejection(label, opener, enc) from None


def decode_rejection(label: str, opener: Opener, enc: TextEncoding) -> IngestRejected:
    """The error for undecodable bytes, with their byte offset and line."""
    where = locate_decode_error(opener, enc.codec, label)
    if where is None:
        return reject(label, f"cannot be decoded as {enc.reported}")
    offset, line = where
    return reject(
        label,
        f"bytes at byte offset {offset} (line {line}) are not valid {enc.reported};"
        " declare the provider's encoding in the dataset config if this is not it",
        byte_offset=offset,
        line=line,
    )


def detect_delimiter(text: str, expected: tuple[str, ...]) -> str:
    """The delimiter that splits the first line into the most contract names, else sniffed."""
    first = _LINE_END.split(text.lstrip("\r\n"), maxsplit=1)[0]  # CR-only files too
    names = {c.strip().casefold() for c in expected}

    def hits(delimiter: str) -> tuple[int, int]:
        try:
            fields = next(csv.reader([first], delimiter=delimiter), [])
        except csv.Error:  # e.g. a first "line" longer than the csv module's field limit
            fields = []
        return sum(f.strip().casefold() in names for f in fields), first.count(delimiter)

    best = max(DELIMITERS, key=hits)
    if hits(best)[0]:
        return best
    try:
        return csv.Sniffer().sniff(_sniff_sample(text), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return best


def _sniff_sample(text: str) -> str:
    """The first lines, few and short: the Sniffer's quote regexes are quadratic in their input
    (16 KiB of crafted quotes and newlines took 8 s of CPU)."""
    return "".join(text[:SNIFF_CHARS].splitlines(keepends=True)[:SNIFF_LINES])


def resolve_header(first: list[str], hints: ReadHints, label: str) -> tuple[list[str], bool]:
    """(column names, whether the first row is a header) by the contract's names."""
    expected = list(hints.expected_columns)
    canonical = {c.strip().casefold(): c for c in expected}
    found = [canonical.get(f.strip().casefold(), f.strip()) for f in first]
    matches = sum(f.strip().casefold() in canonical for f in first)
    headerless = hints.header == "absent" or (
        hints.header == "auto" and expected and not matches and len(first) == len(expected)
    )
    if not headerless:
        dupes = sorted(c for c, n in Counter(found).items() if n > 1)  # linear: 100k names
        if dupes:
            column = column_label(found, dupes[0], expected)
            raise reject(label, f"column {column} appears twice in the header", column=column)
        return found, True
    if len(first) != len(expected):
        raise reject(
            label,
            f"headerless file: the first row has {len(first)} fields,"
            f" the contract has {len(expected)} columns",
            row=1,
        )
    return expected, False


def check_header_line(
    label: str, text: str, at_eof: bool, enc: TextEncoding, limits: ReadLimits
) -> None:
    """Refuse a first line over `max_header_bytes`, from the sample, before anything parses it."""
    cap = min(limits.max_header_bytes, SAMPLE_CHARS)
    body = text.lstrip("\r\n")
    end = _LINE_END.search(body, 0, cap + 1)
    first = body[: end.start()] if end else body[: cap + 1]
    if (end is None and (len(body) > cap or not at_eof)) or _size(first, enc) > cap:
        raise reject(
            label,
            f"the header line is longer than the {cap} byte cap (ingest.max_header_bytes);"
            " a header names columns: check the file's line ends and delimiter",
            row=0,  # the header
            line=1 + len(_LINE_END.findall(text[: len(text) - len(body)])),
        )


def _size(text: str, enc: TextEncoding) -> int:
    return len(text.encode(enc.codec, errors="replace"))


def check_no_nul(batch: pa.RecordBatch, label: str, offset: int) -> None:
    """Reject a NUL character in a value: C-string readers and PostgreSQL text cannot hold it."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        hits = pc.match_substring(column, "\x00")
        if hits.true_count:
            row = offset + pc.index(hits, True).as_py() + 1
            raise reject(
                label,
                f"column {column_label(batch.schema.names, name)}, data row {row}:"
                " a NUL character in a value",
                column=column_label(batch.schema.names, name),
                row=row,
            )


def describe(exc: Exception) -> str:
    """An Arrow error without the offending text: Arrow quotes whole rows (personal data)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ":".join(text.split(":")[:2])[:160]

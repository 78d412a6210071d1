"""Reader error path: where in a CSV part a failure is (data row, line), found by rereading it.

Arrow says that something failed, not where, and quotes the row (personal data). These functions
reread the part only after a failure and name the row and line, never a value.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from databourse.errors import IngestRejected
from databourse.readers.decompress import ReadLimits, reject
from databourse.readers.text import CsvLayout, Opener, TextEncoding, decode_rejection, describe


def csv_rejection(
    exc: Exception,
    label: str,
    opener: Opener,
    enc: TextEncoding,
    layout: CsvLayout,
    limits: ReadLimits,
) -> IngestRejected:
    text = str(exc)
    if "invalid UTF8" in text:
        return decode_rejection(label, opener, enc)
    if m := re.search(r"Expected (\d+) columns, got (\d+)", text):
        where = _ragged_row(opener, enc, layout)
        row, line = where or (None, None)
        at = f"data row {row} (line {line})" if where else "a row"
        width = f"the header has {m.group(1)}" if layout.header else f"{m.group(1)} expected"
        return reject(label, f"{at} has {m.group(2)} fields, {width}", row=row, line=line)
    if "straddling" in text:
        return bad_record(label, opener, enc, layout, limits.max_record_bytes) or reject(
            label, "a row is larger than the block size, or a quote is never closed"
        )
    return reject(label, f"cannot be read as CSV: {describe(exc)}")


def bad_record(
    label: str, opener: Opener, enc: TextEncoding, layout: CsvLayout, limit: int | None = None
) -> IngestRejected | None:
    """The first data row over `limit` bytes or whose quote is never closed (error path)."""
    with opener() as stream:
        stream.read(len(enc.bom))
        text = io.TextIOWrapper(
            io.BufferedReader(stream), encoding=enc.codec, errors="replace", newline=""
        )
        row = 0
        for number, (line, size, unclosed) in enumerate(_records(text, layout.delimiter)):
            if number < layout.skip or not (size or unclosed):
                continue
            row += 1
            if unclosed or (limit is not None and size > limit):
                what = (
                    "opens a quote that is never closed"
                    if unclosed
                    else f"is larger than the block size, the {limit} byte cap on one row"
                )
                return reject(
                    label,
                    f"data row {row} (from line {line}) {what}",
                    row=row,
                    line=line,
                )
    return None


def _records(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, int, bool]]:
    """(first line, UTF-8 bytes, quote left open) of each CSV record, lexed as Arrow lexes.

    A quote opens a quoted part only at the start of a field, `""` inside it is a quote, and only
    line ends outside quotes end a record. Error path only: a Python loop over the special chars.
    """
    special = re.compile(f'["\\r\\n{re.escape(delimiter)}]')
    line, first, size, quoted, at_field = 1, 1, 0, False, True
    while chunk := text.read(1 << 20):
        while chunk[-1] in '"\r' and (more := text.read(1)):  # keep "" and CRLF in one chunk
            chunk += more
        begin, skip = 0, -1
        for m in special.finditer(chunk):
            i, char = m.start(), m.group()
            if i == skip or (char == "\r" and chunk.startswith("\n", i + 1)):
                continue
            if char == '"':
                if quoted and chunk.startswith('"', i + 1):
                    skip = i + 1
                else:
                    quoted, at_field = not quoted and at_field, False
            elif char == delimiter:
                at_field = at_field or not quoted
            else:
                line += 1
                if not quoted:
                    end = i - 1 if char == "\n" and i > begin and chunk[i - 1] == "\r" else i
                    yield first, size + len(chunk[begin:end].encode()), False
                    begin, size, first, at_field = i + 1, 0, line, True
        size += len(chunk[begin:].encode())
    if size or quoted:
        yield first, size, quoted


def _ragged_row(opener: Opener, enc: TextEncoding, layout: CsvLayout) -> tuple[int, int] | None:
    """(data row, line) of the first row whose field count is not `width` (error path only)."""
    with opener() as stream:
        stream.read(len(enc.bom))
        text = io.TextIOWrapper(
            io.BufferedReader(stream), encoding=enc.codec, errors="replace", newline=""
        )
        reader = csv.reader(text, delimiter=layout.delimiter)
        row = 0
        try:
            for number, fields in enumerate(reader):
                if number < layout.skip or not fields:
                    continue
                row += 1
                if len(fields) != len(layout.columns):
                    return row, reader.line_num
        except csv.Error:
            return None
    return None

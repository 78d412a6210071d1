"""CSV that a spreadsheet opens without running anything: formula injection neutralized (OWASP).

Excel, LibreOffice and Google Sheets evaluate a cell that starts with `=`, `+`, `-` or `@` as a
formula: `=cmd|' /C calc'!A0` starts a program, `=HYPERLINK(...)` sends the sheet's data away. A
leading TAB or CR hides such a start from naive filters and some spreadsheets trim it, so it counts
too. Every CSV the project writes for people goes through `write_rows`, which puts a single quote
before such a cell unless it is a plain number (`-12.5` stays a number). The quote shows in the
cell: the value stays readable and is never evaluated.

Not routed through here: `databourse_samples.demo` writes the demo's provider drops. Those files
stand in for what providers send (inputs, not reports), every value in them comes from this
project's own generators, and the only formula-like cells are phone numbers such as `+60 12-345
6789`; quoting them would make the sample unlike a real drop and change the demo's content hashes.
tests/attacks/test_hostile_input.py checks that samples never start a cell with `=`, `@`, TAB or CR.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize(value: object) -> str:
    """A cell's text that no spreadsheet evaluates: `'` before a formula-like start, else as is."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def safe_rows(rows: Iterable[Sequence[object]]) -> Iterator[list[str]]:
    """Each row with every cell neutralized."""
    for row in rows:
        yield [neutralize(cell) for cell in row]


def write_rows(
    out: TextIO,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    delimiter: str = ",",
) -> int:
    """Write a header and neutralized rows as RFC 4180 CSV (CRLF); returns the rows written."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([neutralize(name) for name in header])
    count = 0
    for row in safe_rows(rows):
        writer.writerow(row)
        count += 1
    return count


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The neutralized CSV as UTF-8 bytes."""
    buffer = io.StringIO(newline="")
    write_rows(buffer, header, rows)
    return buffer.getvalue().encode("utf-8")

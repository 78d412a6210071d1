"""Reader workbook layer: one visible Excel sheet as Arrow batches of text.

Cells become text the way a person reading the sheet would write them (dates as ISO dates,
integral numbers without ".0"). Only what a person opening the workbook sees is read by default:
a hidden or very hidden sheet is refused unless the dataset config names it and allows hidden
sheets. A formula cell without a cached value (a workbook written by a program that does not
compute formulas) would read as an empty cell, so it is refused, naming the sheet, cell and column.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from databourse.errors import IngestRejected
from databourse.readers.decompress import SAMPLE_BYTES, open_binary, reject
from databourse.readers.text import Plan, ReadHints, resolve_header

BATCH_ROWS = 50_000
_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s/>]")


@dataclass(frozen=True)
class _Sheet:
    """The sheet a plan reads: its title, and where its XML is in the package."""

    title: str
    xml_path: str


def plan_xlsx(label: str, path: Path, hints: ReadHints) -> tuple[Plan, str]:
    """An Excel sheet (the first, or the one named in the hints): its header row, and its title."""
    with _workbook(label, path) as book:
        sheet = _choose_sheet(label, book, hints)
        ws = book[sheet.title]
        ws.reset_dimensions()  # declared dimensions are often wrong; read what is there
        with _openpyxl_calls(label):
            rows = ws.iter_rows(values_only=True)
            first = next((r for r in map(_row_text, rows) if any(c is not None for c in r)), None)
        if first is None:
            raise reject(label, "the sheet is empty", row=0)
        while first and first[-1] is None:
            first.pop()
        columns, header = resolve_header([c or "" for c in first], hints, label)
        with _openpyxl_calls(label):
            _check_formulas(label, book._archive, sheet, columns if header else None)
    read = partial(_xlsx_batches, label, path, sheet.title, columns, header)
    return Plan(label, "xlsx", columns, read, header=header), sheet.title


@contextmanager
def _workbook(label: str, path: Path) -> Iterator[Any]:
    """The workbook opened read-only with cached values, from a file opened without links."""
    import openpyxl

    with open_binary(path, label) as fh:
        with _openpyxl_calls(label):
            book = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        try:
            yield book
        finally:
            book.close()


def _choose_sheet(label: str, book: Any, hints: ReadHints) -> _Sheet:
    """The configured sheet, else the first; refused if hidden and hidden sheets are not allowed."""
    if not book.worksheets:
        raise reject(label, "the workbook has no worksheet")
    if hints.sheet is not None and hints.sheet not in book.sheetnames:
        raise reject(label, f"no sheet {hints.sheet!r}; the workbook has {book.sheetnames}")
    ws = book[hints.sheet] if hints.sheet is not None else book.worksheets[0]
    state = ws.sheet_state
    if state != "visible" and not hints.allow_hidden_sheets:
        shown = [s.title for s in book.worksheets if s.sheet_state == "visible"]
        which = f"sheet {ws.title!r}" if hints.sheet else f"its first sheet {ws.title!r}"
        fix = (
            "set read.allow_hidden_sheets: true" if hints.sheet else "name the sheet in read.sheet"
        )
        raise reject(
            label,
            f"{which} is {'very hidden' if state == 'veryHidden' else state}: a person opening"
            f" the workbook does not see it (visible: {shown}); {fix} in the dataset config"
            " to read it",
            sheet=ws.title,
        )
    return _Sheet(ws.title, ws._worksheet_path)


def _check_formulas(label: str, package: Any, sheet: _Sheet, columns: list[str] | None) -> None:
    """Refuse formula cells that have no cached value (they would be read as empty)."""
    with package.open(sheet.xml_path) as fh:
        if not _mentions_formula(fh):
            return
    first, count = None, 0
    with package.open(sheet.xml_path) as fh:
        for ref in _uncached_formulas(fh):
            count += 1
            first = first or ref
    if first is None:
        return
    letters = re.match(r"[A-Z]*", first).group()  # type: ignore[union-attr]  # always matches
    index = _column_index(letters)
    column = columns[index] if columns is not None and 0 <= index < len(columns) else None
    named = f" (column {column!r})" if column else ""
    raise reject(
        label,
        f"sheet {sheet.title!r}: {count} formula cell(s) without a cached value, the first at"
        f" {first}{named}; they would read as empty: open and save the workbook in Excel"
        " (which stores computed values), or send the values",
        sheet=sheet.title,
        cell=first,
        column=column,
    )


def _mentions_formula(fh: IO[bytes]) -> bool:
    """Whether the sheet XML has a formula element (a byte scan, far cheaper than parsing)."""
    tail = b""
    while block := fh.read(SAMPLE_BYTES):
        if _FORMULA_TAG.search(tail + block):
            return True
        tail = block[-64:]
    return False


def _uncached_formulas(fh: IO[bytes]) -> Iterator[str]:
    """The reference of each formula cell without a cached value, in document order.

    Excel stores a formula's result in `<v>`; a program that cannot compute writes no `<v>` or an
    empty one. Only a text result (`t="str"`) may be empty: the formula returned "".
    """
    rows: ET.Element | None = None
    for event, element in ET.iterparse(fh, events=("start", "end")):
        tag = element.tag.rpartition("}")[2]
        if event == "start":
            rows = element if tag == "sheetData" else rows
        elif tag == "c":
            parts = {child.tag.rpartition("}")[2]: child for child in element}
            value = parts.get("v")
            cached = value is not None and (bool(value.text) or element.get("t") == "str")
            if "f" in parts and not cached:
                yield element.get("r") or "?"
        elif tag == "row" and rows is not None:
            rows.clear()  # memory stays one row


def _column_index(letters: str) -> int:
    """Zero-based index of a column reference's letters (A = 0); -1 when there are none."""
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - ord("A") + 1
    return index - 1


def _xlsx_batches(
    label: str, path: Path, sheet: str, columns: list[str], header: bool
) -> Iterator[pa.RecordBatch]:
    with _workbook(label, path) as book:
        ws = book[sheet]
        ws.reset_dimensions()
        rows = ws.iter_rows(values_only=True)
        texts = (r for r in map(_row_text, rows) if any(c is not None for c in r))
        if header:
            with _openpyxl_calls(label):
                next(texts, None)
        row = 0
        while True:
            with _openpyxl_calls(label):
                chunk = _take(texts, len(columns), label, row)
            if not chunk:
                return
            row += len(chunk)
            yield pa.RecordBatch.from_arrays(
                [pa.array(list(c), pa.string()) for c in zip(*chunk, strict=True)], names=columns
            )


def _take(
    texts: Iterator[list[str | None]], width: int, label: str, done: int
) -> list[list[str | None]]:
    """The next batch of non-blank rows, padded to the header's width."""
    chunk: list[list[str | None]] = []
    for cells in texts:
        if any(c is not None for c in cells[width:]):
            row = done + len(chunk) + 1
            raise reject(label, f"data row {row} has values beyond the header's columns", row=row)
        chunk.append(cells[:width] + [None] * (width - len(cells)))
        if len(chunk) == BATCH_ROWS:
            break
    return chunk


@contextmanager
def _openpyxl_calls(label: str) -> Iterator[None]:
    """openpyxl's warnings silenced (styles, extensions) and its errors, of any type, rejected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except IngestRejected:
            raise
        except Exception as exc:  # anything from KeyError to XML syntax errors
            raise reject(label, f"not a readable xlsx workbook ({type(exc).__name__})") from None


def _row_text(values: Iterable[Any]) -> list[str | None]:
    return [_cell_text(v) for v in values]


def _cell_text(value: Any) -> str | None:
    """A cell as the text the provider sees: ISO dates, numbers without a spurious '.0'."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        shown = float(f"{value:.15g}")  # Excel keeps 15 significant digits
        return str(int(shown)) if shown.is_integer() and abs(shown) < 2**53 else repr(shown)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)

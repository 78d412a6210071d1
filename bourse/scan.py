"""`bourse scan PATH`: classify the columns of a CSV, Parquet or JSONL file by content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from bourse.display import escape_controls, json_text
from databourse.errors import DataBourseError
from databourse.pii.detect import scan_batches
from databourse.pii.dirty_columns import DIRTY_THRESHOLD
from databourse.pii.findings import ColumnFinding

BATCH_ROWS = 64_000
_CSV_BLOCK = 8 << 20


def _csv_stream(path: Path) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
    """All columns read as strings: identifiers with leading zeros must stay as written."""
    with path.open("rb") as fh:
        names = pacsv.open_csv(fh).schema.names
    types = dict.fromkeys(names, pa.large_string())
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
    )
    return iter(reader), reader.schema


def _batches(path: Path) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
    """A stream of record batches and its schema, by file extension."""
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        pfile = pq.ParquetFile(path)
        return pfile.iter_batches(batch_size=BATCH_ROWS), pfile.schema_arrow
    if suffix in {".jsonl", ".ndjson", ".json"}:
        table = pajson.read_json(path)  # pyarrow has no streaming JSON reader
        return iter(table.to_batches(max_chunksize=BATCH_ROWS)), table.schema
    return _csv_stream(path)


def _render(findings: list[ColumnFinding]) -> str:
    """A readable table: column, category, confidence, share, every category's share, embedded
    counts (names escaped); a numeric column is marked `(numbers)`, with how many of its
    numbers were read with leading zeros they had lost (`zero_padded`)."""
    rows = [("column", "category", "confidence", "share", "seen", "embedded")]
    for f in findings:
        embedded = ", ".join(f"{c}={n}" for c, n in sorted(f.embedded.items()))
        seen = ", ".join(f"{c}={s:.2f}" for c, s in f.shares.items())
        for label, count in (("lost_digits", f.lost_digits), ("zero_padded", f.zero_padded)):
            if count:
                seen = f"{seen}, " if seen else ""
                seen += f"{label}={count}"
        numbers = " (numbers)" if f.read_as != "text" else ""
        rows.append(
            (
                escape_controls(f.column) + numbers,
                f.category or "-",
                f"{f.confidence:.2f}",
                f"{f.share:.2f}",
                seen or "-",
                embedded or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def scan_file(
    path: Path,
    as_json: bool,
    threshold: float,
    sample_rows: int,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> tuple[int, str]:
    """Scan one file; return (exit code, text to print). Never prints a cell value."""
    try:
        batches, schema = _batches(path)
        findings = scan_batches(
            batches,
            schema,
            threshold=threshold,
            sample_rows=sample_rows,
            dirty_threshold=dirty_threshold,
        )
    except (OSError, pa.ArrowException, DataBourseError) as exc:
        return 2, f"cannot read {path}: {type(exc).__name__}"
    if not as_json:
        return 0, _render(findings)
    columns = [
        {
            "name": f.column,
            "category": f.category,
            "confidence": round(f.confidence, 4),
            "share": round(f.share, 4),
            "shares": {c: round(v, 4) for c, v in f.shares.items()},
            "read_as": f.read_as,
            "lost_digits": f.lost_digits,
            "zero_padded": f.zero_padded,
            "empty": f.empty,
            "embedded": dict(sorted(f.embedded.items())),
        }
        for f in findings
    ]
    return 0, json_text({"columns": columns})

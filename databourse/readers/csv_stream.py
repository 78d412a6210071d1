"""Reader CSV layer: a text part's plan (delimiter, header, columns) and its streamed batches.

The part is streamed through `pyarrow.csv.open_csv`, which transcodes legacy encodings block by
block; where a failure is (byte offset, line, data row) is found by rereading the part only once
something has failed (`readers.locate`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from functools import partial

import pyarrow as pa
import pyarrow.csv as pacsv

from databourse.readers import locate as errors
from databourse.readers.decompress import ReadLimits, reject
from databourse.readers.text import (
    CsvLayout,
    Opener,
    Plan,
    ReadHints,
    TextEncoding,
    check_no_nul,
    decode_rejection,
    detect_delimiter,
    resolve_header,
)


def plan_csv(
    label: str, opener: Opener, enc: TextEncoding, text: str, hints: ReadHints, limits: ReadLimits
) -> Plan:
    """Delimiter, header and column names of a CSV part from its decoded sample."""
    delimiter = hints.delimiter or detect_delimiter(text, hints.expected_columns)
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise reject(label, f"declared delimiter {delimiter!r} is not a single character")
    leading, first = 0, None
    try:
        for fields in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if fields:
                first = fields
                break
            leading += 1
    except csv.Error:
        raise reject(label, "the first row cannot be parsed as CSV", row=0) from None
    if first is None:
        raise reject(label, "empty file", row=0)
    columns, header = resolve_header(first, hints, label)
    layout = CsvLayout(delimiter, columns, leading + int(header), header)
    read = partial(_csv_batches, label, opener, enc, layout, limits)
    return Plan(label, "csv", columns, read, enc.reported, bool(enc.bom), delimiter, header)


def _csv_batches(
    label: str, opener: Opener, enc: TextEncoding, layout: CsvLayout, limits: ReadLimits
) -> Iterator[pa.RecordBatch]:
    with opener() as stream:
        stream.read(len(enc.bom))
        stream.reject_nul = stream.count_quotes = not enc.may_hold_nul
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    block_size=limits.max_record_bytes,
                    column_names=layout.columns,
                    skip_rows_after_names=layout.skip,
                    encoding="utf8" if enc.codec == "utf-8" else enc.codec,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=layout.delimiter, newlines_in_values=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(layout.columns, pa.string()),
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
            rows = 0
            for batch in reader:
                if enc.may_hold_nul:  # UTF-16 text can encode U+0000; reject it as UTF-8 NULs are
                    check_no_nul(batch, label, rows)
                rows += batch.num_rows
                yield batch
            # Arrow ends a quote left open at the end of the file: the rest became one value.
            if stream.quotes % 2 and (open_quote := errors.bad_record(label, opener, enc, layout)):
                raise open_quote
        except UnicodeDecodeError:
            raise decode_rejection(label, opener, enc) from None
        except (pa.ArrowException, OSError) as exc:
            raise errors.csv_rejection(exc, label, opener, enc, layout, limits) from None

"""Readers: any provider file as a stream of Arrow record batches, in bounded memory.

`open_source` recognises the format by its magic bytes first and its name second: Parquet, xlsx,
gzip (`x.csv.gz`, `x.jsonl.gz`), zip (one or more CSV/JSON Lines/Parquet members, read in name
order), CSV/TSV and JSON Lines in UTF-8, UTF-16, GB18030 or Big5. It yields the columns as found;
typing them against the contract is the caller's job. Every failure is an `IngestRejected` whose
message starts with the file's name (`drop.zip!inner.csv` for a member) and carries no cell value.

    with open_source(path, "drop.csv.gz", ReadHints(("id", "name"))) as reader:
        for batch in reader.batches(): ...
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from databourse.readers.csv_stream import plan_csv
from databourse.readers.decompress import (
    SAMPLE_BYTES,
    ReadLimits,
    Tracker,
    check_file_size,
    column_label,
    open_binary,
    open_gzip,
    open_plain,
    read_sample,
    reject,
    shown,
)
from databourse.readers.jsonl import plan_jsonl
from databourse.readers.parquet import plan_parquet
from databourse.readers.text import (
    Opener,
    Plan,
    ReadHints,
    check_header_line,
    decode_sample,
    detect_encoding,
)
from databourse.readers.xlsx import plan_xlsx
from databourse.readers.zip import Archive, data_members, scan_zip

__all__ = ["ReadHints", "ReadLimits", "SourceInfo", "SourceReader", "open_source"]

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
PARQUET_MAGIC = b"PAR1"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls, and password-protected .xlsx
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class SourceInfo:
    """What was found out about a file's format (recorded in `_ingest.json`)."""

    format: str  # "csv" | "jsonl" | "parquet" | "xlsx"
    compression: str  # "none" | "gzip" | "zip"
    encoding: str | None  # of the (first) text part; None for parquet/xlsx
    bom: bool
    delimiter: str | None
    header: bool
    members: tuple[str, ...] = ()  # archive members read, in order
    member_encodings: tuple[str | None, ...] = ()  # each member's encoding, in the same order
    sheet: str | None = None  # the xlsx sheet read

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists)."""
        data = asdict(self)
        data["members"] = list(self.members)
        data["member_encodings"] = list(self.member_encodings)
        return data


class SourceReader:
    """An opened source: its columns as found and its record batches (read once)."""

    def __init__(self, info: SourceInfo, plans: list[Plan], tracker: Tracker) -> None:
        self.info = info
        self.columns: list[str] = list(plans[0].columns)
        self.rows_read = 0
        self._plans = plans
        self._tracker = tracker
        tracker.start(0)  # forget the streams that planning opened

    @property
    def fraction_read(self) -> float | None:
        """Share of the drop's bytes read so far (None while unknown, e.g. inside a Parquet)."""
        return self._tracker.fraction()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every part's batches in order, members' columns in the first member's order."""
        self.rows_read = 0
        for plan in self._plans:
            self._tracker.start(plan.raw_offset)
            for batch in plan.batches():
                if batch.schema.names != self.columns:
                    batch = batch.select(self.columns)
                self.rows_read += batch.num_rows
                yield batch


@contextmanager
def open_source(
    path: Path, name: str, hints: ReadHints, limits: ReadLimits = ReadLimits()
) -> Iterator[SourceReader]:
    """Open a provider file for streaming; temporary extractions are removed on exit."""
    tracker = Tracker(check_file_size(Path(path), name, limits))
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="databourse-read-")))
        info, plans = _plan(Path(path), name, hints, limits, tmp, tracker, stack)
        yield SourceReader(info, plans, tracker)


def _plan(
    path: Path,
    name: str,
    hints: ReadHints,
    limits: ReadLimits,
    tmp: Path,
    tracker: Tracker,
    stack: ExitStack,
) -> tuple[SourceInfo, list[Plan]]:
    """The plans of a file by its magic bytes; a zip is opened once, until `stack` closes."""
    with open_binary(path, name) as fh:
        magic = fh.read(8)
    suffix = Path(name).suffix.lower()
    if magic.startswith(PARQUET_MAGIC):
        return _info("none", [plan_parquet(name, path, limits, hints.expected_columns)])
    if magic.startswith(GZIP_MAGIC):
        inner = name[: -len(suffix)] if suffix == ".gz" else name
        opener = partial(open_gzip, path, name, limits, tracker)
        return _info("gzip", [_plan_stream(name, inner, opener, hints, limits, None)])
    if magic.startswith(ZIP_MAGICS):
        archive = stack.enter_context(Archive(path, name, limits))
        if "xl/workbook.xml" in archive.names():
            scan_zip(archive)
            plan, sheet = plan_xlsx(name, path, hints)
            info, plans = _info("none", [plan])
            return replace(info, sheet=sheet), plans
        plans = _plan_members(archive, hints, tmp, tracker)
        return _info("zip", plans, tuple(p.label.split("!", 1)[1] for p in plans))
    if magic.startswith(OLE_MAGIC) or suffix == ".xls":
        raise reject(name, "a legacy .xls or password-protected workbook; save it as .xlsx or CSV")
    if suffix in (*PARQUET_SUFFIXES, ".gz", ".zip", ".xlsx"):
        raise reject(name, f"named {suffix} but its content is not (magic bytes missing)")
    opener = partial(open_plain, path, name, limits, tracker)
    return _info("none", [_plan_stream(name, name, opener, hints, limits, None)])


def _plan_stream(
    label: str,
    inner: str,
    opener: Opener,
    hints: ReadHints,
    limits: ReadLimits,
    extract_to: Path | None,
) -> Plan:
    """Plan a decompressed part from its first MiB: Parquet (archives only), JSON Lines or CSV."""
    with opener() as stream:
        sample = read_sample(stream)
    if not sample:
        raise reject(label, "empty file", row=0)
    at_eof = len(sample) < SAMPLE_BYTES
    suffix = Path(inner).suffix.lower()
    if sample.startswith(PARQUET_MAGIC):
        if extract_to is None:
            raise reject(label, "Parquet inside gzip is not supported; send the .parquet file")
        return plan_parquet(label, _extract(opener, extract_to), limits, hints.expected_columns)
    if sample.startswith((GZIP_MAGIC, *ZIP_MAGICS)) or sample[257:262] == b"ustar":
        raise reject(label, "nested archives are not accepted; send the files")
    if suffix in PARQUET_SUFFIXES:
        raise reject(label, f"named {suffix} but its content is not Parquet (magic bytes missing)")
    enc = detect_encoding(sample, at_eof, hints.encoding, label)
    text = decode_sample(sample, at_eof, enc, label, opener)
    head = text.lstrip()
    if not head and at_eof:
        raise reject(label, "empty file (only blank lines)", row=0)
    if suffix in JSONL_SUFFIXES or head.startswith("{"):
        return plan_jsonl(label, opener, enc, hints, limits)
    if head.startswith("["):
        raise reject(label, "a JSON array; send JSON Lines (one object per line)")
    if hints.header != "absent":  # a headerless file's first line is a row: max_row_bytes
        check_header_line(label, text, at_eof, enc, limits)
    return plan_csv(label, opener, enc, text, hints, limits)


def _plan_members(archive: Archive, hints: ReadHints, tmp: Path, tracker: Tracker) -> list[Plan]:
    plans: list[Plan] = []
    before = 0  # output of a member never exceeds its declared size (zipfile cuts it there)
    for info in data_members(archive):
        label = f"{archive.name}!{info.filename}"
        opener = partial(archive.member, info, label, before, tracker)
        plan = _plan_stream(label, info.filename, opener, hints, archive.limits, tmp)
        plan = replace(plan, raw_offset=info.header_offset)
        if plans:
            _check_same(plans[0], plan, hints.expected_columns)
        plans.append(plan)
        before += info.file_size
    return plans


def _check_same(first: Plan, plan: Plan, declared: Sequence[str]) -> None:
    if plan.format != first.format:
        raise reject(
            plan.label,
            f"is {plan.format} but {shown(first.label)} is {first.format}; members must match",
        )
    names = set(plan.columns)
    missing = [column_label(first.columns, c, declared) for c in first.columns if c not in names]
    names = set(first.columns)
    extra = [column_label(plan.columns, c, declared) for c in plan.columns if c not in names]
    if missing or extra:  # places, not names: a header outside the contract is provider data
        raise reject(
            plan.label,
            f"columns differ from those of {shown(first.label)} ({len(missing)} missing:"
            f" {', '.join(missing) or '-'}; {len(extra)} extra: {', '.join(extra) or '-'})",
            column=(missing or extra)[0],
        )


def _extract(opener: Opener, directory: Path) -> Path:
    """A Parquet member copied to a temporary file (Parquet needs to seek), within the caps."""
    target = directory / f"member-{len(list(directory.iterdir()))}.parquet"
    with opener() as stream, target.open("wb") as out:
        shutil.copyfileobj(stream, out, SAMPLE_BYTES)
    return target


def _info(
    compression: str, plans: list[Plan], members: tuple[str, ...] = ()
) -> tuple[SourceInfo, list[Plan]]:
    first = plans[0]
    info = SourceInfo(
        format=first.format,
        compression=compression,
        encoding=first.encoding,
        bom=first.bom,
        delimiter=first.delimiter,
        header=first.header,
        members=members,
        member_encodings=tuple(p.encoding for p in plans) if members else (),
    )
    return info, plans

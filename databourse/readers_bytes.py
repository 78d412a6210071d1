"""Reader byte layer: size caps, gzip and zip streams checked while they decompress.

Every stream a reader parses is a `CappedStream`: it counts the bytes it hands out, and for
compressed input the bytes it consumed, so a zip bomb is stopped by what actually comes out of the
decompressor, never by what an archive header claims. Any failure of the layer below (a truncated
gzip, a bad CRC) becomes an `IngestRejected` named after the file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from databourse.errors import IngestRejected

SAMPLE_BYTES = 1 << 20
RATIO_FLOOR = 1 << 20  # below 1 MiB out, a high ratio is a small file of blanks, not a bomb
ZIP_JUNK = ("__MACOSX/", ".DS_Store")
ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".xlsx", ".xls")
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".parquet", ".pq")
INCOMPLETE = ("unexpected end of data", "incomplete multibyte sequence", "truncated data")


class Readable(Protocol):
    """Anything with a binary `read(size)`: a file, a GzipFile, a zip member."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class ReadLimits:
    """Caps that protect the pipeline from oversized and malicious drops."""

    max_file_bytes: int = 50 << 30  # size cap of the file as dropped
    max_uncompressed_bytes: int = 200 << 30  # after gzip/zip decompression
    max_compression_ratio: float = 200.0  # zip-bomb guard, checked while streaming
    max_record_bytes: int = 2 << 20  # one CSV row (also the Arrow block size) or JSON line


def reject(label: str, message: str, **context: Any) -> IngestRejected:
    """An IngestRejected whose message starts with the file's label, control characters escaped."""
    return IngestRejected(f"{shown(label)}: {_escaped(message)}", file=label, **context)


def shown(name: str) -> str:
    """A name (file, zip member) as a message prints it: quoted with escapes if not printable.

    Names come from the provider: an ANSI escape or a right-to-left override (U+202E) printed raw
    would repaint a terminal, or show `evil<U+202E>txt.csv` as `evilvsc.txt` in a log.
    """
    return name if name.isprintable() else repr(name)


def _escaped(text: str) -> str:
    """Text with each non-printable character as its escape (Arrow messages may quote names)."""
    return (
        text
        if text.isprintable()
        else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    )


class CountingFile(io.RawIOBase):
    """A seekable binary file that counts the bytes read from it (the compressed input)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._fh.read(-1 if size is None else size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


class Tracker:
    """How far the latest opened stream is into the drop's bytes (for progress reports)."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.offset = 0  # where the current part starts in the drop
        self.stream: CappedStream | None = None

    def start(self, offset: int) -> None:
        """A new part begins at `offset` of the drop."""
        self.offset, self.stream = offset, None

    def fraction(self) -> float | None:
        """Share of the drop read, None before anything was."""
        if self.stream is None and not self.offset:
            return None
        done = self.offset + (self.stream.raw_read() if self.stream is not None else 0)
        return min(1.0, done / self.total)


class CappedStream(io.RawIOBase):
    """The logical bytes of one source part, with the caps checked on every read."""

    def __init__(
        self,
        raw: Readable,
        label: str,
        limits: ReadLimits,
        consumed: Callable[[], int] | None = None,
        before: int = 0,
        tracker: Tracker | None = None,
    ) -> None:
        self._raw = raw
        self._label = label
        self._limits = limits
        self._consumed = consumed  # compressed bytes read so far; None when not compressed
        self._before = before  # bytes already produced by earlier archive members
        self.out = 0
        self.reject_nul = False
        self.count_quotes = False  # ASCII-compatible text: an odd count hints at an open quote
        self.quotes = 0
        if tracker is not None:
            tracker.stream = self

    def readable(self) -> bool:
        return True

    def raw_read(self) -> int:
        """Bytes of the drop itself consumed so far (compressed bytes for an archive)."""
        return self._consumed() if self._consumed is not None else self.out

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        try:
            data = self._raw.read(size)
        except EOFError:
            raise reject(self._label, "truncated: the compressed data ends early") from None
        except (OSError, zlib.error, zipfile.BadZipFile) as exc:
            what = "corrupt compressed data" if self._consumed else "read failed"
            raise reject(self._label, f"{what} ({type(exc).__name__})") from None
        self.out += len(data)
        self._check(data)
        if self.count_quotes:
            self.quotes += data.count(b'"')
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _check(self, data: bytes) -> None:
        limits = self._limits
        if self._before + self.out > limits.max_uncompressed_bytes:
            raise reject(
                self._label,
                f"more than {limits.max_uncompressed_bytes} bytes once decompressed",
                byte_offset=limits.max_uncompressed_bytes,
            )
        if self._consumed is not None and self.out > RATIO_FLOOR:
            ratio = self.out / max(self._consumed(), 1)
            if ratio > limits.max_compression_ratio:
                raise reject(
                    self._label,
                    f"compression ratio above {limits.max_compression_ratio:g}"
                    " (a decompression bomb?); stopped reading",
                )
        if self.reject_nul and (at := data.find(b"\0")) >= 0:
            offset = self.out - len(data) + at
            raise reject(
                self._label,
                f"binary content (NUL byte) at byte offset {offset}: not a text file",
                byte_offset=offset,
            )


def read_sample(stream: Readable, size: int = SAMPLE_BYTES) -> bytes:
    """Up to `size` bytes from the start of a stream (fewer only at its end)."""
    parts: list[bytes] = []
    left = size
    while left > 0 and (block := stream.read(left)):
        parts.append(block)
        left -= len(block)
    return b"".join(parts)


def check_file_size(path: Path, label: str, limits: ReadLimits) -> int:
    """The file's size, rejected before any read if empty or over the cap."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise reject(label, f"file of {size} bytes is over the {limits.max_file_bytes} byte cap")
    if size == 0:
        raise reject(label, "empty file", row=0)
    return size


@contextmanager
def open_plain(
    path: Path, label: str, limits: ReadLimits, tracker: Tracker | None = None
) -> Iterator[CappedStream]:
    """An uncompressed file as a capped stream."""
    with path.open("rb") as fh:
        yield CappedStream(fh, label, limits, tracker=tracker)


@contextmanager
def open_gzip(
    path: Path, label: str, limits: ReadLimits, tracker: Tracker | None = None
) -> Iterator[CappedStream]:
    """The decompressed content of a gzip file, capped by size and ratio."""
    with path.open("rb") as fh:
        counted = CountingFile(fh)
        with gzip.GzipFile(fileobj=counted, mode="rb") as inner:
            yield CappedStream(inner, label, limits, lambda: counted.count, tracker=tracker)


@contextmanager
def open_member(
    path: Path,
    member: str,
    label: str,
    limits: ReadLimits,
    before: int = 0,
    tracker: Tracker | None = None,
) -> Iterator[CappedStream]:
    """One zip member's content, capped by size and ratio (counted from the bytes read)."""
    with path.open("rb") as fh:
        counted = CountingFile(fh)
        with zipfile.ZipFile(counted) as archive:
            start = counted.count
            try:
                inner = archive.open(member)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
                raise reject(label, f"member cannot be opened ({exc.__class__.__name__})") from None
            with inner:
                yield CappedStream(
                    inner, label, limits, lambda: counted.count - start, before, tracker
                )


def zip_data_members(path: Path, name: str, limits: ReadLimits) -> list[zipfile.ZipInfo]:
    """The data members of a zip in name order, every member checked for hostile entries."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise reject(name, f"not a readable zip archive ({type(exc).__name__})") from None
    for info in infos:
        _check_member(info, name)
    members = sorted(
        (i for i in infos if not i.is_dir() and not _is_junk(i.filename)), key=lambda i: i.filename
    )
    if not members:
        raise reject(name, "the zip holds no data member")
    if (declared := sum(i.file_size for i in members)) > limits.max_uncompressed_bytes:
        raise reject(
            name, f"members declare {declared} bytes, over the {limits.max_uncompressed_bytes} cap"
        )
    return members


def _check_member(info: zipfile.ZipInfo, name: str) -> None:
    member = info.filename
    label = f"{name}!{member}"
    if (
        "\\" in member
        or "\0" in member
        or member.startswith("/")
        or re.match(r"^[A-Za-z]:", member)
        or ".." in member.split("/")
    ):
        raise reject(
            label, "unsafe member path (absolute, drive, backslash or '..')", member=member
        )
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise reject(label, "symbolic link members are not accepted", member=member)
    if info.flag_bits & 0x1:
        raise reject(label, "encrypted member; send it unencrypted", member=member)
    if info.is_dir() or _is_junk(member):
        return
    suffix = Path(member).suffix.lower()
    if suffix in ARCHIVE_SUFFIXES:
        raise reject(label, "nested archives are not accepted; send the files", member=member)
    if suffix not in DATA_SUFFIXES:
        raise reject(
            label, f"not a data file; expected one of {', '.join(DATA_SUFFIXES)}", member=member
        )


def _is_junk(member: str) -> bool:
    return member.startswith(ZIP_JUNK[0]) or Path(member).name == ZIP_JUNK[1]


def locate_decode_error(
    opener: Callable[[], Any], encoding: str, label: str
) -> tuple[int, int] | None:
    """(byte offset, line) of the first undecodable sequence; rereads the part (error path only)."""
    with opener() as stream:
        base = 0  # offset of `pending` in the stream
        lines = 1
        pending = b""
        while True:
            block = stream.read(SAMPLE_BYTES)
            data = pending + block
            try:
                text = data.decode(encoding)
                pending = b""
            except UnicodeDecodeError as exc:
                if not block or exc.end < len(data) or exc.reason not in INCOMPLETE:
                    return _decode_position(data, exc, encoding, base, lines)
                text = data[: exc.start].decode(encoding)
                pending = data[exc.start :]
            lines += text.count("\n")
            base += len(data) - len(pending)
            if not block:
                return None


def _decode_position(
    data: bytes, exc: UnicodeDecodeError, encoding: str, base: int, lines: int
) -> tuple[int, int]:
    head = data[: exc.start].decode(encoding, errors="replace")
    return base + exc.start, lines + head.count("\n")


def codec_name(encoding: str, label: str) -> str:
    """The canonical Python codec name of a declared encoding."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise reject(label, f"unknown encoding {encoding!r} declared for this dataset") from None


def scan_zip(path: Path, name: str, limits: ReadLimits) -> None:
    """Decompress every member once, discarding it, so the caps hold before a library parses it."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise reject(name, f"not a readable zip archive ({type(exc).__name__})") from None
    before = 0
    for info in infos:
        with open_member(path, info.filename, name, limits, before) as stream:
            while stream.read(SAMPLE_BYTES):
                pass
            before += stream.out

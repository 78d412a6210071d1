"""Reader byte layer: size caps, gzip and zip streams checked while they decompress.

Every stream a reader parses is a `CappedStream`: it counts the bytes it hands out, and for
compressed input the bytes it consumed, so a zip bomb is stopped by what actually comes out of the
decompressor, never by what an archive header claims. Any failure of the layer below (a truncated
gzip, a bad CRC) becomes an `IngestRejected` named after the file.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import io
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from databourse.errors import IngestRejected

SAMPLE_BYTES = 1 << 20
RATIO_FLOOR = 1 << 20  # below 1 MiB out, a high ratio is a small file of blanks, not a bomb
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
    max_archive_members: int = 1000  # entries of one zip (a parse and a plan each)
    max_header_bytes: int = 256 << 10  # the header line of a CSV, at most SAMPLE_BYTES


def reject(label: str, message: str, **context: Any) -> IngestRejected:
    """An IngestRejected whose message starts with the file's label, control characters escaped."""
    return IngestRejected(f"{shown(label)}: {_escaped(message)}", file=label, **context)


def column_label(names: Sequence[str], name: str, declared: Collection[str] = ()) -> str:
    """A found column (or JSON key) as messages name it: its contract name, else its place (`#3`).

    Names outside the contract are the provider's data (a file without a header row puts a
    record there), so their text never reaches a message, log or audit detail.
    """
    return name if name in declared else f"#{list(names).index(name) + 1}"


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


def open_binary(path: Path, label: str) -> IO[bytes]:
    """The file opened for reading without following a symbolic link (O_NOFOLLOW)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        return os.fdopen(os.open(path, flags), "rb")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise reject(label, "is a symbolic link; links are never followed") from None
        raise


_LINKS = "links are never followed: send the file itself"


def regular_file(path: Path, label: str) -> os.stat_result:
    """The status of the file itself (O_NOFOLLOW, fstat): regular, one name, no linked folder."""
    fd, st = open_regular(path, label)
    os.close(fd)
    return st


def open_regular(path: Path, label: str) -> tuple[int, os.stat_result]:
    """The file itself opened read-only (O_NOFOLLOW) and checked on that descriptor (fstat:
    regular, one name; no linked folder on its path): the descriptor, for the caller to close,
    and its status. Whatever takes the path's name later is not what it reads."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise reject(label, "no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise reject(label, f"is a symbolic link; {_LINKS}") from None
        raise reject(label, f"cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise reject(label, "is not a regular file (a folder, device or pipe)")
        if st.st_nlink != 1:
            raise reject(label, f"is a hard link ({st.st_nlink} names for one file); {_LINKS}")
        absolute = os.path.abspath(path)
        if os.path.realpath(absolute) != absolute:
            raise reject(label, f"is reached through a symbolic link to a folder; {_LINKS}")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_file_size(path: Path, label: str, limits: ReadLimits) -> int:
    """The file's size, rejected before any read if a link, empty or over the cap."""
    size = regular_file(path, label).st_size
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
    with open_binary(path, label) as fh:
        yield CappedStream(fh, label, limits, tracker=tracker)


@contextmanager
def open_gzip(
    path: Path, label: str, limits: ReadLimits, tracker: Tracker | None = None
) -> Iterator[CappedStream]:
    """The decompressed content of a gzip file, capped by size and ratio."""
    with open_binary(path, label) as fh:
        counted = CountingFile(fh)
        with gzip.GzipFile(fileobj=counted, mode="rb") as inner:
            yield CappedStream(inner, label, limits, lambda: counted.count, tracker=tracker)


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

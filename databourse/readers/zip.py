"""Reader zip layer: one archive opened once, its members checked, counted and read within caps.

A zip is parsed once (its central directory) for the whole read: member streams share that one
`ZipFile`, so a drop of many small members costs one directory parse, not one per member. Before a
byte of any member is decompressed, the archive must hold at most `max_archive_members` entries,
and the sizes its members declare (which zipfile never lets a member exceed) must fit the
uncompressed cap and the compression ratio: a bomb of many small members is refused as a whole,
not only member by member while streaming.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from databourse.readers.decompress import (
    RATIO_FLOOR,
    SAMPLE_BYTES,
    CappedStream,
    CountingFile,
    ReadLimits,
    Tracker,
    open_binary,
    reject,
)

ZIP_JUNK = ("__MACOSX/", ".DS_Store")
ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".xlsx", ".xls")
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".parquet", ".pq")


class Archive:
    """A zip file opened once; every member is read through the same `ZipFile`."""

    def __init__(self, path: Path, name: str, limits: ReadLimits) -> None:
        self.name = name
        self.limits = limits
        self.size = path.stat().st_size
        self._fh: IO[bytes] = open_binary(path, name)
        self.counted = CountingFile(self._fh)
        try:
            self.zip = zipfile.ZipFile(self.counted)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            self._fh.close()
            raise reject(name, f"not a readable zip archive ({type(exc).__name__})") from None
        self.infos = self.zip.infolist()
        if len(self.infos) > limits.max_archive_members:
            self.close()
            raise reject(
                name,
                f"holds {len(self.infos)} entries, over the cap of {limits.max_archive_members}"
                " members per archive (ingest.max_archive_members); send fewer, larger files",
            )

    def close(self) -> None:
        """Close the archive and its file."""
        self.zip.close()
        self._fh.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def names(self) -> set[str]:
        """The member names."""
        return {i.filename for i in self.infos}

    @contextmanager
    def member(
        self, info: zipfile.ZipInfo, label: str, before: int = 0, tracker: Tracker | None = None
    ) -> Iterator[CappedStream]:
        """One member's content, capped by size and ratio (counted from the bytes read)."""
        start = self.counted.count
        try:
            inner = self.zip.open(info)
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError) as exc:
            raise reject(label, f"member cannot be opened ({exc.__class__.__name__})") from None
        with inner:
            yield CappedStream(
                inner, label, self.limits, lambda: self.counted.count - start, before, tracker
            )


def data_members(archive: Archive) -> list[zipfile.ZipInfo]:
    """The data members of a zip in name order, every entry checked, the declared sizes capped."""
    name = archive.name
    for info in archive.infos:
        _check_member(info, name)
    members = sorted(
        (i for i in archive.infos if not i.is_dir() and not _is_junk(i.filename)),
        key=lambda i: i.filename,
    )
    if not members:
        raise reject(name, "the zip holds no data member")
    check_declared(archive, members)
    return members


def check_declared(archive: Archive, members: list[zipfile.ZipInfo]) -> None:
    """The members' declared sizes (an upper bound of what they produce) within the caps."""
    limits = archive.limits
    declared = sum(i.file_size for i in members)
    if declared > limits.max_uncompressed_bytes:
        raise reject(
            archive.name,
            f"members declare {declared} bytes, over the {limits.max_uncompressed_bytes} cap",
        )
    if declared > RATIO_FLOOR and declared / max(archive.size, 1) > limits.max_compression_ratio:
        raise reject(
            archive.name,
            f"members declare {declared} bytes from {archive.size} bytes of archive, a ratio"
            f" above {limits.max_compression_ratio:g} (a decompression bomb?); nothing was read",
        )


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


def scan_zip(archive: Archive) -> None:
    """Decompress every member once, discarding it, so the caps hold before a library parses it."""
    members = [i for i in archive.infos if not i.is_dir()]
    check_declared(archive, members)
    before = 0
    for info in members:
        with archive.member(info, archive.name, before) as stream:
            while stream.read(SAMPLE_BYTES):
                pass
            before += stream.out

"""A source held for ingest: read once, through one descriptor, into a private copy.

The source is opened once without following a link (O_NOFOLLOW) and checked on that descriptor
(fstat: a regular file with one name); its bytes are hashed as they are copied into a private
folder, and only that copy is then stored in raw/ and parsed. Whatever takes the source's name
afterwards (another file swapped in after discovery, a hard link) is never read, so what is
hashed is what is stored. A file rewritten in place while it is copied (its size or mtime on
the descriptor moves) is refused before anything is stored.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from databourse.readers.decompress import open_regular, reject
from databourse.storage.store import os_errors

BLOCK = 1 << 20


@dataclass(frozen=True)
class HeldSource:
    """The private copy of a source, its sha256 and size, and the source's status when opened."""

    path: Path  # named as the source (readers go by the name's suffix), read-only
    sha256: str
    size: int
    opened: os.stat_result


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is replaced (device, inode) or rewritten (size, mtime)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@contextmanager
def hold(source: Path, name: str) -> Iterator[HeldSource]:
    """The source's bytes in a private copy, removed on exit (IngestRejected: a link, not a
    regular file, or rewritten while copied). `name` is a safe file name (zones.file_name)."""
    fd, opened = open_regular(source, name)
    with tempfile.TemporaryDirectory(prefix="databourse-held-") as tmp:
        copy = Path(os.path.realpath(tmp)) / name  # the readers refuse a path through a link
        digest = hashlib.sha256()
        size = 0
        with (
            os.fdopen(fd, "rb") as fh,
            os_errors(f"cannot hold a working copy of {name}"),
            copy.open("wb") as out,
        ):
            while block := fh.read(BLOCK):
                digest.update(block)
                out.write(block)
                size += len(block)
            after = os.fstat(fh.fileno())
        if identity(after) != identity(opened) or size != opened.st_size:
            raise reject(
                name,
                "changed while it was read (rewritten, or its upload is not complete); "
                "ingest it again once it is complete",
            )
        copy.chmod(0o400)
        yield HeldSource(copy, digest.hexdigest(), size, opened)

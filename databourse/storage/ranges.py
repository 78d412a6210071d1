"""Reading parts of an object, each byte checked against the block hashes of a trusted read.

A build (or a validation) reads the staged Parquet once whole, checking it against the sha256
its ingest recorded in the audit trail, and records the sha256 of each BLOCK-byte block
(`block_digests`, which gives the whole file's in the same read). Its partition passes, which
may run on other machines, then read only the byte ranges their row groups occupy
(`VerifiedObject`: ranged GETs on S3), each block checked against its recorded hash before a
byte of it is used. A block rewritten in the store after the plan is refused (ObjectChanged
naming the object and the block), as a changed whole file is.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from databourse.errors import ObjectChanged
from databourse.storage.store import ObjectStore

BLOCK = 1 << 20  # 1 MiB: a pass reads little beyond its column chunks
MAX_BLOCKS = 4096  # a larger file has larger blocks: the plan (a task result) stays < 300 kB
# Memory, whatever the block size: blocks kept (a column chunk that spans a boundary is not
# fetched twice) and bytes fetched with one GET, each at most these many bytes (or 2 blocks, 1)
CACHE_BYTES = 16 << 20
RUN_BYTES = 64 << 20


def block_size(size: int) -> int:
    """BLOCK, doubled until a file of `size` bytes has at most MAX_BLOCKS blocks."""
    block = BLOCK
    while block * MAX_BLOCKS < size:
        block *= 2
    return block


def block_digests(path: Path, block: int | None = None) -> dict[str, Any]:
    """The block size and the sha256 (hex) of each block of a local file (block_size of its
    size unless `block` is given), and the whole file's sha256 (`whole`), in one read."""
    block = block or block_size(path.stat().st_size)
    digests, whole, size = [], hashlib.sha256(), 0
    with path.open("rb") as fh:
        while data := fh.read(block):
            digests.append(hashlib.sha256(data).hexdigest())
            whole.update(data)
            size += len(data)
    return {"block": block, "sha256": digests, "size": size, "whole": whole.hexdigest()}


class VerifiedObject(io.RawIOBase):
    """A seekable, read-only file over an object: each block read with one ranged GET and
    checked against `blocks` (block_digests of a trusted copy) before it is served."""

    def __init__(self, store: ObjectStore, key: str, blocks: dict[str, Any]) -> None:
        super().__init__()
        self._store, self._key = store, key
        self._block = int(blocks["block"])
        self._digests: Sequence[str] = list(blocks["sha256"])
        self._size = int(blocks["size"])
        self._at = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cached = max(2, CACHE_BYTES // self._block)
        self._run = max(1, RUN_BYTES // self._block)
        self.fetched = 0  # bytes read from the store (what a benchmark or a test measures)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._at + len(view), self._size)
        done = 0
        if end <= self._at:
            return 0
        for index, data in self._blocks(self._at // self._block, (end - 1) // self._block):
            inside = self._at - index * self._block
            take = min(end - self._at, len(data) - inside)
            view[done : done + take] = data[inside : inside + take]
            done += take
            self._at += take
        return done

    def _blocks(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """Blocks first..last, checked, in order: a run of blocks not in memory is fetched
        with one ranged GET (at most RUN_BYTES), then each is checked against its hash."""
        index = first
        while index <= last:
            if index in self._cache:
                self._cache.move_to_end(index)
                yield index, self._cache[index]
                index += 1
                continue
            stop = index
            while stop < last and stop + 1 not in self._cache and stop + 1 - index < self._run:
                stop += 1
            start = index * self._block
            data = self._store.get_range(
                self._key, start, min((stop + 1) * self._block, self._size) - start
            )
            self.fetched += len(data)
            for n in range(index, stop + 1):
                block = data[(n - index) * self._block : (n - index + 1) * self._block]
                yield n, self._checked(n, block)
            index = stop + 1

    def _checked(self, index: int, data: bytes) -> bytes:
        start = index * self._block
        digest = hashlib.sha256(data).hexdigest()
        if index >= len(self._digests) or digest != self._digests[index]:
            uri = self._store.uri(self._key)
            raise ObjectChanged(
                f"{uri}: bytes {start}-{start + len(data)} changed after the plan read the file"
                f" whole: sha256 {digest[:16]}... differs from the block's recorded hash; not"
                " used: investigate, then run it again",
                key=uri,
                block=index,
            )
        self._cache[index] = data
        if len(self._cache) > self._cached:
            self._cache.popitem(last=False)
        return data

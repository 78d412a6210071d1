"""The exchange's file reads, on disk before the bytes go out, until they are audit events.

A fetch is noted (`ReadSpool.note`: one JSON line appended to `current.jsonl` and fsynced)
before its first byte is sent, so a service killed with SIGKILL, or a machine that loses power,
has lost no read the buyer got. Every flush interval the exchange takes the file (`take`: renamed
to `batch-<id>.jsonl` under the lock, so reads go on into a new one), records one `access` event
per grant and query of it, each naming the batch, and then deletes it.

Each service process spools into a folder of its own under `<state_dir>/exchange-reads/`, locked
(flock) while it lives. A folder whose lock is free belongs to a service that died: the next
service to start (or flush) takes it over (`orphans`), records what its batches hold that the
trail does not (an event names its batch and query, so none is recorded twice) and removes it.

A line holds a grant's id, product, version, market and buyer, a query number and a byte count:
what the access event says, never a value of the data. The folders are the service's own (0700).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

CURRENT = "current.jsonl"
LOCK = "lock"
BATCH_GLOB = "batch-*.jsonl"


@dataclass(frozen=True)
class Reads:
    """One grant's reads for one query in a batch: what its `access` event records."""

    batch: str
    grant_id: int
    product: str
    version: str
    market: str
    buyer: str
    query: int
    files: int
    size: int


class ReadSpool:
    """This process's reads noted durably, taken in batches, a batch deleted once audited."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        making = root / f".{name}"  # hidden until locked: no one takes it for a dead one's
        making.mkdir(mode=0o700)
        held = _locked(making)
        if held is None:
            raise RuntimeError(f"{making}: could not lock a folder of its own")
        self._held = held
        self.folder = making.rename(root / name)
        self._lock = threading.Lock()

    def note(self, line: dict[str, Any]) -> None:
        """Append one read and fsync it (before the caller sends a byte)."""
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        with self._lock:
            fd = os.open(self.folder / CURRENT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def take(self) -> Path | None:
        """The reads noted so far, as a batch of their own (None: nothing new)."""
        with self._lock:
            return _as_batch(self.folder)

    def batches(self) -> list[Path]:
        """This process's batches taken and not yet audited."""
        return _batches(self.folder)

    @contextlib.contextmanager
    def orphans(self) -> Iterator[list[Path]]:
        """The batches of dead services' folders (their unflushed reads made batches too),
        locked for the block; a folder whose batches are all gone after it is removed."""
        held: list[tuple[Path, IO[bytes]]] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if folder == self.folder or folder.name.startswith("."):
                continue
            lock = _locked(folder)
            if lock is not None:  # its service is gone
                held.append((folder, lock))
                _as_batch(folder)
        try:
            yield [batch for folder, _ in held for batch in _batches(folder)]
        finally:
            for folder, lock in held:
                if not _batches(folder):  # all audited: nothing of it is left to keep
                    shutil.rmtree(folder, ignore_errors=True)
                lock.close()

    def done(self, batch: Path) -> None:
        """The batch is audited: delete it."""
        batch.unlink(missing_ok=True)
        _fsync_dir(batch.parent)

    def close(self) -> None:
        """Remove this process's folder once nothing is left in it; release its lock."""
        if not any(self.folder.glob(BATCH_GLOB)) and not (self.folder / CURRENT).exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        self._held.close()


def batch_id(batch: Path) -> str:
    return batch.stem.removeprefix("batch-")


def summed(batch: Path) -> list[Reads]:
    """A batch's reads summed per grant and query (a line cut short by a crash is skipped:
    only the last line can be, and its fetch never sent a byte)."""
    sums: dict[tuple[int, int], Reads] = {}
    for raw in batch.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
            key = (int(line["grant_id"]), int(line["query"]))
            size = int(line["size"])
            names = {k: str(line[k]) for k in ("product", "version", "market", "buyer")}
        except (ValueError, KeyError, TypeError):
            continue
        seen = sums.get(key)
        sums[key] = (
            Reads(batch_id(batch), key[0], **names, query=key[1], files=1, size=size)
            if seen is None
            else replace(seen, files=seen.files + 1, size=seen.size + size)
        )
    return list(sums.values())


def _as_batch(folder: Path) -> Path | None:
    current = folder / CURRENT
    if not current.exists() or current.stat().st_size == 0:
        return None
    batch = folder / f"batch-{uuid.uuid4().hex}.jsonl"
    current.rename(batch)
    _fsync_dir(folder)
    return batch


def _batches(folder: Path) -> list[Path]:
    return sorted(folder.glob(BATCH_GLOB), key=lambda p: p.stat().st_mtime_ns)


def _locked(folder: Path) -> IO[bytes] | None:
    """The folder's lock file, held exclusively (None: a live service holds it)."""
    handle = (folder / LOCK).open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

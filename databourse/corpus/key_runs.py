"""The dedup index's storage on disk: sorted runs of keys, arrays and bytes that grow in files.

Memory stays flat in the corpus size: what grows with the documents lives in files of a work
folder, memory-mapped, so its pages belong to the kernel's cache (kept or dropped as memory
allows), not to the process's heap.
- `KeyRuns` maps each 64-bit key to the first document that had it. New keys gather in memory
  up to FLUSH_KEYS, then go to disk as one sorted run (two `.npy` files: keys, documents). Runs
  of like sizes are merged (size-tiered: the newest run is merged into the one before it while it
  is at least half its size), streamed CHUNK entries at a time: an entry's place in the merged
  run is its place in its own run plus its rank in the other. So about log2(keys / FLUSH_KEYS)
  runs stay, and a lookup binary-searches each (the queries sorted first, so NumPy's search
  walks each run once). Keys are never stored twice: a key already in a run is not new.
- `GrowingArray`: int64 values in a file, memory-mapped, its capacity doubled when full.
- `GrowingBytes`: byte strings appended to a file, found by their offsets (a `GrowingArray`).
- `copy_member`: an array of an `.npz` file copied into a work file, in chunks, never whole.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

FLUSH_KEYS = 1 << 18  # keys held in memory before they go to disk as a run (4 MiB with docs)
CHUNK = 1 << 20  # entries moved at once by a merge or a copy
U64 = np.uint64
I64 = np.int64


class GrowingArray:
    """int64 values in a file, memory-mapped; `append` doubles the file when it is full."""

    def __init__(self, path: Path, capacity: int = 1 << 16) -> None:
        self.path = path
        self.length = 0
        path.touch()
        self._map(capacity)

    def _map(self, capacity: int) -> None:
        with self.path.open("r+b") as handle:
            handle.truncate(capacity * 8)
        self.array = np.memmap(self.path, dtype=I64, mode="r+", shape=(capacity,))

    def append(self, values: np.ndarray) -> None:
        """Add values at the end."""
        need = self.length + len(values)
        if need > len(self.array):
            self.array.flush()
            self._map(max(need, 2 * len(self.array)))
        self.array[self.length : need] = values
        self.length = need

    @property
    def values(self) -> np.ndarray:
        """The values appended so far (a view of the file: writes go to it)."""
        return self.array[: self.length]


class GrowingBytes:
    """Byte strings appended to a file; the i-th read back by its offsets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("w+b")
        self.offsets = GrowingArray(path.with_suffix(".offsets"))
        self.offsets.append(np.zeros(1, dtype=I64))

    def __len__(self) -> int:
        return self.offsets.length - 1

    def extend(self, items: list[bytes]) -> None:
        """Append byte strings, in order."""
        ends = int(self.offsets.values[-1]) + np.cumsum([len(item) for item in items], dtype=I64)
        self.handle.write(b"".join(items))
        self.handle.flush()
        self.offsets.append(ends)

    def extend_raw(self, data: np.ndarray, offsets: np.ndarray) -> None:
        """Append strings given as their bytes and offsets (`data`, `offsets` as `data()` and
        `offsets.values` of another), in chunks; ValueError if the offsets do not fit the bytes."""
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data):
            raise ValueError("the offsets do not span the bytes")
        end = int(self.offsets.values[-1])
        for low in range(0, len(data), CHUNK):
            self.handle.write(np.asarray(data[low : low + CHUNK]).tobytes())
        self.handle.flush()
        for low in range(1, len(offsets), CHUNK):
            part = np.asarray(offsets[low : low + CHUNK], dtype=I64)
            if (np.diff(part, prepend=offsets[low - 1]) < 0).any():
                raise ValueError(f"offsets decrease near entry {low}")
            self.offsets.append(end + part)

    def __getitem__(self, i: int) -> bytes:
        start, end = (int(x) for x in self.offsets.array[i : i + 2])
        return os.pread(self.handle.fileno(), end - start, start)

    def data(self) -> np.ndarray:
        """Every byte appended (memory-mapped)."""
        size = int(self.offsets.values[-1])
        if size == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r", shape=(size,))

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


class KeyRuns:
    """Key -> first document, in sorted runs on disk and a few small runs in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.disk: list[tuple[np.ndarray, np.ndarray]] = []  # older first
        self.memory: list[tuple[np.ndarray, np.ndarray]] = []
        self._names = 0

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self.disk + self.memory)

    def runs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every run, older first (after `flush`, all on disk)."""
        return self.disk + self.memory

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The document stored with each key, or -1 (any shape)."""
        flat = keys.ravel()
        order = np.argsort(flat, kind="stable")
        query = flat[order]
        found = np.full(len(flat), -1, dtype=I64)
        for run_keys, run_docs in self.disk + self.memory:
            at = np.minimum(np.searchsorted(run_keys, query), len(run_keys) - 1)
            hit = np.asarray(run_keys[at]) == query
            found[hit] = run_docs[at[hit]]
        out = np.empty_like(found)
        out[order] = found
        return out.reshape(keys.shape)

    def add(self, keys: np.ndarray, docs: np.ndarray) -> None:
        """Store new keys (none stored before, none twice) with their documents."""
        if len(keys) == 0:  # an empty run would break `lookup`
            return
        order = np.argsort(keys)
        self.memory.append((keys[order], docs[order]))
        if sum(len(k) for k, _ in self.memory) >= FLUSH_KEYS:
            self.flush()

    def flush(self) -> None:
        """Write the runs held in memory to disk as one run; merge runs of like sizes."""
        if not self.memory:
            return
        keys = np.concatenate([k for k, _ in self.memory])
        docs = np.concatenate([d for _, d in self.memory])
        order = np.argsort(keys)
        self.memory = []
        self.disk.append(self._write(keys[order], docs[order]))
        while len(self.disk) > 1 and 2 * len(self.disk[-1][0]) >= len(self.disk[-2][0]):
            newer, older = self.disk.pop(), self.disk.pop()
            self.disk.append(self._merge(older, newer))
            self._drop(older)
            self._drop(newer)

    def adopt(self, keys: np.ndarray, docs: np.ndarray) -> None:
        """Take a sorted run already on disk (memory-mapped) as the oldest."""
        if len(keys):
            self.disk.insert(0, (keys, docs))

    def new_file(self, stem: str) -> Path:
        """A fresh path in the work folder."""
        self._names += 1
        return self.folder / f"{stem}-{self._names:06d}.npy"

    def _write(self, keys: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out_keys, out_docs = self._open(len(keys))
        out_keys[:] = keys
        out_docs[:] = docs
        return out_keys, out_docs

    def _open(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        keys = npy.open_memmap(self.new_file("keys"), mode="w+", dtype=U64, shape=(size,))
        docs = npy.open_memmap(self.new_file("docs"), mode="w+", dtype=I64, shape=(size,))
        return keys, docs

    def _merge(
        self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        out_keys, out_docs = self._open(len(a[0]) + len(b[0]))
        for (keys, docs), (other, _) in ((a, b), (b, a)):
            for low in range(0, len(keys), CHUNK):
                part = np.asarray(keys[low : low + CHUNK])
                at = np.arange(low, low + len(part)) + np.searchsorted(other, part)
                out_keys[at] = part
                out_docs[at] = docs[low : low + CHUNK]
        return out_keys, out_docs

    def _drop(self, run: tuple[np.ndarray, np.ndarray]) -> None:
        for array in run:  # only the work folder's own files: an adopted run is a copy too
            name = getattr(array, "filename", None)
            if name is not None and Path(name).parent == self.folder:
                Path(name).unlink(missing_ok=True)


def copy_member(source: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """Copy the array `name` of an open `.npz` to the `.npy` file `path`, chunk by chunk; mapped."""
    with source.open(f"{name}.npy") as member:
        version = npy.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(member)
        else:
            shape, fortran, dtype = npy.read_array_header_2_0(member)
        if dtype.hasobject or fortran or len(shape) != 1:
            raise ValueError(f"{name}: not a flat array of plain values")
        out = npy.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        step = CHUNK * dtype.itemsize
        for low in range(0, shape[0], CHUNK):
            data = member.read(min(step, (shape[0] - low) * dtype.itemsize))
            block = np.frombuffer(data, dtype=dtype)
            out[low : low + len(block)] = block
            if len(block) < min(CHUNK, shape[0] - low):
                raise ValueError(f"{name}: cut short at entry {low + len(block)}")
        return out

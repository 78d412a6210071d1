"""Primary-key checks on a stream of batches with memory that does not grow with the file.

Each row's key is hashed to 64 bits (vectorized over the Arrow buffers) and spilled with its row
number into one of 64 bucket files by the hash's top bits. `finish` sorts one bucket at a time,
so memory is about 1/64 of 16 bytes per row. Equal hashes are only candidates: the key values of
those rows are read back from the written Parquet file and compared, so a hash collision never
rejects a drop. Null keys are rejected as they arrive.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.errors import IngestRejected

BUCKET_BITS = 6
_FLUSH_ROWS = 1 << 20
_GROUP_SAMPLE = 64  # rows of one hash compared by value
_MAX_CANDIDATES = 1 << 20
_MAX_GATHER = 64  # longest key (bytes) hashed with vectorized gathers
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _C2
        x = (x ^ (x >> np.uint64(27))) * _C3
        return x ^ (x >> np.uint64(31))


def hash_column(values: pa.Array) -> np.ndarray:
    """64-bit hashes of a column without nulls, equal for equal values (any Arrow type)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_binary(values.type):
        return _hash_bytes(values, np.int32)
    if pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type):
        return _hash_bytes(values, np.int64)
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    elif pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float64())  # equal values, equal bits (after -0.0 below)
        values = pc.if_else(pc.equal(values, 0.0), 0.0, values)
    elif pa.types.is_temporal(values.type):
        values = values.view(pa.int64()) if values.type.bit_width == 64 else values
    raw = values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    with np.errstate(over="ignore"):
        return _mix(raw.view(np.uint64) + _C1)


def _hash_bytes(values: pa.Array, offset_type: type) -> np.ndarray:
    """Hash each value's bytes as 8-byte words salted by position (same result in any batch)."""
    n = len(values)
    raw_offsets: np.ndarray = np.frombuffer(values.buffers()[1], dtype=offset_type)
    offsets: np.ndarray = raw_offsets[values.offset :][: n + 1].astype(np.int64)
    data = np.frombuffer(values.buffers()[2] or b"\0", dtype=np.uint8)
    lengths = np.diff(offsets)
    longest = min(int(lengths.max()) if n else 0, _MAX_GATHER)
    matrix = np.zeros((n, max(8, (longest + 7) // 8 * 8)), dtype=np.uint8)
    if n and longest == int(lengths.min()):  # fixed-width keys (ids): one reshape
        matrix[:, :longest] = data[offsets[0] : offsets[-1]].reshape(n, longest)
    else:
        last = len(data) - 1
        for j in range(longest):  # one gather per byte position, not one per byte
            inside = lengths > j
            matrix[:, j] = np.where(inside, data[np.minimum(offsets[:-1] + j, last)], 0)
    hashes = _hash_words(matrix.view(np.uint64), lengths)
    for i in np.nonzero(lengths > _MAX_GATHER)[0]:  # rare very long keys: one at a time
        raw = data[offsets[i] : offsets[i + 1]].tobytes()
        padded = np.frombuffer(raw + bytes(-len(raw) % 8), dtype=np.uint64)
        hashes[i] = _hash_words(padded.reshape(1, -1), lengths[i : i + 1])[0]
    return hashes


def _hash_words(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of the position-salted words a value occupies, mixed with its length."""
    used = np.arange(words.shape[1]) < np.maximum((lengths[:, None] + 7) // 8, 1)
    salt = np.arange(words.shape[1], dtype=np.uint64) * _C1 + _C2
    with np.errstate(over="ignore"):
        summed = np.where(used, _mix(words ^ salt), np.uint64(0)).sum(axis=1, dtype=np.uint64)
        return _mix(summed ^ (lengths.astype(np.uint64) * _C3))


def hash_rows(batch: pa.RecordBatch | pa.Table, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row over several key columns."""
    out = np.zeros(batch.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in columns:
            out = _mix(out * _C3 + hash_column(batch.column(name)))
    return out


class HashSpill:
    """(64-bit hash, row) pairs spilled to 64 bucket files; finds the rows sharing a hash.

    Memory holds at most `_FLUSH_ROWS` pending pairs, and one bucket (1/64 of the rest) at a time.
    """

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="databourse-keys-")
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    def close(self) -> None:
        self._tmp.cleanup()

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        """Record rows (ascending across calls) and their hashes."""
        self._pending.append((hashes, rows))
        self._pending_rows += len(rows)
        if self._pending_rows >= _FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        hashes = np.concatenate([h for h, _ in self._pending])
        rows = np.concatenate([r for _, r in self._pending])
        self._pending, self._pending_rows = [], 0
        bucket = (hashes >> np.uint64(64 - BUCKET_BITS)).astype(np.uint8)
        order = np.argsort(bucket, kind="stable")  # a radix sort for 8-bit keys: O(n)
        bounds = np.searchsorted(bucket[order], np.arange((1 << BUCKET_BITS) + 1))
        for b in range(1 << BUCKET_BITS):
            part = order[bounds[b] : bounds[b + 1]]
            if len(part):
                pairs = np.empty(len(part), dtype=[("h", "<u8"), ("r", "<i8")])
                pairs["h"], pairs["r"] = hashes[part], rows[part]
                with (Path(self._tmp.name) / f"{b:02d}.bin").open("ab") as fh:
                    fh.write(pairs.tobytes())

    def groups(self, per_group: int | None = None, most: int | None = None) -> list[np.ndarray]:
        """Rows of each hash held by more than one row (the first `per_group` of each), in row
        order; stops once `most` rows are collected (None: no limit)."""
        self._flush()
        groups: list[np.ndarray] = []
        total = 0
        for path in sorted(Path(self._tmp.name).glob("*.bin")):
            pairs = np.fromfile(path, dtype=[("h", "<u8"), ("r", "<i8")])
            order = np.argsort(pairs["h"])
            hashes, rows = pairs["h"][order], pairs["r"][order]
            repeated = np.nonzero(hashes[1:] == hashes[:-1])[0]
            for value in np.unique(hashes[repeated]):  # usually none: no Python loop per row
                lo = np.searchsorted(hashes, value, "left")
                hi = np.searchsorted(hashes, value, "right")
                group = np.sort(rows[lo:hi])  # in row order
                groups.append(group if per_group is None else group[:per_group])
                total += len(groups[-1])
            if most is not None and total > most:
                break
        return groups


class KeyIndex:
    """Finds a repeated (or null) primary key over all batches of one file."""

    def __init__(self, columns: list[str], name: str) -> None:
        self.columns = columns
        self.name = name
        self._spill = HashSpill()

    def __enter__(self) -> KeyIndex:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._spill.close()

    def add(self, batch: pa.RecordBatch, offset: int) -> None:
        """Record the keys of a batch whose first row is data row `offset + 1`."""
        for name in self.columns:
            column = batch.column(name)
            if column.null_count:
                row = offset + int(pc.index(pc.is_null(column), True).as_py()) + 1
                raise IngestRejected(
                    f"{self.name}: primary key column {name!r} is empty at data row {row}",
                    file=self.name,
                    column=name,
                    row=row,
                )
        rows = np.arange(offset + 1, offset + 1 + batch.num_rows, dtype=np.int64)
        self._spill.add(hash_rows(batch, self.columns), rows)

    def finish(self, written: Path) -> None:
        """Raise IngestRejected for the first repeated key; `written` holds the rows, in order."""
        groups = self._spill.groups(per_group=_GROUP_SAMPLE, most=_MAX_CANDIDATES)
        duplicate = self._first_real(groups, written)
        if duplicate:
            first, second = duplicate
            raise IngestRejected(
                f"{self.name}: duplicate primary key {self.columns} at data row {second}"
                f" (same key as data row {first})",
                file=self.name,
                column=self.columns[0],
                row=second,
                first_row=first,
            )

    def _first_real(self, groups: list[np.ndarray], written: Path) -> tuple[int, int] | None:
        """The earliest row whose key values really repeat an earlier row's (hashes collide)."""
        if not groups:
            return None
        keys = _rows_of(written, self.columns, sorted({int(r) for g in groups for r in g}))
        best: tuple[int, int] | None = None
        for group in groups:
            seen: dict[tuple[object, ...], int] = {}
            for row in group.tolist():
                if (first := seen.setdefault(keys[row], row)) != row:
                    if best is None or row < best[1]:
                        best = (first, row)
                    break
        return best


def _rows_of(path: Path, columns: list[str], rows: list[int]) -> dict[int, tuple[object, ...]]:
    """Key values of some 1-based data rows of a Parquet file, read batch by batch."""
    found: dict[int, tuple[object, ...]] = {}
    wanted = np.asarray(rows, dtype=np.int64)
    start = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=columns):
        inside = wanted[(wanted >= start) & (wanted < start + batch.num_rows)]
        if len(inside):
            picked = batch.take(pa.array(inside - start)).to_pylist()
            found.update(zip(inside.tolist(), (tuple(r.values()) for r in picked), strict=True))
        start += batch.num_rows
    return found

"""The dedup index: every document's keys, cluster and id, in files that grow with the corpus.

`DedupIndex.add` checks a batch against everything seen (this version's earlier batches and the
earlier versions' index), then adds it. A document matches the first earlier document that
shares its exact key or any band key (`dedup.document_keys`; `key_runs.KeyRuns` keeps each key's
first document). Matched documents join a union-find forest whose root is a cluster's first
document (`parent`, and `size` at the roots). Ids are kept in a file and read back only for the
roots a batch reports.
Memory is flat in the corpus size: a batch, and the keys not yet flushed (up to
`key_runs.FLUSH_KEYS`). The rest is in files of a work folder (under `work`, or the system's
temporary folder: `TMPDIR`), about (bands + 1) * 16 + 24 bytes and the id a document, removed by
`close` (or when the index is collected).
Saved as an uncompressed `.npz` that NumPy reads (no pickles), streamed in chunks: `format` (2),
`config`, `keys_<i>` and `docs_<i>` (the sorted runs), `parent` (each document's root),
`id_bytes` and `id_offsets` (the UTF-8 ids). `load` copies it into a new work folder, in chunks.
Format 1 (one run as `keys` and `docs`, `ids` as a Unicode array, compressed) still loads.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.lib import format as npy

from databourse.config.corpus import DedupConfig
from databourse.corpus.dedup import document_keys, first_in_batch, lsh_params
from databourse.corpus.key_runs import CHUNK, I64, GrowingArray, GrowingBytes, KeyRuns, copy_member
from databourse.corpus.langid import Batch, batch_texts

FORMAT = 2


@dataclass(frozen=True)
class DedupResult:
    """Per document of a batch: the first document of its cluster (None: itself), how it matched."""

    duplicate_of: list[str | None]
    kind: list[str | None]  # "exact", "near" or None
    cluster_size: list[int]


class DedupIndex:
    """Band and exact keys of every document seen, in order; add batches, save, load."""

    def __init__(self, config: DedupConfig | None = None, work: Path | None = None) -> None:
        self.config = config or DedupConfig()
        self.folder = Path(tempfile.mkdtemp(prefix="dedup-index-", dir=work))
        self._remove = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        self.seen = KeyRuns(self.folder)
        self.parent = GrowingArray(self.folder / "parent.i64")
        self.size = GrowingArray(self.folder / "size.i64")  # right at the roots only
        self.ids = GrowingBytes(self.folder / "ids.bin")

    def __len__(self) -> int:
        return len(self.ids)

    def __enter__(self) -> DedupIndex:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the work folder; the index cannot be used after."""
        self.ids.close()
        self._remove()

    @property
    def shape(self) -> tuple[int, int]:
        """(bands, rows) of the LSH."""
        return lsh_params(self.config.threshold, self.config.num_perm, self.config.min_recall)

    def keys(self, texts: Sequence[str]) -> np.ndarray:
        """Exact key then band keys of each text (documents x (1 + bands))."""
        return document_keys(texts, self.config)

    def add(self, batch: Batch, ids: Sequence[str] | None = None) -> DedupResult:
        """Check a batch against everything seen (earlier batches and versions), then add it."""
        texts = batch_texts(batch)
        return self.add_keys(self.keys(texts), ids)

    def add_keys(self, keys: np.ndarray, ids: Sequence[str] | None = None) -> DedupResult:
        """`add` of documents whose keys (`keys`) were computed already, by `dedup.document_keys`
        with this index's config (in another process, say)."""
        base, count = len(self), len(keys)
        ids = list(ids) if ids is not None else [str(base + i) for i in range(count)]
        if len(ids) != count:
            raise ValueError(f"{len(ids)} ids for {count} documents")
        if count and keys.shape[1] != 1 + self.shape[0]:
            raise ValueError(f"{keys.shape[1]} keys a document: not 1 + {self.shape[0]} bands")
        earlier = self.seen.lookup(keys)
        docs = base + np.arange(count, dtype=I64)
        within = first_in_batch(keys) + base
        matches = np.where(earlier >= 0, earlier, np.where(within < docs[:, None], within, -1))
        self.ids.extend([str(i).encode("utf-8") for i in ids])
        self.parent.append(docs)
        self.size.append(np.ones(count, dtype=I64))
        kinds: list[str | None] = []
        for doc, row in enumerate(matches, start=base):
            for other in row[row >= 0]:
                self._union(doc, int(other))
            kinds.append(None if (row < 0).all() else "exact" if row[0] >= 0 else "near")
        new = earlier.ravel() < 0  # a key seen before keeps its first document
        flat = keys.ravel()[new]
        unique, first = np.unique(flat, return_index=True)
        self.seen.add(unique, np.repeat(docs, keys.shape[1])[new][first])
        return self._result(base, kinds)

    def _result(self, base: int, kinds: list[str | None]) -> DedupResult:
        roots = [self._find(doc) for doc in range(base, len(self))]
        size = self.size.array
        return DedupResult(
            duplicate_of=[
                self.ids[root].decode("utf-8") if root != doc else None
                for doc, root in enumerate(roots, start=base)
            ],
            kind=kinds,
            cluster_size=[int(size[root]) for root in roots],
        )

    def roots(self) -> Iterator[tuple[int, np.ndarray]]:
        """Chunks of (first document, the roots of the chunk's documents)."""
        parent = self.parent.values
        for low in range(0, len(parent), CHUNK):
            roots = np.array(parent[low : low + CHUNK])
            while True:  # pointer jumping: every parent is an earlier document
                up = parent[roots]
                if (up == roots).all():
                    break
                roots = up
            yield low, roots

    def cluster_sizes(self) -> dict[str, int]:
        """Size of each cluster of two or more documents, by the id of its first document."""
        sizes: dict[str, int] = {}
        for low, roots, size in self._clusters():
            for root, n in zip(roots.tolist(), size.tolist(), strict=True):
                sizes[self.ids[low + root].decode("utf-8")] = n
        return sizes

    def cluster_size_counts(self) -> dict[int, int]:
        """How many clusters of each size (two documents or more) the index holds."""
        counts: dict[int, int] = {}
        for _, _, size in self._clusters():
            for n, k in zip(*np.unique(size, return_counts=True), strict=True):
                counts[int(n)] = counts.get(int(n), 0) + int(k)
        return dict(sorted(counts.items()))

    def _clusters(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        parent, size = self.parent.values, self.size.values
        for low in range(0, len(parent), CHUNK):
            here = np.arange(low, min(low + CHUNK, len(parent)))
            at = np.flatnonzero((size[here] > 1) & (parent[here] == here))
            yield low, at, np.asarray(size[low + at])

    def _find(self, doc: int) -> int:
        parent = self.parent.array
        root = doc
        while parent[root] != root:
            root = int(parent[root])
        while parent[doc] != root:  # path compression
            parent[doc], doc = root, int(parent[doc])
        return root

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:  # the earlier document stays the root: it is the cluster's first
            self.parent.array[max(ra, rb)] = min(ra, rb)
            self.size.array[min(ra, rb)] += self.size.array[max(ra, rb)]

    def save(self, path: Path) -> None:
        """Write the index to an uncompressed `.npz` file, in chunks."""
        self.seen.flush()
        roots = GrowingArray(self.folder / "roots.i64")
        for _, chunk in self.roots():
            roots.append(chunk)
        arrays = {"format": np.array(FORMAT), "config": np.array(json.dumps(asdict(self.config)))}
        for i, (keys, docs) in enumerate(self.seen.runs()):
            arrays[f"keys_{i}"], arrays[f"docs_{i}"] = keys, docs
        arrays |= {"parent": roots.values, "id_bytes": self.ids.data()}
        arrays["id_offsets"] = self.ids.offsets.values
        with path.open("wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    npy.write_array_header_1_0(member, npy.header_data_from_array_1_0(array))
                    flat = array.reshape(-1)
                    for low in range(0, len(flat), CHUNK):
                        member.write(np.ascontiguousarray(flat[low : low + CHUNK]).tobytes())
        (self.folder / "roots.i64").unlink()

    @classmethod
    def load(cls, path: Path, work: Path | None = None) -> DedupIndex:
        """Read an index written by `save` (format 2 or 1) into a new work folder."""
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy") for name in archive.namelist()}
            small: dict[str, np.ndarray] = {
                n: _small(archive, n) for n in ("config", "format", "ids") if n in names
            }
            index = cls(DedupConfig(**json.loads(str(small["config"]))), work)
            try:
                _fill(index, archive, names, small, path)
            except BaseException:
                index.close()
                raise
            return index


def _small(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(f"{name}.npy") as member:
        return npy.read_array(member, allow_pickle=False)  # type: ignore[no-any-return]


def _fill(
    index: DedupIndex,
    archive: zipfile.ZipFile,
    names: set[str],
    small: dict[str, np.ndarray],
    path: Path,
) -> None:
    """Copy a saved index's arrays into `index`'s (empty) work files, checking their shapes."""
    runs = ["keys"] if "format" not in small else sorted(
        (n for n in names if n.startswith("keys_")), key=lambda n: int(n.split("_")[1])
    )  # fmt: skip
    for name in reversed(runs):
        keys = copy_member(archive, name, index.seen.new_file("keys"))
        docs = copy_member(archive, name.replace("keys", "docs"), index.seen.new_file("docs"))
        if len(keys) != len(docs) or not all(
            (keys[low + 1 : low + CHUNK + 1] > keys[low : min(low + CHUNK, len(keys) - 1)]).all()
            for low in range(0, len(keys), CHUNK)
        ):
            raise ValueError(f"{path}: {name} is not a sorted run of unique keys with documents")
        index.seen.adopt(keys, docs)
    if "ids" in small:  # format 1
        index.ids.extend([str(i).encode("utf-8") for i in small["ids"].tolist()])
    else:
        data = copy_member(archive, "id_bytes", index.folder / "id_bytes.npy")
        ends = copy_member(archive, "id_offsets", index.folder / "id_offsets.npy")
        try:
            index.ids.extend_raw(data, ends)
        except ValueError as error:
            raise ValueError(f"{path}: ids: {error}") from None
    parent = copy_member(archive, "parent", index.folder / "saved_parent.npy")
    if len(parent) != len(index):
        raise ValueError(f"{path}: {len(parent)} parents for {len(index)} ids")
    for low in range(0, len(parent), CHUNK):
        chunk = np.asarray(parent[low : low + CHUNK], dtype=I64)
        if len(chunk) and (chunk.min() < 0 or (chunk > np.arange(low, low + len(chunk))).any()):
            raise ValueError(f"{path}: a parent after its document near entry {low}")
        index.parent.append(chunk)
        index.size.append(np.zeros(len(chunk), dtype=I64))
    for _, roots in index.roots():
        np.add.at(index.size.values, roots, 1)
    for name in ("id_bytes.npy", "id_offsets.npy", "saved_parent.npy"):
        (index.folder / name).unlink(missing_ok=True)

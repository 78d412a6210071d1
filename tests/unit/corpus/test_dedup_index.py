"""The dedup index on disk: runs flushed and merged, saved and loaded in chunks, format 1 still
read, a damaged file refused, the work folder removed."""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from corpus_dedup import Planted, planted_set

from databourse.corpus import dedup_index, key_runs
from databourse.corpus.dedup_index import DedupIndex
from databourse.corpus.key_runs import KeyRuns


@pytest.fixture(scope="module")
def planted() -> Planted:
    return planted_set(300, seed=11)


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flush every few hundred keys and move 37 entries at a time: many runs, many merges."""
    monkeypatch.setattr(key_runs, "FLUSH_KEYS", 300)
    monkeypatch.setattr(key_runs, "CHUNK", 37)
    monkeypatch.setattr(dedup_index, "CHUNK", 37)


def test_key_runs_merge_on_disk_and_find_every_key(small_runs: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(0, 2**64 - 1, size=20_000, dtype=np.uint64, endpoint=True))
    keys = rng.permutation(keys)  # unique, in no order, some above 2**63
    runs = KeyRuns(tmp_path)
    for low in range(0, len(keys), 250):
        runs.add(keys[low : low + 250], np.arange(low, min(low + 250, len(keys))))
    runs.flush()
    assert not runs.memory and len(runs) == len(keys)
    assert len(runs.disk) <= np.log2(len(keys) / 300) + 1  # size-tiered: logarithmic
    for run_keys, run_docs in runs.disk:
        assert isinstance(run_keys, np.memmap) and isinstance(run_docs, np.memmap)
        assert (run_keys[1:] > run_keys[:-1]).all()
    assert (runs.lookup(keys) == np.arange(len(keys))).all()
    missing = rng.integers(0, 2**64 - 1, size=500, dtype=np.uint64, endpoint=True)
    missing = missing[~np.isin(missing, keys)][:495].reshape(-1, 5)
    assert missing.size == 495 and (runs.lookup(missing) == -1).all()
    held = {p.name for p in tmp_path.iterdir()}
    assert len(held) == 2 * len(runs.disk)  # merged runs' files are gone


def test_small_runs_answer_as_one_run(planted: Planted, small_runs: None, tmp_path: Path) -> None:
    """The same documents in small batches through many flushed and merged runs, saved (several
    runs) and loaded halfway, report what one batch in memory reports."""
    ids, texts = planted.ids, planted.texts
    with DedupIndex() as whole:
        expected = whole.add(texts, ids)
        expected_clusters = whole.cluster_sizes()
    first = DedupIndex()
    parts = []
    for low in range(0, 150, 13):
        parts.append(first.add(texts[low : min(low + 13, 150)], ids[low : min(low + 13, 150)]))
    first.save(tmp_path / "v1.npz")
    assert len(first.seen.disk) > 1
    first.close()
    later = DedupIndex.load(tmp_path / "v1.npz")
    for low in range(150, len(texts), 29):
        parts.append(later.add(texts[low : low + 29], ids[low : low + 29]))
    assert [d for p in parts for d in p.duplicate_of] == expected.duplicate_of
    assert [k for p in parts for k in p.kind] == expected.kind
    assert parts[-1].cluster_size == expected.cluster_size[-len(parts[-1].cluster_size) :]
    assert later.cluster_sizes() == expected_clusters and len(expected_clusters) > 20
    sizes = list(expected_clusters.values())
    assert later.cluster_size_counts() == {n: sizes.count(n) for n in sorted(set(sizes))}
    with np.load(tmp_path / "v1.npz", allow_pickle=False) as saved:  # plain NumPy reads it
        assert int(saved["format"]) == 2 and len(saved["parent"]) == 150
        roots = saved["parent"]
        assert (roots[roots] == roots).all() and (roots < np.arange(150)).sum() > 10
    later.close()


def test_an_index_saved_in_format_1_still_loads(planted: Planted, tmp_path: Path) -> None:
    """Format 1 (one sorted run, ids as a Unicode array, compressed), as versions published
    before the index moved to disk hold it."""
    ids, texts = planted.ids, planted.texts
    with DedupIndex() as whole:
        expected = whole.add(texts, ids).duplicate_of
    with DedupIndex() as first:
        head = first.add(texts[:200], ids[:200]).duplicate_of
        first.seen.flush()
        keys = np.concatenate([np.asarray(k) for k, _ in first.seen.runs()])
        docs = np.concatenate([np.asarray(d) for _, d in first.seen.runs()])
        order = np.argsort(keys)
        roots = np.concatenate([r for _, r in first.roots()])
        np.savez_compressed(
            tmp_path / "old.npz", keys=keys[order], docs=docs[order], parent=roots,
            ids=np.array(ids[:200], dtype=str), config=np.array(json.dumps(asdict(first.config))),
        )  # fmt: skip
    with DedupIndex.load(tmp_path / "old.npz") as later:
        tail = later.add(texts[200:], ids[200:]).duplicate_of
    assert head + tail == expected


def _rewrite(source: Path, target: Path, name: str, array: np.ndarray) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.namelist():
            if item == f"{name}.npy":
                with new.open(item, "w") as member:
                    np.lib.format.write_array(member, array)
            else:
                new.writestr(item, old.read(item))


@pytest.mark.parametrize("damage", ["unsorted keys", "parent after its document", "short ids"])
def test_a_damaged_index_is_refused_naming_the_file(
    planted: Planted, tmp_path: Path, damage: str
) -> None:
    with DedupIndex() as index:
        index.add(planted.texts[:120], planted.ids[:120])
        index.save(tmp_path / "v1.npz")
    with np.load(tmp_path / "v1.npz") as saved:
        keys, parent, offsets = saved["keys_0"], saved["parent"], saved["id_offsets"]
    if damage == "unsorted keys":
        name, array = "keys_0", keys[::-1].copy()
    elif damage == "parent after its document":
        name, array = "parent", np.where(np.arange(len(parent)) == 3, 7, parent)
    else:
        name, array = "id_offsets", offsets[:-5]
    _rewrite(tmp_path / "v1.npz", tmp_path / "bad.npz", name, array)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ValueError, match=r"bad\.npz"):
        DedupIndex.load(tmp_path / "bad.npz", work=work)
    assert not any(work.iterdir())  # the half-loaded index's files are gone


def test_the_work_folder_is_removed_on_close_and_holds_no_heap_copy(
    planted: Planted, small_runs: None, tmp_path: Path
) -> None:
    with DedupIndex(work=tmp_path) as index:
        for low in range(0, len(planted.texts), 50):
            index.add(planted.texts[low : low + 50], planted.ids[low : low + 50])
        held = sum(len(k) for k, _ in index.seen.memory)
        assert held < key_runs.FLUSH_KEYS  # the rest is in memory-mapped files
        assert isinstance(index.parent.array, np.memmap) and index.folder.parent == tmp_path
        assert any(index.folder.iterdir())
    assert not any(tmp_path.iterdir())


def test_a_build_leaves_no_work_folder_when_it_fails(
    planted: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from databourse.corpus.build import CorpusRules, build_version
    from databourse.corpus.documents import read_documents

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    source = tmp_path / "docs.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t}) + "\n"
            for i, t in zip(planted.ids, planted.texts, strict=True)
        )
    )

    def failing():  # type: ignore[no-untyped-def]
        yield from read_documents(source, batch_size=64)
        raise OSError("the provider's drive went away")

    rules = CorpusRules()
    with pytest.raises(OSError, match="went away"):
        build_version(failing(), rules, tmp_path / "v1")
    assert not any(temp.iterdir())
    build_version(read_documents(source, batch_size=64), rules, tmp_path / "v1b")
    assert not any(temp.iterdir())


def test_save_writes_each_documents_root_not_its_parent(planted: Planted, tmp_path: Path) -> None:
    """A forest whose roots changed after a union (a chain 3 -> 2 -> 1 -> 0) is saved flat."""
    with DedupIndex() as index:
        index.add(planted.texts[:6], planted.ids[:6])
        index.parent.values[:4] = [0, 0, 1, 2]
        index.size.values[0] = 4
        index.save(tmp_path / "v1.npz")
    with np.load(tmp_path / "v1.npz") as saved:
        assert saved["parent"][:4].tolist() == [0, 0, 0, 0]
    with DedupIndex.load(tmp_path / "v1.npz") as loaded:
        assert loaded.cluster_size_counts() == {4: 1}

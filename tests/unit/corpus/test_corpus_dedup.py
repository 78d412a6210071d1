"""De-duplication: exact keys, MinHash against datasketch (the independent oracle), bands/rows
against datasketch's, recall on planted near-duplicates of Faker text, batches and saved
indexes giving the same answers as one pass."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash, MinHashLSH
from scipy.integrate import quad

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from corpus_dedup import Planted, jaccard, ours, planted_set, score, shingle_set

from databourse.corpus.dedup import (
    DedupConfig,
    collision_probability,
    exact_key,
    lsh_params,
    normalize,
    optimal_param,
    shingles,
    signatures,
)
from databourse.corpus.dedup_index import DedupIndex


@pytest.fixture(scope="module")
def planted() -> Planted:
    return planted_set(300, seed=7)


def test_normalized_text_has_one_exact_key() -> None:
    forms = ["Ｈｅｌｌｏ  World\n", "hello world", "HELLO\tWORLD", " hello   world "]
    assert {normalize(f) for f in forms} == {"hello world"}
    assert len({exact_key(f) for f in forms}) == 1
    assert exact_key("hello world.") != exact_key("hello world")


def test_shingles_are_the_character_ngrams_of_the_normalized_text() -> None:
    for text in ["我們的國家很大，人口很多。", "ภาษาไทยง่ายมาก", "Hello   World, again"]:
        assert len(shingles(text)) == len(shingle_set(text))
    assert len(shingles("abc")) == 1  # shorter than a shingle: one shingle
    assert len(shingles("")) == 1


def test_minhash_estimates_agree_with_datasketch_on_the_same_shingles(planted: Planted) -> None:
    num_perm = 256
    pairs = [(a, b) for a, b, _ in planted.pairs[:120]]
    text = dict(zip(planted.ids, planted.texts, strict=True))
    ours_err, theirs_err = [], []
    for a, b in pairs:
        truth = jaccard(text[a], text[b])
        sig = signatures([shingles(text[a]), shingles(text[b])], num_perm, seed=3)
        estimate = float(np.mean(sig[0] == sig[1]))
        hashes = []
        for doc in (a, b):
            minhash = MinHash(num_perm=num_perm, seed=3)
            minhash.update_batch([s.encode() for s in shingle_set(text[doc])])
            hashes.append(minhash)
        reference = hashes[0].jaccard(hashes[1])
        sd = math.sqrt(max(truth * (1 - truth), 0.01) / num_perm)
        assert abs(estimate - truth) <= 4.5 * sd
        assert abs(estimate - reference) <= 4.5 * math.sqrt(2) * sd
        ours_err.append(abs(estimate - truth))
        theirs_err.append(abs(reference - truth))
    # as close to the truth as datasketch, within sampling noise
    assert np.mean(ours_err) <= 1.3 * np.mean(theirs_err) + 0.003


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [64, 128])
def test_optimal_param_is_datasketchs(threshold: float, num_perm: int) -> None:
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert optimal_param(threshold, num_perm) == (lsh.b, lsh.r)


@pytest.mark.parametrize("threshold", [0.6, 0.7, 0.8, 0.9])
def test_bands_and_rows_reach_the_recall_at_the_threshold(threshold: float) -> None:
    bands, rows = lsh_params(threshold, 128, 0.95)
    assert bands * rows <= 128
    assert collision_probability(threshold, bands, rows) >= 0.95

    def false_positive_area(b: int, r: int) -> float:  # scipy's quadrature, as datasketch uses
        return quad(lambda s: 1 - (1 - s**r) ** b, 0.0, threshold)[0]  # type: ignore[no-any-return]

    reaching = [
        (b, r)
        for b in range(1, 129)
        for r in range(1, 128 // b + 1)
        if 1 - (1 - threshold**r) ** b >= 0.95
    ]
    best = min(false_positive_area(b, r) for b, r in reaching)
    assert false_positive_area(bands, rows) <= best + 1e-6


def test_planted_near_duplicates_are_found(planted: Planted) -> None:
    config = DedupConfig()
    found, seconds = ours(planted, config, batch=128)
    result = score(planted, found, config.threshold, seconds)
    assert result.recall >= 0.95
    assert result.precision >= 0.8  # what is below the threshold is mostly a planted pair near it
    unrelated = [fp for fp in result.false_positives if fp[0][1:] != fp[1][1:]]
    assert len(unrelated) <= 0.01 * len(found)


def test_duplicate_of_is_the_first_document_and_clusters_are_counted() -> None:
    base = "The quick brown fox jumps over the lazy dog near the river bank today. " * 3
    near = base.replace("today", "tonight")
    index = DedupIndex()
    result = index.add(
        pa.array([base, "something else entirely, quite unrelated", near]), ["a", "b", "c"]
    )
    assert result.duplicate_of == [None, None, "a"]
    assert result.kind == [None, None, "near"]
    again = index.add([base.upper(), near], ["d", "e"])
    assert again.duplicate_of == ["a", "a"]
    assert again.kind == ["exact", "exact"]
    assert again.cluster_size == [4, 4]
    assert index.cluster_sizes() == {"a": 4}


def test_batches_and_a_saved_index_answer_as_one_pass(planted: Planted, tmp_path: Path) -> None:
    ids, texts = planted.ids, planted.texts
    whole = DedupIndex().add(texts, ids)
    first = DedupIndex()
    parts = first.add(texts[:250], ids[:250]).duplicate_of
    first.save(tmp_path / "v1.npz")
    later = DedupIndex.load(tmp_path / "v1.npz")
    for low in range(250, len(texts), 97):
        parts += later.add(texts[low : low + 97], ids[low : low + 97]).duplicate_of
    assert parts == whole.duplicate_of
    one_pass = DedupIndex()
    one_pass.add(texts, ids)
    assert later.cluster_sizes() == one_pass.cluster_sizes()
    assert sum(later.cluster_sizes().values()) > 100


def test_a_batch_of_documents_all_seen_before_leaves_the_index_searchable() -> None:
    """A batch whose every key is already held adds nothing (an empty run once broke the
    lookup of the next batch with an IndexError)."""
    text = "The same paragraph about harbour logistics, repeated verbatim in three batches."
    index = DedupIndex()
    index.add([text], ["a"])
    again = index.add([text], ["b"])
    third = index.add([text, text + " And one more sentence about ships."], ["c", "d"])
    assert again.duplicate_of == ["a"] and third.duplicate_of[0] == "a"

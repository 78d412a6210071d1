"""Exact and near-duplicate documents of a corpus, across batches and across product versions.

Exact: a 64-bit BLAKE2b hash of the normalized text (NFKC, case-folded, runs of whitespace made
one space, trimmed). Near: MinHash over character shingles with LSH banding, vectorised in NumPy.
- Shingles are the CHARACTER n-grams (default 5) of the normalized text, for every language:
  Chinese and Thai have no spaces to cut words at, and one rule for all keeps Jaccard
  similarities comparable across the product's languages. A text shorter than n characters is
  one shingle.
- MinHash: each shingle's 64-bit hash x goes through `num_perm` multiply-shift hash functions
  h_i(x) = (a_i * x + b_i mod 2**64) >> 32 (a_i odd, seeded); a document's signature is the
  minimum of each. P(two minima agree) estimates the Jaccard similarity of the shingle sets.
- LSH: the signature is cut into `bands` of `rows`; documents sharing any band are duplicates
  (no second check: a candidate pair is reported, as datatrove and text-dedup do). Bands and rows
  come from the threshold: among b * r <= num_perm whose probability of sharing a band at the
  threshold, 1 - (1 - t**r)**b, reaches `min_recall`, the one with the least false-positive
  area (the integral of that curve below t). `min_recall=None` picks datasketch's
  `optimal_param` instead (least sum of false-positive and false-negative areas), which finds
  only about 40% of the pairs right at t = 0.8 with 128 permutations.
The index of the keys seen (`dedup_index.DedupIndex`) finds a batch's matches and keeps the
clusters.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import cache

import numpy as np

from databourse.config.corpus import DedupConfig as DedupConfig

CHUNK_SHINGLES = 1 << 12  # shingles hashed at once: num_perm * 8 bytes each, kept in cache
EXACT_SALT = np.uint64(0x5DEECE66D)
WHITESPACE = re.compile(r"\s+")
U64 = np.uint64


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace runs made one space, trimmed."""
    return WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def exact_key(text: str) -> int:
    """64-bit hash of the normalized text."""
    return _digest(normalize(text))


def _digest(normalized: str) -> int:
    return int.from_bytes(hashlib.blake2b(normalized.encode(), digest_size=8).digest(), "big")


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijective 64-bit mix, applied element-wise."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> U64(27))) * U64(0x94D049BB133111EB)
        return x ^ (x >> U64(31))  # type: ignore[no-any-return]


def shingles(text: str, size: int = 5) -> np.ndarray:
    """Distinct 64-bit hashes of the character `size`-grams of the normalized text."""
    return np.unique(_shingle_hashes(normalize(text), size))


def _shingle_hashes(normalized: str, size: int) -> np.ndarray:
    """Hashes of every shingle, repeats included (a minimum does not mind them)."""
    points = np.frombuffer(normalized.encode("utf-32-le"), dtype="<u4").astype(U64)
    if len(points) < size:
        points = np.concatenate([points, np.zeros(size - len(points), dtype=U64)])
    count = len(points) - size + 1
    value = np.zeros(count, dtype=U64)
    with np.errstate(over="ignore"):
        for j in range(size):  # a polynomial of the code points, wrapping at 2**64
            value = value * U64(0x100000001B3) + points[j : j + count]
    return splitmix64(value)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The multipliers (odd) and offsets of the MinHash functions."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, size=num_perm, dtype=U64) * U64(2) + U64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=U64)
    return a, b


def signatures(sets: Sequence[np.ndarray], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signatures (documents x num_perm, uint32) of non-empty arrays of shingle hashes."""
    a, b = permutations(num_perm, seed)
    sizes = np.array([len(s) for s in sets], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    ends = starts + sizes
    values = np.concatenate(list(sets)) if sets else np.zeros(0, dtype=U64)
    sig = np.full((num_perm, len(sets)), np.iinfo(np.uint32).max, dtype=U64)
    for low in range(0, len(values), CHUNK_SHINGLES):
        high = min(low + CHUNK_SHINGLES, len(values))
        first = int(np.searchsorted(ends, low, side="right"))
        last = int(np.searchsorted(starts, high, side="left"))
        with np.errstate(over="ignore"):  # permutations x shingles: reduceat runs along rows
            hashed = a[:, None] * values[None, low:high]
            hashed += b[:, None]
        hashed >>= U64(32)
        cuts = np.clip(starts[first:last], low, high) - low
        np.minimum(
            sig[:, first:last], np.minimum.reduceat(hashed, cuts, axis=1), out=sig[:, first:last]
        )
    return sig.T.astype(np.uint32)


def collision_probability(similarity: np.ndarray | float, bands: int, rows: int) -> np.ndarray:
    """Probability that two documents of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - np.asarray(similarity, dtype=float) ** rows) ** bands  # type: ignore[no-any-return]


def _area(low: float, high: float, bands: int, rows: int, *, miss: bool = False) -> float:
    grid = np.linspace(low, high, 2001)
    curve = collision_probability(grid, bands, rows)
    return float(np.trapezoid(1.0 - curve if miss else curve, grid))


def optimal_param(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """datasketch's `_optimal_param`: the (bands, rows) of least weighted error area."""
    best, choice = float("inf"), (1, 1)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            error = fp_weight * _area(0.0, threshold, bands, rows) + fn_weight * _area(
                threshold, 1.0, bands, rows, miss=True
            )
            if error < best:
                best, choice = error, (bands, rows)
    return choice


@cache
def lsh_params(threshold: float, num_perm: int, min_recall: float | None) -> tuple[int, int]:
    """(bands, rows) reaching `min_recall` at the threshold with the least false-positive area."""
    if min_recall is None:
        return optimal_param(threshold, num_perm)
    shapes = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    enough = [s for s in shapes if collision_probability(threshold, *s) >= min_recall]
    if not enough:
        return max(shapes, key=lambda s: float(collision_probability(threshold, *s)))
    return min(enough, key=lambda s: (_area(0.0, threshold, *s), -s[1]))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band of each signature (documents x bands); bands never collide."""
    keys = np.empty((len(sig), bands), dtype=U64)
    for band in range(bands):
        key = np.full(len(sig), splitmix64(np.array([band + 1], dtype=U64))[0], dtype=U64)
        for row in sig[:, band * rows : (band + 1) * rows].T.astype(U64):
            key = splitmix64(key ^ row)
        keys[:, band] = key
    return keys


def document_keys(texts: Sequence[str], config: DedupConfig) -> np.ndarray:
    """Exact key then band keys of each text (documents x (1 + bands))."""
    normalized = [normalize(text) for text in texts]
    exact = np.array([_digest(text) for text in normalized], dtype=U64).reshape(-1, 1)
    sets = [_shingle_hashes(text, config.shingle_size) for text in normalized]
    sig = signatures(sets, config.num_perm, config.seed)
    shape = lsh_params(config.threshold, config.num_perm, config.min_recall)
    return np.hstack([splitmix64(exact ^ EXACT_SALT), band_keys(sig, *shape)])


def first_in_batch(keys: np.ndarray) -> np.ndarray:
    """For each key of a batch, the first row of the batch with the same key in that column."""
    first = np.empty(keys.shape, dtype=np.int64)
    for column in range(keys.shape[1]):
        _, index, inverse = np.unique(keys[:, column], return_index=True, return_inverse=True)
        first[:, column] = index[inverse]
    return first

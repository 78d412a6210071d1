"""Near-duplicate recall, precision and speed of databourse.corpus.dedup against datasketch.

The planted set: Faker paragraphs (text nobody here wrote) in several locales; each original gets
one variant with a share of its words (characters for Chinese and Thai) replaced by words of an
unrelated paragraph of the same locale, at edit rates that spread the true Jaccard similarity of
the two character-shingle sets over 0.5-1.0. The true similarity is computed exactly from the
shingle sets. A pair is a positive when its true similarity reaches the threshold; a reported
pair below it, or between unrelated documents, is a false positive (listed with its similarity).
datasketch's MinHashLSH runs on the same shingles, with the same num_perm and threshold, twice:
with its own bands/rows and with ours.

    .venv/bin/python benchmarks/corpus_dedup.py [--docs 2000] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from datasketch import MinHash, MinHashLSH
from faker import Faker

from databourse.corpus.dedup import DedupConfig, lsh_params, normalize
from databourse.corpus.dedup_index import DedupIndex

LOCALES = ("en_US", "vi_VN", "th_TH", "zh_CN", "zh_TW")
EDIT_RATES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12)


@dataclass(frozen=True)
class Planted:
    """Documents with ids, and the (original, variant, true Jaccard) pairs planted among them."""

    ids: list[str]
    texts: list[str]
    pairs: list[tuple[str, str, float]]


def shingle_set(text: str, size: int = 5) -> set[str]:
    """The character shingles of the normalized text, as strings (the oracle's view)."""
    norm = normalize(text)
    if len(norm) < size:
        return {norm}
    return {norm[i : i + size] for i in range(len(norm) - size + 1)}


def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of two texts' shingle sets."""
    sa, sb = shingle_set(a), shingle_set(b)
    return len(sa & sb) / len(sa | sb)


def _edit(text: str, donor: str, rate: float, rng: random.Random) -> str:
    spaced = " " in text.strip() and not any("\u0e00" <= c <= "\u0e7f" for c in text)
    units = text.split(" ") if spaced else list(text)
    spare = donor.split(" ") if spaced else list(donor)
    for at in rng.sample(range(len(units)), k=round(rate * len(units))):
        units[at] = rng.choice(spare)
    return (" " if spaced else "").join(units)


def planted_set(originals: int, seed: int = 2026) -> Planted:
    """`originals` Faker paragraphs and one edited variant of each (see the module docstring)."""
    rng = random.Random(seed)
    ids: list[str] = []
    texts: list[str] = []
    pairs: list[tuple[str, str, float]] = []
    for number in range(originals):
        faker = Faker(LOCALES[number % len(LOCALES)])
        faker.seed_instance(seed + number)
        original = " ".join(faker.paragraph(nb_sentences=8) for _ in range(2))
        donor = faker.paragraph(nb_sentences=8)
        variant = _edit(original, donor, rng.choice(EDIT_RATES), rng)
        ids += [f"o{number}", f"v{number}"]
        texts += [original, variant]
        pairs.append((f"o{number}", f"v{number}", jaccard(original, variant)))
    order = list(range(len(ids)))
    rng.shuffle(order)
    return Planted([ids[i] for i in order], [texts[i] for i in order], pairs)


@dataclass(frozen=True)
class Scores:
    """Recall over planted pairs at or above the threshold, precision of reported pairs."""

    recall: float
    precision: float
    docs_per_second: float
    false_positives: list[tuple[str, str, float]]


def score(planted: Planted, found: set[frozenset[str]], threshold: float, seconds: float) -> Scores:
    """Compare reported pairs with the planted ones."""
    similar = {frozenset(p[:2]): p[2] for p in planted.pairs}
    positives = [key for key, sim in similar.items() if sim >= threshold]
    text = dict(zip(planted.ids, planted.texts, strict=True))
    wrong = [
        (*sorted(pair), similar.get(pair) or jaccard(*(text[i] for i in pair)))
        for pair in found
        if similar.get(pair, 0.0) < threshold
    ]
    hits = sum(key in found for key in positives)
    return Scores(
        recall=hits / max(len(positives), 1),
        precision=(len(found) - len(wrong)) / max(len(found), 1),
        docs_per_second=len(planted.ids) / seconds,
        false_positives=sorted(wrong, key=lambda w: -w[2]),  # type: ignore[arg-type]
    )


def recall_by_similarity(planted: Planted, found: set[frozenset[str]]) -> dict[str, str]:
    """Found / planted pairs per band of true Jaccard similarity."""
    edges = (0.0, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.01)
    row = {}
    for low, high in pairwise(edges):
        pairs = [frozenset(p[:2]) for p in planted.pairs if low <= p[2] < high]
        if pairs:
            row[f"[{low:.2f},{min(high, 1.0):.2f})"] = (
                f"{sum(p in found for p in pairs)}/{len(pairs)}"
            )
    return row


def ours(
    planted: Planted, config: DedupConfig, batch: int = 500
) -> tuple[set[frozenset[str]], float]:
    """Pairs (document, first of its cluster) that DedupIndex reports, and the seconds it took."""
    index = DedupIndex(config)
    found: set[frozenset[str]] = set()
    start = time.perf_counter()
    for low in range(0, len(planted.ids), batch):
        ids = planted.ids[low : low + batch]
        result = index.add(planted.texts[low : low + batch], ids)
        found |= {frozenset((i, d)) for i, d in zip(ids, result.duplicate_of, strict=True) if d}
    return found, time.perf_counter() - start


def theirs(
    planted: Planted, config: DedupConfig, params: tuple[int, int] | None
) -> tuple[set[frozenset[str]], float]:
    """The same with datasketch: query before insert, pair with the first earlier match."""
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm, params=params)
    order = {doc: at for at, doc in enumerate(planted.ids)}
    found: set[frozenset[str]] = set()
    start = time.perf_counter()
    for doc, text in zip(planted.ids, planted.texts, strict=True):
        minhash = MinHash(num_perm=config.num_perm, seed=config.seed)
        minhash.update_batch([s.encode("utf-8") for s in shingle_set(text)])
        earlier = lsh.query(minhash)
        if earlier:
            found.add(frozenset((doc, min(earlier, key=order.__getitem__))))
        lsh.insert(doc, minhash)
    return found, time.perf_counter() - start


def main() -> None:
    """Print recall, precision and speed of both, with the ratio of speeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="originals (twice as many docs)")
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    config = DedupConfig(threshold=args.threshold)
    planted = planted_set(args.docs)
    bands_rows = lsh_params(config.threshold, config.num_perm, config.min_recall)
    runs: dict[str, Callable[[], tuple[set[frozenset[str]], float]]] = {
        f"databourse {bands_rows}": lambda: ours(planted, config),
        "datasketch own params": lambda: theirs(planted, config, None),
        f"datasketch {bands_rows}": lambda: theirs(planted, config, bands_rows),
    }
    above = sum(p[2] >= config.threshold for p in planted.pairs)
    print(f"{len(planted.ids)} docs, {above} planted pairs at J >= {config.threshold}")
    megabytes = sum(len(t.encode()) for t in planted.texts) / 1e6
    print(f"{megabytes:.1f} MB of text")
    print("| run | recall | precision | docs/s | MB/s | false positives: unrelated, worst (J) |")
    speeds: dict[str, float] = {}
    bins: dict[str, dict[str, str]] = {}
    for name, run in runs.items():
        found, seconds = run()
        s = score(planted, found, config.threshold, seconds)
        speeds[name] = s.docs_per_second
        bins[name] = recall_by_similarity(planted, found)
        worst = ", ".join(f"{a}-{b} {j:.3f}" for a, b, j in s.false_positives[:3])
        unrelated = sum(a[1:] != b[1:] for a, b, _ in s.false_positives)
        rate = megabytes * s.docs_per_second / len(planted.ids)
        print(f"| {name} | {s.recall:.3f} | {s.precision:.3f} | {s.docs_per_second:.0f} | "
              f"{rate:.2f} | {len(s.false_positives)}: {unrelated}, {worst} |")  # fmt: skip
    print("recall by true Jaccard of the planted pair:")
    for name, row in bins.items():
        print(f"| {name} | " + " | ".join(f"{k}: {v}" for k, v in row.items()) + " |")
    first, *others = speeds
    for other in others:
        print(f"speed ratio {first} / {other}: {speeds[first] / speeds[other]:.1f}x")


if __name__ == "__main__":
    main()

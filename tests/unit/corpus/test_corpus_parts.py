"""A corpus version built in partitions (`databourse.corpus.parts`) is the version one pass
(`build.build_version`) makes: the same stats, shards byte for byte, the same index, wherever
the documents were cut. Documents nobody here wrote: Faker paragraphs in ten locales around
identifiers validated by python-stdnum and phonenumbers (`benchmarks/corpus_build.py`), with
exact copies, licences outside the allow-list and opt-outs planted."""

from __future__ import annotations

import random
import sys
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from corpus_build import write_documents

from databourse.config.corpus import CorpusRules, OptOut
from databourse.corpus.build import INDEX_NAME, STATS_NAME, build_version
from databourse.corpus.dedup_index import DedupIndex
from databourse.corpus.documents import read_documents, read_rows
from databourse.corpus.parts import assemble, dedup_parts, finish_part, prepare_part, stem_of

RULES = CorpusRules(
    licences=frozenset({"CC-BY-4.0"}),
    opt_out=OptOut(ids=frozenset({"doc-3", "doc-77"})),
    quality={"min_stop_words": None, "c4_min_sentences": None},
    shard_documents=97,
)


def _staged(tmp_path: Path, n: int, seed: int, name: str) -> Path:
    """A staged corpus file: Faker documents, a tenth copied exactly under new ids, a sixth
    under a licence outside the allow-list; row groups of 23 documents."""
    source = tmp_path / f"{name}.jsonl"
    write_documents(source, n, paragraphs=2, seed=seed)
    table = pa.Table.from_batches(read_documents(source))
    rng = random.Random(seed)
    copies = table.take(sorted(rng.sample(range(n), n // 10)))
    ids = pa.array([f"copy-{name}-{i}" for i in range(copies.num_rows)], pa.string())
    table = pa.concat_tables([table, copies.set_column(0, "id", ids)])
    licences = [("proprietary" if rng.random() < 1 / 6 else "CC-BY-4.0") for _ in range(len(table))]
    table = table.set_column(table.schema.get_field_index("licence"), "licence", pa.array(licences))
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path, row_group_size=23)
    return path


def _partitioned(
    staged: Path, cuts: list[int], work: Path, out: Path, earlier: Path | None = None
) -> None:
    work.mkdir()
    stems = []
    for i, (start, end) in enumerate(pairwise(cuts)):
        stems.append(stem_of(i))
        batches = read_rows(staged, start, end - start, batch_size=40)
        prepare_part(batches, RULES, work, stems[-1])
    dedup_parts(stems, RULES, work, earlier)
    for stem in reversed(stems):  # in any order: each partition alone
        finish_part(work, stem)
    assemble(work, stems, RULES, out)


def _same_version(one: Path, other: Path) -> None:
    shards = sorted(p.name for p in one.glob("part-*.parquet"))
    assert shards and shards == sorted(p.name for p in other.glob("part-*.parquet"))
    for name in shards:
        assert (one / name).read_bytes() == (other / name).read_bytes(), name
    assert (one / STATS_NAME).read_text() == (other / STATS_NAME).read_text()
    with DedupIndex.load(one / INDEX_NAME) as a, DedupIndex.load(other / INDEX_NAME) as b:
        assert len(a) == len(b) and a.cluster_sizes() == b.cluster_sizes()


@pytest.mark.parametrize("cuts", ["one", "row groups", "inside row groups", "random"])
def test_partitions_build_the_version_one_pass_builds(tmp_path: Path, cuts: str) -> None:
    staged = _staged(tmp_path, 330, seed=5, name="v1")
    rows = pq.ParquetFile(staged).metadata.num_rows
    one_pass = tmp_path / "one-pass"
    stats = build_version(read_documents(staged), RULES, one_pass)
    assert stats.removed["exact_duplicate"] > 15 and stats.removed["licence"] > 20, stats.removed
    assert stats.removed["opt_out"] == 2 and sum(stats.redacted.values()) > 50
    assert len(stats.shards) > 1 and stats.kept > 97
    points = {
        "one": [0, rows],
        "row groups": [*range(0, rows, 92), rows],
        "inside row groups": [*range(0, rows, 50), rows],
        "random": sorted({0, rows, *random.Random(3).sample(range(1, rows), 6)}),
    }[cuts]
    _partitioned(staged, points, tmp_path / "work", tmp_path / "parts")
    _same_version(one_pass, tmp_path / "parts")


def test_a_later_version_against_the_earlier_index_is_the_same(tmp_path: Path) -> None:
    first = _staged(tmp_path, 200, seed=5, name="v1")
    second = _staged(tmp_path, 260, seed=5, name="v2")  # the first 200 documents again, and more
    build_version(read_documents(first), RULES, tmp_path / "v1")
    one_pass = tmp_path / "v2-one-pass"
    stats = build_version(read_documents(second), RULES, one_pass, tmp_path / "v1")
    assert stats.removed["exact_duplicate"] > 150  # the first version's documents
    rows = pq.ParquetFile(second).metadata.num_rows
    _partitioned(second, [0, 100, 101, rows], tmp_path / "work", tmp_path / "v2", tmp_path / "v1")
    _same_version(one_pass, tmp_path / "v2")


def test_rows_are_read_as_read_documents_reads_them(tmp_path: Path) -> None:
    staged = _staged(tmp_path, 60, seed=9, name="v1")
    whole = pa.Table.from_batches(read_documents(staged))
    parts = [pa.Table.from_batches(read_rows(staged, a, b - a)) for a, b in ((0, 17), (17, 66))]
    assert pa.concat_tables(parts).equals(whole)
    assert pc.all(pc.equal(parts[1].column("id"), whole.column("id").slice(17))).as_py()

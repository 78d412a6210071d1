"""A product built in passes over partitions: the same bytes, decisions and figures however the
staged dataset is partitioned, and the same as the whole-table build (`productize` +
`package.write_parquet`); then the Prefect flow on threads and on a Dask cluster."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.config import ProductSpec, RunSettings
from databourse.errors import IngestRejected, PrivacyModelFailed
from databourse.privacy.hierarchy import Hierarchy
from databourse.product import assembly
from databourse.product.assembly import Built, build
from databourse.product.package import content_hash, schema_of, transfer_facts, write_parquet
from databourse.product.partitions import Partition, plan_partitions, read_partition
from databourse.product.productize import productize

KEY = b"partition-test-key-0123456789abcdef!"
AGE = Hierarchy(tuple((str(a), f"{a // 10 * 10}s", "*") for a in range(18, 90)), name="age")
ZIPS = [f"5{d}{e}00" for d in range(4) for e in range(3)]
ZIP = Hierarchy(tuple((z, z[:2] + "***", "*") for z in ZIPS), name="zip")
HIERARCHIES = {"age": AGE, "zip": ZIP}
DECLARED = {"person_id": "CN_RESIDENT_ID", "phone": "PHONE"}


def people(n: int, seed: int = 11) -> pa.Table:
    """Records with nulls, skewed classes, a date, a float and personal columns."""
    rnd = random.Random(seed)

    def maybe(value: Any, share: float = 0.03) -> Any:
        return None if rnd.random() < share else value

    return pa.table({
        "person_id": [f"P{rnd.randint(0, n // 3):07d}" for _ in range(n)],
        "name": [f"name-{i}" for i in range(n)],
        "age": [maybe(rnd.choice([rnd.randint(18, 89), 30, 31, 45])) for _ in range(n)],
        "zip": [maybe(rnd.choice(ZIPS[: rnd.choice([3, 12])])) for _ in range(n)],
        "sex": [maybe(rnd.choice("FM"), 0.01) for _ in range(n)],
        "visit": [dt.date(2026, 1, 1) + dt.timedelta(days=rnd.randint(0, 400)) for _ in range(n)],
        "disease": [rnd.choice(["flu", "flu", "cold", "hiv", "ulcer"]) for _ in range(n)],
        "income": [rnd.choice([10, 20, 30, 40, 80, 120]) for _ in range(n)],
        "amount": [maybe(round(rnd.uniform(0, 500), 2)) for _ in range(n)],
        "phone": [f"+60 12-{rnd.randint(0, 9999999):07d}" for _ in range(n)],
    })  # fmt: skip


def product(columns: dict[str, Any], **extra: Any) -> ProductSpec:
    return ProductSpec.model_validate({
        "id": "partitioned", "name": "P", "source": {"provider": "p", "dataset": "d"},
        "columns": {"name": "drop", **columns}, "terms": {"purposes": ["research"]},
        "markets": ["SG"], **extra,
    })  # fmt: skip


RULES = {
    "person_id": {"action": "pseudonymize", "rename": "person_ref"},
    "visit": {"date": "month", "rename": "visit_month"},
    "amount": {"noise": {"scale": 5.0}},
    "phone": {"mask": {"keep_last": 2}},
    "income": {"top": 100, "bottom": 20},
}
PRODUCTS = {
    "k-suppressing": product(
        {**RULES, "age": {"band": 10}, "zip": {"prefix": 2}, "sex": "keep"},
        privacy={"quasi_identifiers": ["age", "zip", "sex"], "k": 6, "max_suppression": 0.3},
    ),
    "l-and-t": product(
        {"age": {"band": 20}, "sex": "keep", "disease": "keep", "income": "keep"},
        privacy={
            "quasi_identifiers": ["age", "sex"],
            "k": 3,
            "max_suppression": 0.6,
            "sensitive_attributes": ["disease", "income"],
            "l": 3,
            "t": 0.35,
        },
    ),
    "lattice-entropy-l": product(
        {
            "age": {"hierarchy": "age.csv"},
            "zip": {"hierarchy": "zip.csv"},
            "sex": "keep",
            "disease": "keep",
            "person_id": "pseudonymize",
        },
        privacy={
            "quasi_identifiers": ["age", "zip", "sex"],
            "k": 5,
            "max_suppression": 0.1,
            "sensitive_attributes": ["disease"],
            "l": 2,
            "l_diversity": "entropy",
        },
    ),
    "hive-files": product(
        {**RULES, "age": {"hierarchy": "age.csv", "level": 1}, "sex": "keep"},
        privacy={"quasi_identifiers": ["age", "sex"], "k": 2, "max_suppression": 0.2},
        packaging={"partition_by": "sex", "max_rows_per_file": 1000, "row_group_rows": 1000},
    ),
    "no-model": product(RULES, packaging={"max_rows_per_file": 1000, "row_group_rows": 1000}),
    "aggregate": product(
        {"zip": {"prefix": 2}, "sex": "keep", "amount": "keep", "income": "keep"},
        type="aggregate",
        aggregate={
            "dimensions": ["zip", "sex"],
            "min_cell": 40,
            "epsilon": 1.0,
            "measures": [{"column": "amount", "stats": ["mean", "p50", "max"]}],
        },
        privacy={"quasi_identifiers": ["zip", "sex"], "k": 3, "max_suppression": 0.2},
        packaging={"partition_by": "sex"},
    ),
}


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 3000 records staged in small row groups, and in a single one."""
    folder = tmp_path_factory.mktemp("staged")
    table = people(3000)
    out = {"small groups": folder / "small.parquet", "one group": folder / "one.parquet"}
    pq.write_table(table, out["small groups"], row_group_size=250)
    pq.write_table(table, out["one group"])
    return out


def built(source: Path, spec: ProductSpec, rows: int, tmp: Path) -> Built:
    return build(
        source, spec, DECLARED, KEY, HIERARCHIES, tmp / "work", tmp / "out", rows, origin="CN"
    )


def figures(b: Built) -> dict[str, Any]:
    """Everything the manifest gets from a build, but the search's running time."""
    out = json.loads(json.dumps(b.to_json()))
    out["privacy"].get("search", {}).pop("seconds", None)
    return out


@pytest.mark.parametrize("name", PRODUCTS)
def test_any_partitioning_builds_the_whole_tables_bytes(
    name: str, staged: dict[str, Path], tmp_path: Path
) -> None:
    spec = PRODUCTS[name]
    one = built(staged["one group"], spec, 10**9, tmp_path / "one")
    assert len(plan_partitions(staged["one group"], 10**9)) == 1
    for layout, rows in (("small groups", 400), ("small groups", 170), ("one group", 700)):
        assert len(plan_partitions(staged[layout], rows)) > 3
        many = built(staged[layout], spec, rows, tmp_path / f"{layout}-{rows}")
        assert figures(many) == figures(one), (layout, rows)
        for f in many.files:
            data = (tmp_path / f"{layout}-{rows}" / "out" / f.path).read_bytes()
            assert data == (tmp_path / "one" / "out" / f.path).read_bytes()

    # the whole-table build, written as package.write_parquet writes a table, gives the same
    made = productize(pq.read_table(staged["one group"]), spec, DECLARED, KEY, HIERARCHIES)
    pack = spec.packaging
    files = write_parquet(
        made.table.combine_chunks(), tmp_path / "whole", pack.partition_by,
        pack.max_rows_per_file, pack.row_group_rows,
    )  # fmt: skip
    remaining = made.personal_data["remaining"]
    schema = [
        {**c, "personal_data": remaining[c["name"]]} if c["name"] in remaining else c
        for c in schema_of(made.table)
    ]
    assert files == one.files
    facts = transfer_facts("CN", remaining, made.personal_data["individuals"], False)
    assert content_hash(files, schema, spec.fingerprint(), facts) == one.content_hash
    privacy = {k: v for k, v in one.privacy.items() if k != "verified"}
    privacy.get("search", {}).pop("seconds", None)
    made.privacy.get("search", {}).pop("seconds", None)
    assert made.privacy == privacy
    facts_fields = {"sensitive_categories": facts["sensitive_categories"], "important_data": False}
    rescanned = {k: v for k, v in one.personal_data.items() if k != "embedded"}  # written files'
    assert {**made.personal_data, **facts_fields} == rescanned
    assert one.rows == made.table.num_rows


def test_the_products_exercise_what_they_claim(staged: dict[str, Path], tmp_path: Path) -> None:
    """Guard the parametrized test against products that would not decide anything."""
    got = {
        name: built(staged["small groups"], spec, 500, tmp_path / name)
        for name, spec in PRODUCTS.items()
    }
    assert got["k-suppressing"].privacy["suppressed"] > 0
    assert got["k-suppressing"].personal_data["individuals"] > 500
    assert got["l-and-t"].privacy["suppressed"] > 0
    assert got["l-and-t"].privacy["lowest_l"] >= 3 and got["l-and-t"].privacy["highest_t"] <= 0.35
    search = got["lattice-entropy-l"].privacy["search"]
    assert search["nodes_total"] == 3 * 3 * 1 and search["satisfied"]
    assert got["lattice-entropy-l"].privacy["verified"]["satisfied"] is True
    assert {f.path.split("/")[0] for f in got["hive-files"].files} == {
        "sex=F", "sex=M", "sex=__HIVE_DEFAULT_PARTITION__",
    }  # fmt: skip
    assert len(got["no-model"].files) == 3 and got["no-model"].privacy["model"] is None
    assert got["aggregate"].privacy["aggregate"]["cells"] > 4


def test_noise_is_drawn_by_dataset_position(staged: dict[str, Path], tmp_path: Path) -> None:
    spec = product({"amount": {"noise": {"scale": 5.0}}})
    whole = built(staged["one group"], spec, 10**9, tmp_path / "a")
    table = pq.read_table(tmp_path / "a" / "out")
    source = pq.read_table(staged["one group"], columns=["amount"])
    delta = [
        None if a is None else b - a
        for a, b in zip(source["amount"].to_pylist(), table["amount"].to_pylist(), strict=True)
    ]
    assert whole.rows == 3000 and len({d for d in delta if d is not None}) > 2500


def test_read_partition_covers_every_record_once(staged: dict[str, Path]) -> None:
    for rows in (170, 400, 700, 3000):
        parts = plan_partitions(staged["small groups"], rows)
        seen = [
            (offset, t.num_rows)
            for p in parts
            for offset, t in read_partition(staged["small groups"], p, ["name"])
        ]
        names = [
            n
            for p in parts
            for _, t in read_partition(staged["small groups"], p, ["name"])
            for n in t["name"].to_pylist()
        ]
        assert names == [f"name-{i}" for i in range(3000)]
        assert [o for o, _ in seen] == sorted(o for o, _ in seen)
    assert plan_partitions(staged["one group"], 700)[1] == Partition(1, 700, 700)


def test_empty_staged_file_makes_one_empty_file(tmp_path: Path) -> None:
    pq.write_table(people(5).slice(0, 0), tmp_path / "empty.parquet")
    b = built(tmp_path / "empty.parquet", PRODUCTS["no-model"], 100, tmp_path)
    assert [f.path for f in b.files] == ["part-00000.parquet"] and b.rows == 0
    assert pq.read_table(tmp_path / "out").schema.names == [c["name"] for c in b.schema]


def test_individuals_counted_in_bounded_rounds(
    staged: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = PRODUCTS["k-suppressing"]
    exact = built(staged["small groups"], spec, 400, tmp_path / "a").personal_data["individuals"]
    monkeypatch.setattr(assembly, "DISTINCT_PER_ROUND", 97)  # about 10 rounds
    rounds = built(staged["small groups"], spec, 400, tmp_path / "b").personal_data["individuals"]
    assert rounds == exact > 500


def test_model_failure_and_bad_columns_fail_before_writing(
    staged: dict[str, Path], tmp_path: Path
) -> None:
    strict = product(
        {"age": "keep", "zip": "keep"},
        privacy={"quasi_identifiers": ["age", "zip"], "k": 50, "max_suppression": 0.01},
    )
    with pytest.raises(PrivacyModelFailed) as info:
        built(staged["small groups"], strict, 400, tmp_path / "a")
    assert info.value.rows == 3000 and not (tmp_path / "a" / "out").exists()
    missing = product({"age": "keep", "not_there": "keep"})
    with pytest.raises(IngestRejected):
        built(staged["small groups"], missing, 400, tmp_path / "b")
    unknown_qi = product({"age": "keep"}, privacy={"quasi_identifiers": ["zip"], "k": 2})
    with pytest.raises(PrivacyModelFailed) as bad:
        built(staged["small groups"], unknown_qi, 400, tmp_path / "c")
    assert bad.value.columns == ["zip"]


# ---------------------------------------------------------------- the Prefect flow
def test_partition_runner_follows_the_settings() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.runners import partition_runner

    threads = partition_runner(RunSettings())
    assert isinstance(threads, ThreadPoolTaskRunner)
    assert threads._max_workers == (os.cpu_count() or 1)  # not one thread per partition
    bounded = partition_runner(RunSettings(partition_threads=3))
    assert isinstance(bounded, ThreadPoolTaskRunner) and bounded._max_workers == 3
    local = partition_runner(RunSettings(task_runner="dask", dask_workers=3))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"]
    remote = partition_runner(RunSettings(task_runner="dask", dask_address="tcp://10.0.0.5:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"


@pytest.mark.prefect
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dask/distributed internals
def test_flow_on_threads_and_on_dask_workers_builds_the_same_version(
    prefect_api: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sz-retail-baskets (pseudonyms, suppression) in 6 partitions: threads, then 2 Dask worker
    processes reached through settings.runs.dask_address; the same files, hash and version."""
    from helpers import two_dask_workers

    from databourse_samples.demo import generate_drops
    from flows.build_product import build_product
    from flows.ingest_dataset import ingest_dataset
    from flows.validate_dataset import validate_dataset
    from tasks import resources

    drop = next(
        d for d in generate_drops(tmp_path / "drops", scale=0.2) if d.provider == "sz-retail"
    )
    ingested = ingest_dataset("sz-retail", "customer_orders", str(drop.path))
    validate_dataset("sz-retail", "customer_orders", ingested["ingest_id"])
    threads = build_product("sz-retail-baskets", ingested["ingest_id"], partition_rows=100)
    store = project / "state" / "store"
    version = store / "products" / "sz-retail-baskets" / threads["version"]
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["content_hash"] == threads["content_hash"]
    assert manifest["personal_data"]["individuals"] > 0

    cfg = resources.config()  # this process's settings: the flow picks the runner, not workers
    with two_dask_workers() as workers:
        runs = RunSettings(task_runner="dask", dask_address=workers["address"])
        dasked = dataclasses.replace(cfg, settings=cfg.settings.model_copy(update={"runs": runs}))
        monkeypatch.setattr(resources, "config", lambda: dasked)
        dask = build_product("sz-retail-baskets", ingested["ingest_id"], partition_rows=100)
    worked, pids = workers["tasks"], workers["pids"]
    assert all(n > 0 for n in worked.values()) and len(worked) == 2  # both workers ran tasks
    assert os.getpid() not in pids.values()
    assert (dask["content_hash"], dask["rows"], dask["version"]) == (
        threads["content_hash"], threads["rows"], threads["version"],
    )  # fmt: skip
    assert dask["new"] is False  # the same content: nothing new to publish
    staged = store / "staging" / "products" / "sz-retail-baskets" / threads["content_hash"]
    for f in manifest["files"]:
        assert (staged / f["path"]).is_file()
    assert not (store / "staging" / "products" / "sz-retail-baskets" / "work").exists()
    assert not list((project / "state" / "work" / "sz-retail-baskets").iterdir())  # dropped


def test_work_folder_on_s3_downloads_reads_and_uploads_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Dask worker on another machine does: the work folder lives in the store only."""
    from s3_server import make_bucket, moto_server, use_dummy_aws_env

    from databourse.storage.s3 import S3Store
    from tasks.building import remove_work_folder, work_folder

    use_dummy_aws_env(monkeypatch)
    prefix = "staging/products/p/work/i-1"
    with moto_server() as endpoint:
        make_bucket(endpoint, "work")
        store = S3Store("work", "root", endpoint_url=endpoint)
        with work_folder(store, prefix, {}) as first:
            (first / "counts").mkdir()
            (first / "counts" / "00000.parquet").write_bytes(b"pass 1")
        sealed = {"counts/00000.parquet": hashlib.sha256(b"pass 1").hexdigest()}
        with work_folder(store, prefix, sealed) as second:
            assert second != first and not first.exists()
            assert (second / "counts" / "00000.parquet").read_bytes() == b"pass 1"
            (second / "decision.json").write_text("{}")
        keys = sorted(o.key for o in store.list(f"{prefix}/"))
        assert keys == [f"{prefix}/counts/00000.parquet", f"{prefix}/decision.json"]
        with pytest.raises(RuntimeError), work_folder(store, prefix, {}) as failing:
            (failing / "half.arrow").write_bytes(b"x")
            raise RuntimeError("the task failed: nothing of it is uploaded")
        assert remove_work_folder(store, prefix) == 2
        assert not list(store.list(f"{prefix}/"))

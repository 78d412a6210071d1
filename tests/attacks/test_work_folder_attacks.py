"""A store writer swaps a build's intermediate files between passes (issue 15, pass 6 finding 1).

Someone who can write the object store, but not the catalog or the keys, rewrote pass 2's
`segments/*.arrow` (same schema, same batch sizes) between pass 2 and pass 3 with `customer_ref`
values of their choosing; the version was published with them. Each test runs a real build of
sz-retail-baskets (ingest, validate, build flows) in a project of its own and performs the
store writer's rewrite at a pass boundary, through store paths only:
- embedded store: the work folder is no longer in the store, so nothing there changes what is
  published;
- S3: the rewritten segment is caught by the sha256 its pass recorded: the build stops naming
  the file, nothing is staged or published, and the refusal is audited;
- a staged product file swapped after the build is refused when the version is published;
- embedded store: the staged dataset swapped between its check and a pass's read (a race) is not
  what the passes read: they read the build's private copy, checked once copied;
- the validation's gates: the staged file swapped after the plan's checked read is refused, and
  on S3 a partition's quality tally rewritten in the store before the check that finishes it is
  refused (issue 23).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import make_project

from databourse.errors import ObjectChanged
from databourse_samples.demo import generate_drops

pytestmark = pytest.mark.prefect

PRODUCT = "sz-retail-baskets"
PLANTED = "5eed" * 16  # looks like a 64-hex HMAC pseudonym; no key made it
STAGE = "staging/products/" + PRODUCT


@contextmanager
def project_resources(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`tasks.resources` on this test's own project (config, store, catalog)."""
    from tasks import resources

    monkeypatch.setenv("DATABOURSE_CONFIG_DIR", str(project / "configs"))
    monkeypatch.setattr(resources, "_BOUND", set())  # keys are bound to this project's store
    cached = (resources.config, resources.store, resources.catalog)
    for fn in cached:
        fn.cache_clear()
    try:
        yield
    finally:
        resources.catalog().close()
        for fn in cached:
            fn.cache_clear()


@contextmanager
def s3_exchange(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real S3 server process (moto) with the bucket `exchange`, the project's store at
    s3://exchange/zones; a boto3 client of it."""
    from s3_server import client, make_bucket, moto_server, use_dummy_aws_env

    use_dummy_aws_env(monkeypatch)
    with moto_server() as endpoint:
        make_bucket(endpoint, "exchange")
        monkeypatch.setenv("DATABOURSE_STORE_ROOT", "s3://exchange/zones")
        monkeypatch.setenv("DATABOURSE_S3_ENDPOINT_URL", endpoint)
        yield client(endpoint)


def listed(s3: Any, prefix: str) -> list[str]:
    """The bucket's keys under `prefix`, sorted."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="exchange", Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def ingested(tmp_path: Path) -> str:
    """sz-retail's orders ingested and validated; the ingest id."""
    from flows.ingest_dataset import ingest_dataset
    from flows.validate_dataset import validate_dataset

    drops = generate_drops(tmp_path / "drops", scale=0.2)
    drop = next(d for d in drops if d.provider == "sz-retail")
    done = ingest_dataset("sz-retail", "customer_orders", str(drop.path))
    validate_dataset("sz-retail", "customer_orders", done["ingest_id"])
    return str(done["ingest_id"])


def forged_segment(data: bytes) -> bytes:
    """The store writer's segment: same schema and batch sizes, `customer_ref` replaced."""
    reader = pa.ipc.open_file(pa.BufferReader(data))
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.ipc.new_file(sink, reader.schema, options=options) as writer:
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            at = batch.schema.get_field_index("customer_ref")
            forged = pa.array([PLANTED] * batch.num_rows, batch.column(at).type)
            writer.write_batch(batch.set_column(at, "customer_ref", forged))
    return bytes(sink.getvalue().to_pybytes())


def before_pass3(
    monkeypatch: pytest.MonkeyPatch, store_writer: Callable[[], list[str]]
) -> list[str]:
    """Run `store_writer` between pass 2 (write-records) and pass 3 (lay out, write files); the
    keys it rewrote are appended to the list returned."""
    import flows.build_product as flows

    rewritten: list[str] = []
    lay_out = flows.lay_out_files

    def swapped(plan: dict[str, Any], decided: dict[str, Any], written: Any) -> Any:
        rewritten.extend(store_writer())
        return lay_out(plan, decided, written)

    monkeypatch.setattr(flows, "lay_out_files", swapped)
    return rewritten


def published_refs(store_root: Path, version: str) -> set[str]:
    """The pseudonyms a published version holds (its manifest's files)."""
    folder = store_root / "products" / PRODUCT / version
    manifest = json.loads((folder / "manifest.json").read_text())
    refs: set[str] = set()
    for entry in manifest["files"]:
        refs.update(pq.read_table(folder / entry["path"], columns=["customer_ref"])[0].to_pylist())
    return refs


def test_embedded_store_writer_cannot_swap_work_files_between_passes(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `.arrow` the store holds under staging/ is rewritten before pass 3: none is the
    build's (its work folder is private, outside the store), so the published version is the
    one an untouched build publishes, without a planted pseudonym."""
    import flows.build_product as flows

    project = make_project(tmp_path / "project")
    store_root = project / "state" / "store"
    untouched = flows.lay_out_files
    seen: list[tuple[int, int | None]] = []  # pass 2's private segments, and their folder's mode

    def store_writer() -> list[str]:
        found = sorted(p for p in (store_root / "staging").rglob("*.arrow") if p.is_file())
        for path in found:
            path.write_bytes(forged_segment(path.read_bytes()))
        private = project / "state" / "work" / PRODUCT
        segments = list(private.rglob("segments/*.arrow")) if private.is_dir() else []
        seen.append((len(segments), private.stat().st_mode & 0o777 if segments else None))
        return [p.relative_to(store_root).as_posix() for p in found]

    with project_resources(project, monkeypatch):
        ingest_id = ingested(tmp_path)
        rewritten = before_pass3(monkeypatch, store_writer)
        attacked = flows.build_product(PRODUCT, ingest_id, partition_rows=100)
        monkeypatch.setattr(flows, "lay_out_files", untouched)  # the untouched build, to compare
        clean = flows.build_product(PRODUCT, ingest_id, partition_rows=100)
    assert PLANTED not in published_refs(store_root, attacked["version"])
    assert rewritten == []  # nothing of the build's work was within the store writer's reach
    assert seen[0][0] > 0 and seen[0][1] == 0o700  # pass 2 wrote them to a private folder
    assert (clean["content_hash"], clean["version"]) == (
        attacked["content_hash"], attacked["version"],
    )  # fmt: skip
    assert clean["new"] is False
    assert not (store_root / STAGE / "work").exists()
    assert not list((project / "state" / "work" / PRODUCT).iterdir())  # dropped after the build


def test_s3_segment_rewritten_between_passes_stops_the_build(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On S3 the work stays in the store; a segment rewritten there after pass 2 differs from
    the sha256 pass 2 recorded: the build fails naming it, and nothing is staged or published."""
    from flows.build_product import build_product
    from tasks import resources

    project = make_project(tmp_path / "project")
    with s3_exchange(monkeypatch) as s3:

        def keys(prefix: str) -> list[str]:
            return listed(s3, prefix)

        def store_writer() -> list[str]:
            found = [k for k in keys(f"zones/{STAGE}/work/") if "/segments/" in k]
            for key in found:
                data = s3.get_object(Bucket="exchange", Key=key)["Body"].read()
                s3.put_object(Bucket="exchange", Key=key, Body=forged_segment(data))
            return found

        with project_resources(project, monkeypatch):
            ingest_id = ingested(tmp_path)
            rewritten = before_pass3(monkeypatch, store_writer)
            with pytest.raises(ObjectChanged) as refused:
                build_product(PRODUCT, ingest_id, partition_rows=100)
            events = resources.catalog().audit_history()
        left = keys(f"zones/{STAGE}/") + keys("zones/products/")
    assert rewritten, "pass 2 uploaded no segment to the store"
    message = str(refused.value)
    named = [k for k in rewritten if f"s3://exchange/{k}:" in message]
    assert named and "work file changed after the pass that wrote it" in message
    assert PLANTED not in message
    assert left == []  # work dropped; no content-hash folder staged; no version
    assert any(
        e["kind"] == "quarantine" and e["detail"].get("stage") == "work"
        and e["detail"].get("key") == f"s3://exchange/{named[0]}"
        for e in events
    )  # fmt: skip


def test_staged_product_file_swapped_before_publishing_is_refused(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file under staging/products/<p>/<hash>/ rewritten after the build staged it: the
    version's files are checked against the build's sha256 before anything is published."""
    import flows.build_product as flows

    project = make_project(tmp_path / "project")
    store_root = project / "state" / "store"
    package = flows.package_version
    swapped: list[Path] = []

    def plant_then_package(product_id: str, anonymized: dict[str, Any]) -> Any:
        staged = store_root / anonymized["staged_prefix"]
        for entry in anonymized["files"]:
            path = staged / entry["path"]
            table = pq.read_table(path)
            at = table.schema.get_field_index("customer_ref")
            forged = pa.array([PLANTED] * table.num_rows, table.column(at).type)
            pq.write_table(table.set_column(at, "customer_ref", forged), path)
            assert hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]
            swapped.append(path)
        return package(product_id, anonymized)

    with project_resources(project, monkeypatch):
        ingest_id = ingested(tmp_path)
        monkeypatch.setattr(flows, "package_version", plant_then_package)
        with pytest.raises(ObjectChanged) as refused:
            flows.build_product(PRODUCT, ingest_id, partition_rows=100)
    assert swapped
    assert "staged product file changed after the build" in str(refused.value)
    assert PLANTED not in str(refused.value)
    published = store_root / "products" / PRODUCT
    assert not published.exists() or not [p for p in published.rglob("*") if p.is_file()]


def test_embedded_staged_file_swapped_after_its_check_is_not_read(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race a store writer wins on the embedded store: the staged Parquet is the ingested one
    whenever it is checked and a forged one (same schema and row groups, other customer ids)
    right after. The passes read a private copy checked once copied, so the version is the one
    an untouched build publishes. (Partitions one at a time: the swap is deterministic.)"""
    import flows.build_product as flows
    import tasks.staged

    project = make_project(tmp_path / "project")
    settings = project / "configs" / "settings.yaml"
    text = settings.read_text()
    settings.write_text(text.replace("partition_threads: null", "partition_threads: 1"))
    assert "partition_threads: 1" in settings.read_text()
    store_root = project / "state" / "store"
    with project_resources(project, monkeypatch):
        ingest_id = ingested(tmp_path)
        staged = next((store_root / "staging" / "sz-retail" / "customer_orders").rglob("*.parquet"))
        original = staged.read_bytes()
        forged = forged_staged(staged)
        checks: list[Path] = []

        def racing(check: Callable[..., None]) -> Callable[..., None]:
            def checked_then_swapped(path: Path, *args: Any) -> None:
                staged.write_bytes(original)  # what every check sees
                check(path, *args)
                checks.append(path)
                staged.write_bytes(forged)  # what a read after the check would get

            return checked_then_swapped

        hooks: list[tuple[Any, Callable[..., None]]] = [(tasks.staged, tasks.staged.check_staged)]
        try:
            import tasks.work_files as work_files
        except ImportError:  # the code before the fix has no private copy
            pass
        else:
            hooks.append((work_files, work_files.check_staged))
        for module, check in hooks:
            monkeypatch.setattr(module, "check_staged", racing(check))
        attacked = flows.build_product(PRODUCT, ingest_id, partition_rows=100)
        for module, check in hooks:  # the untouched build, to compare
            monkeypatch.setattr(module, "check_staged", check)
        staged.write_bytes(original)
        clean = flows.build_product(PRODUCT, ingest_id, partition_rows=100)
    assert checks  # the store writer raced every check
    assert (clean["content_hash"], clean["new"]) == (attacked["content_hash"], False)


def forged_staged(path: Path) -> bytes:
    """The staged Parquet with every customer id replaced, row group by row group."""
    source = pq.ParquetFile(path)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, source.schema_arrow) as writer:
        for group in range(source.num_row_groups):
            table = source.read_row_group(group)
            at = table.schema.get_field_index("customer_id_number")
            ids = pa.array(["PLANTED-ID"] * table.num_rows, table.column(at).type)
            writer.write_table(table.set_column(at, "customer_id_number", ids))
    return bytes(sink.getvalue().to_pybytes())


def test_staged_file_swapped_after_the_validation_plan_is_refused(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race against the gates: the staged Parquet is the ingested one when the validation
    checks it and a forged one right after (the customer ids replaced: no personal data left to
    find). Neither gate may pass on the forged bytes: the quality suite and the partitioned scan
    read the store's file in byte ranges, each block checked against the hashes of the checked
    read, so the validation fails naming the staged object, and the refusal is audited.

    On the code before issue 23's partitioned scan, both gates read the file in place after
    their check, so the forged bytes reached their reads (this test then failed on a torn
    Parquet read, no ObjectChanged)."""
    import tasks.staged
    from flows.ingest_dataset import ingest_dataset
    from flows.validate_dataset import validate_dataset
    from tasks import resources

    project = make_project(tmp_path / "project")
    store_root = project / "state" / "store"
    drops = generate_drops(tmp_path / "drops", scale=0.2)
    drop = next(d for d in drops if d.provider == "sz-retail")
    with project_resources(project, monkeypatch):
        done = ingest_dataset("sz-retail", "customer_orders", str(drop.path))
        staged = next((store_root / "staging" / "sz-retail" / "customer_orders").rglob("*.parquet"))
        original = staged.read_bytes()
        forged = forged_staged(staged)
        checks: list[str] = []

        def racing(check: Callable[..., None]) -> Callable[..., None]:
            def checked_then_swapped(*args: Any) -> None:
                staged.write_bytes(original)  # what every check sees
                check(*args)
                checks.append(check.__name__)
                staged.write_bytes(forged)  # what a read after the check gets

            return checked_then_swapped

        hooks: list[tuple[Any, str]] = [(tasks.staged, "check_staged")]
        try:
            import databourse.steps.scanning  # noqa: F401  (the partitioned scan)
        except ImportError:  # the code before it
            pass
        else:  # its plan checks the file in steps.building.staged_blocks
            import databourse.steps.building as building

            hooks.append((building, "check_digest"))
        for module, name in hooks:
            monkeypatch.setattr(module, name, racing(getattr(module, name)))
        with pytest.raises(ObjectChanged) as refused:
            validate_dataset("sz-retail", "customer_orders", done["ingest_id"])
        events = resources.catalog().audit_history()
    assert checks  # the store writer raced the check
    work = project / "state" / "work" / "validations"
    assert not [p for p in work.rglob("*") if p.is_file()]  # every part done, the work dropped
    message = str(refused.value)
    assert message.startswith(f"{staged.as_uri()}: bytes ") and "changed after" in message
    assert "PLANTED" not in message
    assert any(
        e["kind"] == "quarantine" and e["detail"].get("stage") == "staged"
        and e["detail"].get("provider") == "sz-retail"
        for e in events
    )  # fmt: skip


def test_s3_quality_tally_rewritten_before_the_check_is_refused(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quality suite in partitions (issue 23): on S3 each partition's tally (counts,
    extremes, key hashes) is a work file in the store. A store writer who zeroes every
    unexpected count there, between the partitions' tallies and the check that finishes them,
    would turn a failing dataset into a passing one: the check refuses the tally instead,
    naming the file, and the refusal is audited."""
    import importlib

    from flows.ingest_dataset import ingest_dataset
    from tasks import resources

    flow_module = importlib.import_module("flows.validate_dataset")
    project = make_project(tmp_path / "project")
    with s3_exchange(monkeypatch) as s3:
        rewritten: list[str] = []

        def store_writer() -> None:
            for key in listed(s3, "zones/staging/validations/"):
                if "/quality/" in key and key.endswith(".json"):
                    tally = json.loads(s3.get_object(Bucket="exchange", Key=key)["Body"].read())
                    for counts in tally["counts"].values():
                        counts["unexpected"] = counts["failed_batches"] = 0
                    tally["rows"] += 1  # the bytes differ even where nothing was unexpected
                    s3.put_object(Bucket="exchange", Key=key, Body=json.dumps(tally).encode())
                    rewritten.append(key)

        check = flow_module.check_quality

        class Raced:
            """check-quality, submitted once the store writer has rewritten the tallies."""

            def submit(self, *args: Any, **kwargs: Any) -> Any:
                store_writer()
                return check.submit(*args, **kwargs)

        drop = next(
            d for d in generate_drops(tmp_path / "drops", scale=0.2) if d.provider == "sz-retail"
        )
        with project_resources(project, monkeypatch):
            done = ingest_dataset("sz-retail", "customer_orders", str(drop.path))
            monkeypatch.setattr(flow_module, "check_quality", Raced())
            with pytest.raises(ObjectChanged) as refused:
                flow_module.validate_dataset(
                    "sz-retail", "customer_orders", done["ingest_id"], partition_rows=100
                )
            events = resources.catalog().audit_history()
    assert len(rewritten) >= 2, "the partitions uploaded no tally to the store"
    message = str(refused.value)
    named = [k for k in rewritten if f"s3://exchange/{k}:" in message]
    assert named and "work file changed after the pass that wrote it" in message
    assert any(
        e["kind"] == "quarantine" and e["detail"].get("stage") == "work"
        and e["detail"].get("key") == f"s3://exchange/{named[0]}"
        for e in events
    )  # fmt: skip


def test_s3_corpus_documents_rewritten_between_passes_are_refused(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corpus build in partitions (issues 23 and 24): on S3 each partition's prepared
    documents are a work file in the store until the finish pass redacts them. A store writer who
    swaps in documents of their own between the dedup and the finish (texts carrying a MyKad
    number and a phone the filters never saw) is refused: the finish pass names the file, the
    refusal is audited, and no version is made."""
    import importlib

    from databourse_samples.demo import generate_corpus_drop
    from flows.ingest_dataset import ingest_dataset
    from tasks import resources

    flow_module = importlib.import_module("flows.build_corpus")
    project = make_project(tmp_path / "project")
    planted = "Hubungi saya 900101-14-5678 atau +60 12-345 6789."
    with s3_exchange(monkeypatch) as s3:
        rewritten: list[str] = []

        def store_writer() -> None:
            for key in listed(s3, "zones/staging/products/my-chat-corpus/work/"):
                if key.endswith(".arrow") and not key.endswith("-out.arrow"):
                    data = s3.get_object(Bucket="exchange", Key=key)["Body"].read()
                    table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
                    texts = pa.array([planted] * table.num_rows, pa.large_string())
                    table = table.set_column(table.schema.get_field_index("text"), "text", texts)
                    sink = pa.BufferOutputStream()
                    with pa.ipc.new_file(sink, table.schema) as writer:
                        writer.write_table(table)
                    s3.put_object(Bucket="exchange", Key=key, Body=sink.getvalue().to_pybytes())
                    rewritten.append(key)

        finish = flow_module.finish_corpus_part

        class Raced:
            """finish-corpus-part, mapped once the store writer has swapped the documents."""

            def map(self, *args: Any, **kwargs: Any) -> Any:
                store_writer()
                return finish.map(*args, **kwargs)

        drop = generate_corpus_drop(tmp_path / "drops", scale=0.25)
        with project_resources(project, monkeypatch):
            done = ingest_dataset("my-chatdesk", "chat_transcripts", str(drop.path))
            monkeypatch.setattr(flow_module, "finish_corpus_part", Raced())
            with pytest.raises(ObjectChanged) as refused:
                flow_module.build_corpus("my-chat-corpus", done["ingest_id"], partition_rows=40)
            events = resources.catalog().audit_history()
            versions = resources.catalog().show("my-chat-corpus")["versions"]
        left = listed(s3, "zones/staging/products/my-chat-corpus/work/")
    assert len(rewritten) >= 2, "the partitions uploaded no documents to the store"
    message = str(refused.value)
    named = [k for k in rewritten if f"s3://exchange/{k}:" in message]
    assert named and "work file changed after the pass that wrote it" in message
    assert "900101" not in message
    assert any(
        e["kind"] == "quarantine" and e["detail"].get("stage") == "work"
        and e["detail"].get("key") == f"s3://exchange/{named[0]}"
        for e in events
    )  # fmt: skip
    assert versions == [] and left == []  # no version; the work folder dropped

"""Faults injected for real, then the invariants: nothing lost or duplicated, a re-run finishes.

Each test breaks one thing (a SIGKILL of a child process at a named point, an S3 server answering
500/503/SlowDown or going away, a locked or dropped catalog database, a full disk, two nightly
runs at once), re-runs the work, and checks what issue 10 asks after every fault: each raw
object's sha256 matches its `_ingest.json`, no version without a manifest is visible or published,
`check_all` (what `bourse verify --all` runs) finds no error, and the audit chain verifies.

Run as a script this file is the child process: `python test_faults.py JOB_JSON`. `FAULT_AT`
names where the child kills itself; the hooks wrap functions in the child only, never in the
production code. Kills during ingest come from the parent, when it sees the write start.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.catalog.database import Catalog
from databourse.config import DatasetSpec, UsageTerms, load_config
from databourse.consistency.report import ConsistencyReport
from databourse.consistency.verify import check_all
from databourse.ingest.files import ingest_file, sha256_file
from databourse.ingest.records import IngestResult
from databourse.product.package import (
    MANIFEST,
    build_manifest,
    content_hash,
    manifest_sha256,
    publish_files,
    read_manifest,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.storage import zones
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore, put_file_once
from databourse.transfer.odrl import usage_policy

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
PROVIDER, DATASET = "prov", "ds"
SPEC = {
    "columns": [
        {"name": "id", "type": "string", "nullable": False},
        {"name": "n", "type": "int64"},
        {"name": "note", "type": "string"},
    ]
}
CONFIG_SHA = "c" * 64  # stands in for a product config's fingerprint
FACTS = transfer_facts("CN", {}, 0, False)  # the transfer facts inside every content hash here
CHILD_TIMEOUT_S = 120


# ----------------------------------------------------------------------------- the child side


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _audit_ingest(catalog: Catalog, result: IngestResult) -> None:
    """What the ingest task records after `ingest_file`: one event per new ingest."""
    if not result.duplicate:
        catalog.audit_append(
            "ingest",
            detail={
                "provider": result.provider,
                "dataset": result.dataset,
                "ingest_id": result.ingest_id,
                "sha256": result.sha256,
                "rows": result.rows,
                "file": result.source_name,
            },
        )


def package_version(
    store: ObjectStore, catalog: Catalog, product: str, table: pa.Table, rows_per_file: int
) -> dict[str, Any]:
    """The build and publish steps as tasks/packaging.py and tasks/publishing.py run them."""
    with tempfile.TemporaryDirectory() as tmp:  # anonymize: write, stage by content hash
        files = write_parquet(table, Path(tmp), max_rows_per_file=rows_per_file)
        schema = schema_of(table)
        chash = content_hash(files, schema, CONFIG_SHA, FACTS)
        staging = zones.product_staging_prefix(product, chash)
        for f in files:
            put_file_once(store, f"{staging}/{f.path}", Path(tmp) / f.path)
    catalog.ensure_product(product, product, PROVIDER, DATASET)  # package-version
    rec = catalog.reserve_version(product, chash, schema, table.num_rows)
    manifest_key = f"{zones.product_prefix(product, rec.version)}/{MANIFEST}"
    if read_manifest(store, product, rec.version) is None:
        manifest = _manifest(product, rec.version, chash, table, files)
        with tempfile.TemporaryDirectory() as tmp:
            for f in files:
                store.download(f"{staging}/{f.path}", Path(tmp) / f.path)
            publish_files(store, product, rec.version, Path(tmp), files, manifest)
    # Unlike tasks/packaging.py (only when it writes the manifest), on every run: a crash after
    # the manifest and before this line would otherwise leave the catalog without its URI.
    sha = manifest_sha256(store, product, rec.version)
    catalog.set_manifest(product, rec.version, store.uri(manifest_key), sha)
    catalog.publish_version(product, rec.version)  # decide-transfers
    catalog.set_availability(product, rec.version, "CN", "available", "domestic")
    return {"version": rec.version, "content_hash": chash, "new": rec.new}


def _manifest(
    product: str, version: str, chash: str, table: pa.Table, files: list[Any]
) -> dict[str, Any]:
    terms = UsageTerms(purposes=["research"])
    return build_manifest(
        product=product,
        version=version,
        content_hash=chash,
        schema=schema_of(table),
        rows=table.num_rows,
        files=files,
        lineage={
            "provider": PROVIDER,
            "dataset": DATASET,
            "origin": "CN",
            "product_config_sha256": CONFIG_SHA,
            "ingests": [{"ingest_id": "i", "sha256": CONFIG_SHA, "raw": "file:///raw"}],
        },
        quality={"success": True, "report": "file:///quality.json"},
        privacy={"model": None},
        personal_data={
            "remaining": {},
            "individuals": 0,
            "sensitive_categories": [],
            "important_data": False,
        },
        usage_terms=terms.model_dump(mode="json"),
        usage_policy=usage_policy(product, version, chash, terms, ["CN"]),
        markets=["CN"],
        schema_diff=None,
    )


def product_table(rows: int, salt: str = "") -> pa.Table:
    """A deterministic product table (the same rows give the same content hash)."""
    return pa.table(
        {"id": [f"{salt}r{i}" for i in range(rows)], "amount": [float(i % 97) for i in range(rows)]}
    )


def _hooks(fault: str) -> None:
    """Make this child kill itself at `fault` (wrapping functions of this process only)."""
    from sqlalchemy import event

    from databourse.storage.local import LocalStore

    calls: Counter[str] = Counter()
    put_file, put_bytes, write_table = LocalStore.put_file, LocalStore.put_bytes, pq.write_table
    publish = Catalog.publish_version

    def put_file_hook(self: LocalStore, key: str, path: Path, **kw: Any) -> Any:
        if fault == "package-upload" and key.startswith("products/"):
            calls[fault] += 1
            if calls[fault] == 2:  # one product file published, the next one not
                _die()
        return put_file(self, key, path, **kw)

    def put_bytes_hook(self: LocalStore, key: str, data: bytes, **kw: Any) -> Any:
        manifest = key.startswith("products/") and key.endswith(f"/{MANIFEST}")
        if fault == "before-manifest" and manifest:
            _die()
        info = put_bytes(self, key, data, **kw)
        if fault == "after-manifest" and manifest:
            _die()
        return info

    def write_table_hook(*args: Any, **kw: Any) -> Any:
        calls["write"] += 1
        if fault == "package-write" and calls["write"] == 2:
            _die()
        return write_table(*args, **kw)

    def publish_hook(self: Catalog, product: str, version: str) -> None:
        # SIGKILL with the UPDATE and the audit INSERT sent but not committed
        event.listen(self.engine, "commit", lambda _conn: _die())
        publish(self, product, version)

    LocalStore.put_file = put_file_hook  # type: ignore[method-assign]
    LocalStore.put_bytes = put_bytes_hook  # type: ignore[method-assign]
    pq.write_table = write_table_hook
    if fault == "publish-commit":
        Catalog.publish_version = publish_hook  # type: ignore[method-assign,assignment]
    if fault.startswith("fsize:"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(
            resource.RLIMIT_FSIZE, (int(fault.split(":")[1]), resource.RLIM_INFINITY)
        )


def _child_main(job: dict[str, Any]) -> None:
    from databourse.errors import StorageError

    store, catalog = open_store(job["store"]), Catalog(job["catalog"])
    catalog.create_schema()
    _hooks(os.environ.get("FAULT_AT", ""))
    if job["action"] == "ingest":
        spec = DatasetSpec.model_validate(SPEC)
        try:
            result = ingest_file(store, PROVIDER, DATASET, spec, Path(job["source"]))
        except StorageError as exc:
            print(json.dumps({"error": type(exc).__name__, "code": exc.context.get("code")}))
            sys.exit(3)
        _audit_ingest(catalog, result)
        print(json.dumps({"ingest_id": result.ingest_id, "duplicate": result.duplicate}))
    elif job["action"] == "package":
        table = product_table(job["rows"], job.get("salt", ""))
        print(json.dumps(package_version(store, catalog, job["product"], table, 10_000)))
    elif job["action"] == "nightly":
        print(json.dumps(_nightly(store, catalog, Path(job["ready"]), Path(job["go"]))))


def _nightly(store: ObjectStore, catalog: Catalog, ready: Path, go: Path) -> list[dict[str, Any]]:
    """One nightly run: discover what is new in landing, ingest it, build its product."""
    from databourse.ingest.landing import discover

    cfg = load_config(REPO / "configs")
    ready.touch()
    while not go.exists():  # start both runs at the same moment
        time.sleep(0.005)
    out = []
    for drop in discover(store, cfg.providers).new:
        spec = cfg.dataset(drop.provider, drop.dataset)
        path = store.local_path(drop.key)
        assert path is not None
        result = ingest_file(
            store,
            drop.provider,
            drop.dataset,
            spec,
            path,
            drop.name,
            limits=spec.limits or cfg.settings.ingest,
        )
        _audit_ingest(catalog, result)
        staged = store.local_path(result.staged_key)
        built = package_version(store, catalog, f"n-{drop.provider}", pq.read_table(staged), 500)
        out.append({"key": drop.key, "ingest_id": result.ingest_id, **built})
    return out


if __name__ == "__main__":
    _child_main(json.loads(sys.argv[1]))
    sys.exit(0)


# ----------------------------------------------------------------------------- the parent side


def spawn(
    job: dict[str, Any], fault: str = "", tmpdir: Path | None = None
) -> subprocess.Popen[str]:
    """Start this file as a child process running `job`, killing itself at `fault`."""
    env = {**os.environ, "FAULT_AT": fault, "PYTHONUNBUFFERED": "1"}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen(
        [sys.executable, str(Path(__file__)), json.dumps(job)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for a child; its exit code and stdout (its stderr in the error when it crashed)."""
    out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    if proc.returncode not in (0, 3, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}):\n{err[-3000:]}")
    return proc.returncode, out


def kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    """SIGKILL the child as soon as `ready()` is true (polled every millisecond)."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"child ended before the fault point: {finish(proc)}")
        assert time.monotonic() < deadline, "fault point never reached"
        time.sleep(0.001)
    proc.kill()
    assert finish(proc)[0] == -signal.SIGKILL


def _sizes(paths: Iterator[Path]) -> list[int]:
    """Sizes of the files that still exist (a writer may rename or remove them meanwhile)."""
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            continue
    return sizes


def invariants(store: ObjectStore, catalog: Catalog) -> ConsistencyReport:
    """What must hold after any fault and after its re-run; returns the (error-free) report."""
    for info in store.list("raw/"):
        if info.key.endswith("/_ingest.json"):
            record = IngestResult(**json.loads(store.get_bytes(info.key)))
            with store.open(record.raw_key) as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == record.sha256, record.raw_key
    for listed in catalog.list_products():
        for v in catalog.show(listed["id"])["versions"]:
            manifest = read_manifest(store, listed["id"], v["version"])
            assert v["status"] != "published" or manifest is not None, v["version"]
    folders = {"/".join(i.key.split("/")[:3]) for i in store.list("products/")}
    for folder in folders:  # a folder without a manifest is not a version anyone can read
        _, product, version = folder.split("/")
        if read_manifest(store, product, version) is None:
            assert catalog.get_version(product, version).status == "staged"
    events = catalog.audit_history()
    counts = Counter(
        # a version has two `version` events: reserved, then its manifest's sha256 recorded
        (
            e["kind"],
            e["product"],
            e["version"],
            e["detail"].get("ingest_id"),
            "manifest_sha256" in e["detail"],
        )
        for e in events
        if e["kind"] in ("ingest", "version", "publication")
    )
    assert max(counts.values(), default=1) == 1, counts  # nothing recorded twice
    assert catalog.audit_verify().ok
    report = check_all(store, catalog, grace_seconds=0)
    assert report.ok, report.of("error")
    return report


def published(catalog: Catalog, product: str) -> list[tuple[str, str]]:
    """(version, status) of every version of `product`, newest first."""
    if product not in {p["id"] for p in catalog.list_products()}:
        return []
    return [(v["version"], v["status"]) for v in catalog.show(product)["versions"]]


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 150 MB drop, generated once: big enough that its copy can be interrupted."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    pad = "x" * 200
    with path.open("w") as fh:
        fh.write("id,n,note\n")
        for start in range(0, 700_000, 100_000):
            fh.write("".join(f"r{i},{i},{pad}\n" for i in range(start, start + 100_000)))
    return path


def small_csv(path: Path, rows: int, salt: str = "") -> Path:
    """A drop of `rows` rows whose notes do not compress (so sizes are predictable)."""
    lines = [
        f"{salt}r{i},{i},{hashlib.sha256(f'{salt}{i}'.encode()).hexdigest()}\n" for i in range(rows)
    ]
    path.write_text("id,n,note\n" + "".join(lines))
    return path


def world(tmp_path: Path, url: str | None = None) -> tuple[ObjectStore, Catalog, dict[str, Any]]:
    """A store, a catalog and the job fields naming them."""
    store_root, catalog_url = str(tmp_path / "store"), url or f"sqlite:///{tmp_path / 'cat.db'}"
    catalog = Catalog(catalog_url)
    catalog.create_schema()
    return open_store(store_root), catalog, {"store": store_root, "catalog": catalog_url}


def rerun_ingest(store: ObjectStore, catalog: Catalog, source: Path) -> IngestResult:
    result = ingest_file(store, PROVIDER, DATASET, DatasetSpec.model_validate(SPEC), source)
    _audit_ingest(catalog, result)
    return result


# ----------------------------------------------------------------------------- SIGKILL


@pytest.mark.parametrize("point", ["raw-upload", "conversion"])
def test_sigkill_during_ingest(tmp_path: Path, big_csv: Path, point: str) -> None:
    """Killed while the raw copy or the typed Parquet is being written: the re-run finishes."""
    store, catalog, job = world(tmp_path)
    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir()
    temp_dir = tmp_path / "store" / ".tmp"

    def writing() -> bool:
        if point == "raw-upload":  # some of the copy written, not all of it
            return any(size > 1 << 22 for size in _sizes(temp_dir.glob("put-*")))
        return bool(_sizes(child_tmp.glob("databourse-ingest-*/data.parquet")))

    kill_when(spawn({**job, "action": "ingest", "source": str(big_csv)}, tmpdir=child_tmp), writing)

    sha = sha256_file(big_csv)
    raw = zones.raw_prefix(PROVIDER, DATASET, sha[:16])
    assert not store.exists(f"{raw}/_ingest.json")  # the ingest never happened
    left = [i.key for i in store.list("raw/")]
    assert left in ([], [f"{raw}/big.csv"])  # the raw object is whole or absent
    assert left or point == "raw-upload"  # conversion starts once the raw copy is stored
    if left:
        with store.open(left[0]) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == sha
    before = check_all(store, catalog, grace_seconds=0)
    assert before.ok
    assert ("incomplete-ingest" in before.kinds("warning")) == bool(left)
    assert "incomplete-ingest" not in check_all(store, catalog).kinds()  # young: a live run

    renamed = tmp_path / "renamed.csv"  # the provider uploaded the same bytes again, renamed
    shutil.copyfile(big_csv, renamed)  # a copy: a hard link is refused as another file's name
    result = rerun_ingest(store, catalog, renamed)
    assert (result.duplicate, result.sha256, result.rows) == (False, sha, 700_000)
    expected = "big.csv" if left else "renamed.csv"  # what is there is reused, not copied again
    assert [i.key for i in store.list(f"{raw}/")] == [f"{raw}/_ingest.json", f"{raw}/{expected}"]
    report = invariants(store, catalog)
    assert report.kinds("warning") == set()
    assert rerun_ingest(store, catalog, big_csv).duplicate  # and once done, done


@pytest.mark.parametrize(
    "fault", ["package-write", "package-upload", "before-manifest", "after-manifest"]
)
def test_sigkill_during_packaging(tmp_path: Path, fault: str) -> None:
    """Killed while writing Parquet, between product files, or around the manifest."""
    store, catalog, job = world(tmp_path)
    job = {**job, "action": "package", "product": "p1", "rows": 30_000}  # three files
    code, _ = finish(spawn(job, fault))
    assert code == -signal.SIGKILL
    assert published(catalog, "p1") in ([], [("1.0.0", "staged")])  # not published
    visible = read_manifest(store, "p1", "1.0.0")
    assert (visible is not None) == (fault == "after-manifest")
    folder = [i.key for i in store.list("products/p1/1.0.0/")]
    assert len(folder) == {"package-write": 0, "package-upload": 1}.get(fault, 3 + bool(visible))
    report = invariants(store, catalog)
    if fault in ("package-upload", "before-manifest"):
        assert "incomplete-version" in report.kinds("warning")
    if fault == "after-manifest":  # the catalog does not point at the manifest yet
        assert "manifest-uri-mismatch" in report.kinds("warning")

    rerun = package_version(store, catalog, "p1", product_table(30_000), 10_000)
    assert rerun["version"] == "1.0.0" and rerun["new"] is (fault == "package-write")
    assert published(catalog, "p1") == [("1.0.0", "published")]
    manifest = read_manifest(store, "p1", "1.0.0")
    assert manifest is not None and len(manifest["files"]) == 3
    assert invariants(store, catalog).kinds("warning") == set()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sigkill_with_the_publication_transaction_open(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Killed after the UPDATE and the audit INSERT, before COMMIT: nothing half-published."""
    url = request.getfixturevalue("pg_url").url if backend == "postgres" else None
    store, catalog, job = world(tmp_path, url)
    job = {**job, "action": "package", "product": "p1", "rows": 5_000}
    code, _ = finish(spawn(job, "publish-commit"))
    assert code == -signal.SIGKILL
    assert published(catalog, "p1") == [("1.0.0", "staged")]  # rolled back
    assert [e["kind"] for e in catalog.audit_history()] == ["version", "version"]  # + manifest
    invariants(store, catalog)
    assert package_version(store, catalog, "p1", product_table(5_000), 10_000)["new"] is False
    assert published(catalog, "p1") == [("1.0.0", "published")]
    kinds = [e["kind"] for e in catalog.audit_history()]
    assert kinds == ["version", "version", "publication", "decision"]
    assert invariants(store, catalog).kinds("warning") == set()


# ----------------------------------------------------------------------------- the catalog database


class ScratchPg:
    """A fresh PostgreSQL schema for one catalog; its connections carry a name to terminate."""

    def __init__(self, admin: Any, schema: str, url: str) -> None:
        self.admin, self.schema, self.url = admin, schema, url

    def terminate(self) -> int:
        """pg_terminate_backend on every connection of the catalog; how many there were."""
        from sqlalchemy import text

        with self.admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :app"
                ),
                {"app": self.schema},
            ).all()
        return len(ended)


@pytest.fixture
def pg_url() -> Iterator[ScratchPg]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    base = os.environ.get(
        "DATABOURSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    admin = create_engine(base, connect_args={"connect_timeout": 3})
    schema = f"test_faults_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {base}: {str(exc.orig).strip()[:200]}")
    query = {"options": f"-csearch_path={schema}", "application_name": schema}
    url = make_url(base).update_query_dict(query).render_as_string(hide_password=False)
    try:
        yield ScratchPg(admin, schema, url)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_connections_dropped(tmp_path: Path, pg_url: ScratchPg) -> None:
    """Idle connections dropped: the next write reconnects. Dropped mid-transaction: a clear
    failure, nothing of it kept, and the re-run completes."""
    from sqlalchemy import event

    from databourse.errors import CatalogError

    store, catalog, _ = world(tmp_path, pg_url.url)
    package_version(store, catalog, "p1", product_table(2_000), 10_000)
    assert pg_url.terminate() >= 1
    catalog.set_availability("p1", "1.0.0", "MY", "pending_approval", "cn-scc", route="contract")

    event.listen(catalog.engine, "commit", lambda _conn: pg_url.terminate(), once=True)
    table = product_table(2_000, "b")
    files = write_parquet(table, tmp_path / "b")
    chash = content_hash(files, schema_of(table), CONFIG_SHA, FACTS)
    with pytest.raises(CatalogError, match=r"unreachable or locked \(.*(terminat|closed)"):
        catalog.reserve_version("p1", chash, schema_of(table), table.num_rows)
    assert published(catalog, "p1") == [("1.0.0", "published")]  # nothing of it kept
    assert package_version(store, catalog, "p1", table, 10_000)["version"] == "1.0.1"
    assert published(catalog, "p1") == [("1.0.1", "published"), ("1.0.0", "published")]
    invariants(store, catalog)


def _lock(db: Path, seconds: float) -> threading.Thread:
    """Hold SQLite's exclusive lock on `db` from another connection for `seconds`."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_sqlite_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write waits for a lock held by another connection; past the busy timeout it fails
    naming the lock, and the re-run completes."""

    from databourse.catalog.database import make_engine
    from databourse.errors import CatalogError

    store, catalog, job = world(tmp_path)
    db = tmp_path / "cat.db"
    package_version(store, catalog, "p1", product_table(2_000), 10_000)
    holder = _lock(db, 1.5)
    start = time.monotonic()
    assert package_version(store, catalog, "p1", product_table(2_000, "b"), 10_000)["new"]
    waited = time.monotonic() - start
    holder.join()
    assert waited >= 1.0

    # the busy timeout lives where make_engine reads it; a short one is outlasted by retries
    engine_module = sys.modules[make_engine.__module__]
    monkeypatch.setattr(engine_module, "SQLITE_TIMEOUT_S", 0.2)
    impatient = Catalog(job["catalog"])
    holder = _lock(db, 1.5)
    assert package_version(store, impatient, "p1", product_table(2_000, "d"), 10_000)["new"]
    holder.join()
    # when the lock outlasts the retries: a clear CatalogError, nothing half-done
    monkeypatch.setattr(engine_module, "_UNREACHABLE_ATTEMPTS", 1)
    holder = _lock(db, 1.5)
    with pytest.raises(CatalogError, match="database is locked"):
        package_version(store, impatient, "p1", product_table(2_000, "c"), 10_000)
    holder.join()
    assert package_version(store, impatient, "p1", product_table(2_000, "c"), 10_000)["new"]
    assert [v for v, _ in published(catalog, "p1")] == ["1.0.3", "1.0.2", "1.0.1", "1.0.0"]
    invariants(store, catalog)


# ----------------------------------------------------------------------------- the disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (mounting needs root; without it the file-size-limit test still runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full(tmp_path: Path, small_disk: Path) -> None:
    """No room for the raw copy, then none for the staged Parquet: a clear StorageError, nothing
    partial visible; with room again the re-run completes."""
    from databourse.errors import StorageError

    store = open_store(str(small_disk / "store"))
    catalog = Catalog(f"sqlite:///{tmp_path / 'cat.db'}")
    catalog.create_schema()
    source = small_csv(tmp_path / "drop.csv", 8_000)
    size = source.stat().st_size
    filler = small_disk / "filler"

    def leave_free(room: int) -> None:
        filler.unlink(missing_ok=True)
        stat = os.statvfs(small_disk)
        filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - room))

    leave_free(size // 2)
    with pytest.raises(StorageError, match="No space left") as full:
        rerun_ingest(store, catalog, source)
    assert full.value.context["code"] == "ENOSPC"
    assert list(store.list("")) == [] and not any((small_disk / "store" / ".tmp").iterdir())

    leave_free(size + 32 * 1024)  # the raw copy fits, the staged Parquet does not
    with pytest.raises(StorageError, match="No space left"):
        rerun_ingest(store, catalog, source)
    [raw] = [i.key for i in store.list("")]
    assert raw.startswith("raw/") and raw.endswith("/drop.csv")
    assert "incomplete-ingest" in check_all(store, catalog, grace_seconds=0).kinds("warning")

    filler.unlink()
    result = rerun_ingest(store, catalog, source)
    assert not result.duplicate and result.raw_key == raw
    assert invariants(store, catalog).kinds("warning") == set()


def test_file_size_limit(tmp_path: Path) -> None:
    """The same without root: RLIMIT_FSIZE in a child makes the raw write fail with EFBIG."""
    store, catalog, job = world(tmp_path)
    source = small_csv(tmp_path / "drop.csv", 20_000)
    code, out = finish(spawn({**job, "action": "ingest", "source": str(source)}, "fsize:524288"))
    assert code == 3 and json.loads(out) == {"error": "StorageError", "code": "EFBIG"}
    tmp = tmp_path / "store" / ".tmp"  # the working copy fails first now: nothing reached it
    assert list(store.list("")) == [] and not (tmp.exists() and any(tmp.iterdir()))
    assert not rerun_ingest(store, catalog, source).duplicate
    assert invariants(store, catalog).kinds("warning") == set()


# ----------------------------------------------------------------------------- two nightly runs


def test_two_nightly_runs_at_once(tmp_path: Path) -> None:
    """Two runs over the same landing drops: each drop ingested once, each version made once."""
    from databourse_samples.demo import generate_drops

    store, catalog, job = world(tmp_path)
    for drop in generate_drops(tmp_path / "gen", scale=0.2):
        folder = f"landing/{drop.provider}/{drop.dataset}"
        store.put_file(f"{folder}/{drop.path.name}", drop.path)
        lines = drop.path.read_bytes().splitlines(keepends=True)
        if drop.provider == "my-buildops":  # a second, different drop of the same dataset
            store.put_bytes(f"{folder}/readings-more.csv", b"".join(lines[:-5]))
        else:  # the same bytes again under another name
            store.put_file(f"{folder}/orders-renamed.csv", drop.path)
    ready = [tmp_path / "ready-a", tmp_path / "ready-b"]
    go = tmp_path / "go"
    runs = [spawn({**job, "action": "nightly", "ready": str(r), "go": str(go)}) for r in ready]
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not all(r.exists() for r in ready):
        assert time.monotonic() < deadline and all(p.poll() is None for p in runs)
        time.sleep(0.01)
    go.touch()
    outs = [json.loads(finish(p)[1]) for p in runs]

    done: dict[str, tuple[str, str]] = {}
    for item in outs[0] + outs[1]:  # whoever did a drop, it got the same ingest and version
        seen = (item["ingest_id"], item["version"])
        assert done.setdefault(item["key"], seen) == seen
    assert len(done) == 3 and len({i for i, _ in done.values()}) == 3
    ingests = [e["detail"]["ingest_id"] for e in catalog.audit_history() if e["kind"] == "ingest"]
    assert sorted(ingests) == sorted({i for i, _ in done.values()})  # each recorded once
    records = [i.key for i in store.list("raw/") if i.key.endswith("/_ingest.json")]
    assert len(records) == 3 and len(list(store.list("raw/"))) == 6
    assert published(catalog, "n-my-buildops") == [("1.0.1", "published"), ("1.0.0", "published")]
    assert published(catalog, "n-sz-retail") == [("1.0.0", "published")]
    invariants(store, catalog)


# ----------------------------------------------------------------------------- the S3 server


def s3_operation(method: str, path: str, headers: Any) -> str:
    """The S3 operation a request is (enough of them to aim faults at)."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPart"
        return "CopyObject" if headers.get("x-amz-copy-source") else "PutObject"
    if method == "POST":
        return "CompleteMultipartUpload" if "uploadId" in query else "CreateMultipartUpload"
    if method == "GET":
        return "ListObjectsV2" if "list-type" in query else "GetObject"
    return {"HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)


@dataclass
class Fault:
    """Answer `times` requests of `operation` (whose path contains `path`) with an S3 error."""

    operation: str
    status: int
    code: str
    times: int
    path: str = ""
    after_forward: bool = False  # the server does the work, the client still sees the error
    done: int = 0


@dataclass
class FaultProxy:
    """A local HTTP proxy in front of an S3 server that injects errors and outages."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    on_request: Callable[[str, int], None] | None = None  # (operation, how many so far)
    down_until: float = 0.0  # until then every connection is dropped unanswered
    seen: Counter[str] = field(default_factory=Counter)
    claiming: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def serving(self) -> Iterator[str]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def handle_any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.handle(self, body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        op = s3_operation(request.command, request.path, request.headers)
        self.seen[op] += 1
        if self.on_request is not None:
            self.on_request(op, self.seen[op])
        if time.monotonic() < self.down_until:
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        with self.claiming:  # parts are uploaded in parallel: one request claims one injection
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.operation == op and f.path in request.path and f.done < f.times
                ),
                None,
            )
            if fault is not None:
                fault.done += 1
        if fault is None or fault.after_forward:
            status, headers, data = self.forward(request, body)
        if fault is None:
            self.answer(request, status, headers, data)
            return
        error = f"<Error><Code>{fault.code}</Code><Message>injected</Message></Error>".encode()
        self.answer(request, fault.status, [("Content-Type", "application/xml")], error)

    def forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=60)
        try:
            conn.request(request.command, request.path, body=body, headers=dict(request.headers))
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    @staticmethod
    def answer(
        request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], data: bytes
    ) -> None:
        request.send_response(status)
        hop = {"transfer-encoding", "connection"}
        for name, value in headers:
            if name.lower() not in hop and not (name.lower() == "content-length" and data):
                request.send_header(name, value)
        if data or request.command != "HEAD":
            request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)


BUCKET = "faults"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server with one bucket (moto starts in a second; the proxy adds the faults)."""
    from s3_server import make_bucket, moto_server, use_dummy_aws_env

    use_dummy_aws_env(monkeypatch)
    with moto_server() as endpoint:
        make_bucket(endpoint, BUCKET)
        yield endpoint


def s3_store(endpoint: str, prefix: str) -> ObjectStore:
    """An S3Store with 5 MiB parts, so a 12 MB drop is a multipart upload."""
    from databourse.storage.s3 import S3Store

    return S3Store(
        BUCKET,
        prefix,
        endpoint_url=endpoint,
        multipart_threshold=5 << 20,
        multipart_chunksize=5 << 20,
    )


def no_uploads_left(endpoint: str) -> bool:
    from s3_server import client

    return not client(endpoint).list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_s3_errors_and_throttling(tmp_path: Path, s3: str) -> None:
    """503 SlowDown, 500 InternalError (some after the server did the work): retried, once."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'cat.db'}")
    catalog.create_schema()
    source = small_csv(tmp_path / "drop.csv", 150_000)  # 12 MB: three parts
    proxy = FaultProxy(
        s3,
        [
            Fault("HeadObject", 503, "ServiceUnavailable", 1),
            Fault("CreateMultipartUpload", 503, "SlowDown", 1),
            Fault("UploadPart", 503, "SlowDown", 2),
            Fault("UploadPart", 500, "InternalError", 1, after_forward=True),
            Fault("CompleteMultipartUpload", 500, "InternalError", 1, after_forward=True),
            Fault("PutObject", 503, "SlowDown", 2),
            Fault("PutObject", 500, "InternalError", 1, path="_ingest.json", after_forward=True),
        ],
    )
    with proxy.serving() as url:
        result = rerun_ingest(s3_store(url, "t"), catalog, source)
    assert [f.done for f in proxy.faults] == [f.times for f in proxy.faults]
    assert not result.duplicate  # its own landed write is recognized as its own
    store = s3_store(s3, "t")
    assert sorted(i.key.rsplit("/", 1)[1] for i in store.list("raw/")) == [
        "_ingest.json",
        "drop.csv",
    ]
    assert no_uploads_left(s3)
    assert invariants(store, catalog).kinds("warning") == set()


def test_s3_outage_mid_upload(tmp_path: Path, s3: str) -> None:
    """The server unreachable for 2 s in the middle of a multipart upload (a restart that keeps
    its data): connections dropped, retried, and the upload completes."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'cat.db'}")
    catalog.create_schema()
    source = small_csv(tmp_path / "drop.csv", 150_000)

    def restart(op: str, count: int) -> None:
        if op == "UploadPart" and count == 2:
            proxy.down_until = time.monotonic() + 2.0

    proxy = FaultProxy(s3, on_request=restart)
    with proxy.serving() as url:
        start = time.monotonic()
        result = rerun_ingest(s3_store(url, "t"), catalog, source)
    assert time.monotonic() - start >= 2.0 and not result.duplicate
    assert proxy.seen["UploadPart"] > 3  # the dropped ones were sent again
    assert no_uploads_left(s3)
    invariants(s3_store(s3, "t"), catalog)


def test_s3_server_restarted_mid_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto restarted on its port in the middle of a multipart upload. moto keeps its state in
    memory (and LocalStack's community build has no persistence), so the restarted server has no
    bucket: the upload fails with a clear StorageError, nothing is visible, and once the bucket
    is back the re-run completes."""
    from helpers import free_port
    from s3_server import make_bucket, use_dummy_aws_env

    from databourse.errors import StorageError

    use_dummy_aws_env(monkeypatch)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]

    def start() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return server
            time.sleep(0.05)
        server.kill()
        raise AssertionError("moto_server did not start")

    servers = [start()]

    def restart(op: str, count: int) -> None:
        if op == "UploadPart" and count == 2:
            servers[-1].terminate()
            servers[-1].wait(timeout=10)
            servers.append(start())

    try:
        make_bucket(endpoint, BUCKET)
        catalog = Catalog(f"sqlite:///{tmp_path / 'cat.db'}")
        catalog.create_schema()
        source = small_csv(tmp_path / "drop.csv", 150_000)
        proxy = FaultProxy(endpoint, on_request=restart)
        with proxy.serving() as url, pytest.raises(StorageError) as failed:
            rerun_ingest(s3_store(url, "t"), catalog, source)
        assert failed.value.context["code"] in {"NoSuchBucket", "NoSuchUpload"}
        make_bucket(endpoint, BUCKET)
        store = s3_store(endpoint, "t")
        assert list(store.list("")) == []
        assert not rerun_ingest(store, catalog, source).duplicate
        assert no_uploads_left(endpoint)
        assert invariants(store, catalog).kinds("warning") == set()
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=10)


# ----------------------------------------------------------------------------- a suspended run


def _gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaped counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.e2e
@pytest.mark.prefect
def test_runner_killed_while_a_run_waits_for_approval(tmp_path: Path) -> None:
    """The runner SIGKILLed while a publish run is suspended on its approval form: a new runner
    takes the answers, the run completes, and store, catalog and audit trail agree."""
    from conftest import TEST_KEY
    from helpers import bourse, cli_env, make_project, stop_stack

    from databourse_samples.demo import generate_drops

    project = make_project(tmp_path / "project")
    env = cli_env(project, DATABOURSE_PSEUDONYM_KEY=TEST_KEY)
    [orders] = [
        d for d in generate_drops(tmp_path / "drops", scale=0.2) if d.dataset == "customer_orders"
    ]
    try:
        ran = bourse(env, "run", "sz-retail", "customer_orders", str(orders.path)).stdout
        assert "sz-retail-baskets@1.0.0 (new)" in ran and "Suspended" in ran
        listed = json.loads(bourse(env, "approvals", "list", "--json").stdout)
        assert sorted(w["market"] for w in listed) == ["MY", "SG"]
        [waiting] = [w for w in listed if w["market"] == "MY"]
        run_id = waiting["run_id"]

        pid = int((project / "state" / "run" / "runner.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _gone(pid):
            assert time.monotonic() < deadline, "the runner survived SIGKILL"
            time.sleep(0.1)
        (project / "state" / "run" / "runner.pid").unlink()  # as after a reboot
        restarted = bourse(env, "server", "start")
        assert "started the deployment runner" in restarted.stdout + restarted.stderr

        approved = bourse(
            env,
            "approve",
            run_id,
            "--approver",
            "Li Wei",
            "--reference",
            "YUE-SC-2026-0042",
            "--valid-until",
            "2029-11-20",
        ).stdout
        assert "publish run is now Completed" in approved  # SG waits on its own run
        [sg] = [w for w in listed if w["market"] == "SG"]
        rejected = bourse(
            env, "reject", sg["run_id"], "--approver", "Tan Mei Ling", "--reason", "none"
        )
        assert "publish run is now Completed" in rejected.stdout
        shown = json.loads(
            bourse(env, "catalog", "show", "sz-retail-baskets@1.0.0", "--json").stdout
        )
        [version] = shown["versions"]
        markets = {a["market"]: a["status"] for a in version["availability"]}
        assert markets == {"CN": "available", "MY": "available", "SG": "rejected"}
        assert [a["market"] for a in version["approvals"]] == ["MY", "SG"]  # each answered once
        assert "audit chain intact" in bourse(env, "audit", "verify").stdout
        report = json.loads(bourse(env, "verify", "--all", "--json").stdout)
        assert report["ok"] and report["counts"]["warning"] == 0, report["findings"]
        assert report["checked"]["raw_ingests"] == 1 and report["checked"]["product_versions"] == 1
    finally:
        stop_stack(env)

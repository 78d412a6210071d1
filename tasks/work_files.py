"""A build's work folder, out of the store writer's reach: private on the embedded store, sealed
files on S3.

The passes of a build exchange files (source schema, counts, decision, segments, distinct values,
product files) named in their small JSON results. Whoever can only write the object store must
not be able to change what a later pass reads:
- embedded (local) store: the folder is not in the store but under the project's state folder
  (`<state_dir>/work/<product>/<build>/`, mode 0700), shared by every pass of the build on this
  machine (threads, or Dask worker processes of a local cluster); the staged dataset is copied
  there once and checked (`private_source`), so no pass reads the store's file after its check;
- S3 (passes may run on several machines): every file a pass writes is uploaded and its sha256
  travels in the pass's result (`steps.building.sealed`; passed on by Prefect, never through the
  store); a pass downloads what it reads into a private temp folder and checks that copy before
  use.
Every read is checked against the sha256 its writer recorded, whichever the store: a mismatch is
ObjectChanged naming the work file (never a value), audited, not retried, and the build stops.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import get_run_logger

from databourse.errors import ConfigError, ObjectChanged
from databourse.ingest.staged_integrity import check_staged, file_digest
from databourse.product.partitions import Source
from databourse.steps.building import expected
from databourse.storage.ranges import VerifiedObject
from databourse.storage.store import ObjectStore, validate_key
from tasks import resources
from tasks.staged import audited_refusal, local_copy, staged_copy

SEALED = "sealed"  # key of a pass result: {work file: sha256} of the files the pass wrote
SOURCE_DATA = "source.parquet"  # the staged file's private copy (local store)


def private_folder(store: ObjectStore, prefix: str) -> Path | None:
    """The private work folder of a build (or of a validation) on this machine (created 0700)
    for a local store; None for S3. ConfigError if the state folder lies inside the store (the
    writer could reach it)."""
    if store.local_path(prefix) is None:
        return None
    parts = prefix.split("/")
    kind = parts[1] if len(parts) == 5 and parts[0] == "staging" and parts[3] == "work" else ""
    if kind not in ("products", "validations"):
        raise ValueError(f"not a build's or a validation's work prefix: {prefix!r}")
    validate_key(prefix)
    state = resources.config().state_dir
    root = state / "work"
    store_root = Path(str(store.local_path("staging"))).parent.resolve()
    if root.resolve().is_relative_to(store_root) or store_root.is_relative_to(root.resolve()):
        problem = (
            f"settings.yaml: state_dir: {state} overlaps storage.root {store_root}: a build's"
            " work files would be within the store writer's reach; set state_dir (or"
            " DATABOURSE_STATE_DIR) to a folder outside the store"
        )
        raise ConfigError([problem])
    # state/work/<product>/<build>, state/work/validations/<provider+dataset>/<run>
    chain = [root] if kind == "products" else [root, root / "validations"]
    chain += [chain[-1] / parts[2], chain[-1] / parts[2] / parts[4]]
    state.mkdir(parents=True, exist_ok=True)
    for path in chain:
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)  # whatever the umask, or a folder made before
    return chain[-1]


def private_source(
    store: ObjectStore, prefix: str, key: str, trusted: Mapping[str, Any]
) -> dict[str, str]:
    """Local store: the staged file copied into the build's private folder and checked there
    (passes read that copy, never the store's file, which its writer could swap between a check
    and a read); the copy's seal. {} on S3, where each pass checks a download of its own."""
    folder = private_folder(store, prefix)
    if folder is None:
        return {}
    with local_copy(store, key) as path:
        shutil.copyfile(path, folder / SOURCE_DATA)
    provider, dataset = key.split("/")[1:3]  # staging/<provider>/<dataset>/<ingest>/...
    with audited_refusal(provider, dataset):
        check_staged(
            folder / SOURCE_DATA, store.uri(key), trusted.get("sha256"), trusted.get("size")
        )
    return {SOURCE_DATA: trusted.get("sha256") or file_digest(folder / SOURCE_DATA)[0]}


@contextmanager
def source_file(store: ObjectStore, plan: Mapping[str, Any]) -> Iterator[Source]:
    """The staged file as a pass reads it: the build's private copy checked against its seal
    (local store); on S3 only the byte ranges the pass reads, each block checked against the
    hashes the plan took of its whole, checked read (a plan without them: a download checked
    against the sha256 ingest recorded)."""
    if SOURCE_DATA in plan[SEALED]:
        reads = expected([SOURCE_DATA], plan[SEALED])
        with work_folder(store, plan["work"], reads) as work:
            yield work / SOURCE_DATA
        return
    if "blocks" in plan["staged"]:
        provider, dataset = plan["staged_key"].split("/")[1:3]
        ranged = VerifiedObject(store, plan["staged_key"], plan["staged"]["blocks"])
        with pa.PythonFile(ranged, mode="r") as source:
            try:
                yield source
            except ObjectChanged as exc:  # audited only when a block of the staged file changed
                if getattr(exc, "block", None) is None:
                    raise
                with audited_refusal(provider, dataset):
                    raise
        get_run_logger().info(
            "read %d of the staged file's %d bytes, in ranges, each block checked",
            ranged.fetched, plan["staged"]["blocks"]["size"],
        )  # fmt: skip
        return
    with staged_copy(store, plan["staged_key"], plan["staged"]) as path:
        yield path


@contextmanager
def work_folder(store: ObjectStore, prefix: str, reads: Mapping[str, str]) -> Iterator[Path]:
    """The work folder as a local path, each file in `reads` checked against its sha256 first:
    the build's private folder (local store), or a private temp folder holding checked copies of
    `reads` whose other files are uploaded when the block succeeds (S3)."""
    private = private_folder(store, prefix)
    if private is not None:
        _check(store, prefix, private, reads)
        yield private
        return
    with tempfile.TemporaryDirectory(prefix="databourse-work-") as tmp:
        root = Path(tmp)
        for rel in reads:
            store.download(f"{prefix}/{rel}", root / rel)
        _check(store, prefix, root, reads)
        yield root
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if rel not in reads:
                store.put_file(f"{prefix}/{rel}", path)


def _check(store: ObjectStore, prefix: str, root: Path, reads: Mapping[str, str]) -> None:
    """ObjectChanged (audited) naming the first work file whose copy is not what its pass wrote."""
    for rel, sha256 in reads.items():
        found = file_digest(root / rel)[0] if (root / rel).is_file() else "missing"
        if found == sha256:
            continue
        uri = store.uri(f"{prefix}/{rel}")
        error = ObjectChanged(
            f"{uri}: work file changed after the pass that wrote it: sha256 {found[:16]}... "
            f"differs from {sha256[:16]}... recorded by that pass; the build stops (nothing"
            " staged): investigate who writes the store's staging zone, then run it again",
            key=uri,
            expected=sha256,
            found=found,
        )
        resources.audit("quarantine", error, product=prefix.split("/")[2], stage="work")
        raise error


def remove_work_folder(store: ObjectStore, prefix: str) -> int:
    """Delete every file of the build's work folder (private, or under the prefix on S3); how
    many there were."""
    local = private_folder(store, prefix)
    if local is not None:
        count = sum(1 for p in local.rglob("*") if p.is_file())
        shutil.rmtree(local, ignore_errors=True)
        return count
    objects = list(store.list(f"{prefix}/"))
    for obj in objects:
        store.delete(obj.key)
    return len(objects)

"""Consistency of the object store and the catalog: everything `bourse verify --all` checks.

`check_all(store, catalog)` walks the zones and the catalog and lists every disagreement as a
`Finding` (severity error, warning or info; a kind; where; a message naming keys, versions,
hashes and counts only, never a cell value):

    raw/          each `_ingest.json`: its raw object's size and sha256, its staged Parquet; raw
                  objects without one (older than the grace period: an incomplete ingest to re-run)
    quarantine/   each copy matches the sha256 in its `_reason.json`; copies without a reason
    products/     each version folder: a manifest (without one it is invisible and must not be
                  published), every listed file present with its size and sha256, the content
                  hash matching the files, schema, config, transfer facts and the catalog; with
                  `evidence`, the facts recounted from the files and the terms, ODRL policy,
                  markets and lineage re-derived (terms-mismatch; consistency_gate)
    approvals     with `evidence`, each against the Prefect run that answered it; a market
                  pending approval that no live publish run asks for (warning)
    catalog       each published version has its manifest; each market's status is the one its
                  last recorded gate decision or approval set; the audit chain verifies
    catalog/      the listing objects against their seal (audit key), and no market offered by
                  the sealed DCAT export that the audited catalog does not list (listing_seal)
    staging/      objects no ingest or version refers to, temp files of interrupted writes (info)

A report is `ok` when it holds no error. Writers younger than the grace period are reported as
info only, so that a run in progress is not called broken.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from databourse import zones
from databourse.catalog import Catalog
from databourse.consistency_gate import GateEvidence, approval_problems_by_id
from databourse.dcat import available_markets
from databourse.errors import DataBourseError
from databourse.exports import JSONLD_KEY
from databourse.ingest_records import IngestResult
from databourse.listing_seal import seal_findings
from databourse.package import MANIFEST, FileEntry, manifest_facts, manifest_hash, validate_manifest
from databourse.staged_integrity import record_problems
from databourse.storage import ObjectInfo, ObjectStore
from databourse.storage_local import TMP_DIR, LocalStore
from databourse.trail_state import manifest_problem

__all__ = ["DEFAULT_GRACE_SECONDS", "ConsistencyReport", "Finding", "check_all"]

SEVERITIES = ("error", "warning", "info")
DEFAULT_GRACE_SECONDS = 6 * 3600  # the ingest task's own timeout: no live writer is older
INGEST_RECORD = "_ingest.json"
REASON = "_reason.json"
# The status a market has after each kind of audited gate event (carry_over is followed by one).
_ANSWERED = {"approval": "available", "rejection": "rejected", "expiry": "expired"}


@dataclass(frozen=True)
class Finding:
    """One disagreement (or, as info, one leftover worth knowing about)."""

    severity: str
    kind: str
    message: str
    key: str | None = None
    product: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ConsistencyReport:
    """Every finding of one walk, and how many things were checked."""

    findings: tuple[Finding, ...]
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    def of(self, severity: str) -> list[Finding]:
        """The findings of one severity."""
        return [f for f in self.findings if f.severity == severity]

    def kinds(self, severity: str | None = None) -> set[str]:
        """The kinds found (of one severity, or all)."""
        return {f.kind for f in self.findings if severity in (None, f.severity)}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: ok, counts per severity, what was checked, every finding."""
        return {
            "ok": self.ok,
            "counts": {s: len(self.of(s)) for s in SEVERITIES},
            "checked": dict(self.checked),
            "findings": [asdict(f) for f in self.findings],
        }


def check_all(
    store: ObjectStore,
    catalog: Catalog,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    deep: bool = True,
    now: dt.datetime | None = None,
    evidence: GateEvidence | None = None,
) -> ConsistencyReport:
    """Walk the store and the catalog; `deep` re-hashes every raw, quarantined and product file.

    With `evidence` (consistency_gate), also each version's transfer facts recounted from its
    files (when deep) and each approval against the Prefect run that answered it.
    """
    walk = _Walk(store, catalog, grace_seconds, deep, now or dt.datetime.now(dt.UTC))
    walk.evidence = evidence
    walk.run()
    order = {s: n for n, s in enumerate(SEVERITIES)}
    findings = sorted(walk.findings, key=lambda f: (order[f.severity], f.kind, f.key or ""))
    return ConsistencyReport(tuple(findings), dict(walk.checked))


def _groups(infos: Iterable[ObjectInfo], depth: int) -> dict[str, list[ObjectInfo]]:
    """Objects by their folder `depth` segments deep ('raw/p/d/id'); '' for shallower keys."""
    out: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in infos:
        parts = info.key.split("/")
        out["/".join(parts[:depth]) if len(parts) > depth else ""].append(info)
    return out


class _Walk:
    """One consistency walk: the catalog read once, then each zone in turn."""

    def __init__(
        self,
        store: ObjectStore,
        catalog: Catalog,
        grace_seconds: float,
        deep: bool,
        now: dt.datetime,
    ) -> None:
        self.store, self.catalog, self.deep, self.now = store, catalog, deep, now
        self.grace = dt.timedelta(seconds=grace_seconds)
        self.findings: list[Finding] = []
        self.checked: dict[str, int] = defaultdict(int)
        self.versions: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.evidence: GateEvidence | None = None
        self.audited_manifests: dict[tuple[str, str], str] = {}

    def add(self, severity: str, kind: str, message: str, **where: str | None) -> None:
        self.findings.append(Finding(severity, kind, message, **where))

    def run(self) -> None:
        for product in self.catalog.list_products():
            for version in self.catalog.show(product["id"])["versions"]:
                self.versions[(product["id"], version["version"])] = version
        self.events = self.catalog.audit_history()
        self.audited_manifests = self.catalog.audited_manifests()
        self.checked["catalog_versions"] = len(self.versions)
        self.checked["audit_events"] = len(self.events)
        quarantined = self.quarantine()
        completed = self.raw(quarantined)
        seen = self.products()
        self.catalog_versions(seen)
        if self.evidence is not None:
            self.approvals(self.evidence)
        self.staging(completed | quarantined)
        for kind, problem in self.catalog.trail_findings():
            self.add("error", kind, f"not backed by the audit trail: {problem}")
        chain = self.catalog.audit_verify(self.store)
        for problem in chain.problems:
            self.add("error", "audit-chain", f"audit chain broken: {problem}")
        for problem in self.catalog.question_problems():
            self.add("error", "pending-tampered", problem)
        for planted in chain.planted:  # a store writer's object: no break, never blocks
            self.add("warning", "audit-anchor-planted", planted)
        self.listing()

    def listing(self) -> None:
        """The sealed listing (catalog/) against its seal and what the audited catalog offers."""
        keys = {k.key_id: k.material for k in self.catalog.listing_keys()}
        if not keys:
            self.add("error", "listing-unchecked", "no audit key: the listing's seal is unchecked")
            return
        offered = {
            (entry["product"]["id"], v["version"], market)
            for entry in self.catalog.listing()
            for v in entry["versions"]
            for market in available_markets(v)
        }
        for severity, kind, key, message in seal_findings(self.store, keys, JSONLD_KEY, offered):
            self.add(severity, kind, message, key=key)
        if listed := sum(1 for _ in self.store.list("catalog/")):
            self.checked["listing_objects"] = listed

    # --- helpers ------------------------------------------------------------------------------

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        with self.store.open(key) as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def age(self, infos: Iterable[ObjectInfo]) -> dt.timedelta | None:
        """Time since the newest of `infos` was written (None when the store does not say)."""
        stamps = [i.modified for i in infos if i.modified is not None]
        return self.now - max(stamps) if stamps else None

    def stale(self, age: dt.timedelta | None) -> bool:
        """Older than the grace period (an unknown age counts as old: nothing says it is live)."""
        return age is None or age > self.grace

    def json_object(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.store.get_bytes(key))
        except (ValueError, DataBourseError):
            return None
        return data if isinstance(data, dict) else None

    def same_bytes(self, key: str, size: int | None, sha256: str, info: ObjectInfo) -> str | None:
        """Why the object differs from its record (size, then sha256 when deep), or None."""
        if size is not None and info.size != size:
            return f"size {info.size} differs from the recorded {size}"
        if self.deep:
            self.checked["objects_hashed"] += 1
            found = self.sha256(key)
            if found != sha256:
                return f"sha256 {found[:16]}... differs from the recorded {sha256[:16]}..."
        return None

    # --- zones --------------------------------------------------------------------------------

    def raw(self, quarantined: set[str]) -> set[str]:
        """Check every raw ingest folder; the ingest ids ('p/d/id') with a record."""
        audited = {
            "/".join(str(e["detail"].get(k)) for k in ("provider", "dataset", "ingest_id"))
            for e in self.events
            if e["kind"] == "ingest"
        }
        completed: set[str] = set()
        for folder, infos in _groups(self.store.list("raw/"), 4).items():
            if not folder:
                for info in infos:
                    self.add("warning", "stray-object", "not in an ingest folder", key=info.key)
                continue
            ident = folder.removeprefix("raw/")
            objects = {i.key: i for i in infos}
            if f"{folder}/{INGEST_RECORD}" not in objects:
                if ident not in quarantined:
                    self.incomplete("incomplete-ingest", folder, infos, "_ingest.json", "drop")
                continue
            completed.add(ident)
            self.checked["raw_ingests"] += 1
            self.ingest(folder, objects, ident in audited)
        return completed

    def incomplete(
        self, kind: str, folder: str, infos: list[ObjectInfo], record: str, rerun: str
    ) -> None:
        age = self.age(infos)
        since = f" (last written {int(age.total_seconds())} s ago)" if age is not None else ""
        if self.stale(age):
            message = f"{len(infos)} object(s) without {record}{since}: re-run the {rerun}"
            self.add("warning", kind, message, key=f"{folder}/")
        else:
            message = f"{len(infos)} object(s) without {record} yet{since}: a run may be writing"
            self.add("info", "in-progress", message, key=f"{folder}/")

    def ingest(self, folder: str, objects: dict[str, ObjectInfo], audited: bool) -> None:
        key = f"{folder}/{INGEST_RECORD}"
        data = self.json_object(key)
        try:
            record = IngestResult(**(data or {}))
        except TypeError:
            self.add("error", "ingest-record-invalid", "not a readable ingest record", key=key)
            return
        if record.ingest_id != folder.rsplit("/", 1)[-1] or not record.raw_key.startswith(folder):
            self.add("error", "ingest-record-invalid", "names another ingest folder", key=key)
            return
        raw = objects.get(record.raw_key)
        if raw is None:
            self.add("error", "raw-missing", "raw object named by _ingest.json is gone", key=key)
        elif why := self.same_bytes(record.raw_key, record.size, record.sha256, raw):
            self.add("error", "raw-corrupted", f"raw object {why}", key=record.raw_key)
        for other in sorted(set(objects) - {key, record.raw_key}):
            self.add("warning", "raw-unrecorded", "raw object not named by _ingest.json", key=other)
        ingests = [e for e in self.events if e["kind"] == "ingest"]  # the chain check vouches
        for problem in record_problems(record, ingests):
            self.add("error", "ingest-record-rewritten", problem, key=key)
        self.staged(record)
        if not audited:
            message = f"ingest {record.ingest_id} has no 'ingest' event in the audit trail"
            self.add("warning", "ingest-unaudited", message, key=key)

    def staged(self, record: IngestResult) -> None:
        """The staged Parquet is there, with the size (and when deep the sha256) ingest wrote."""
        info = self.store.head(record.staged_key)
        if info is None:
            message = f"staged Parquet of ingest {record.ingest_id} is missing: ingest it again"
            self.add("warning", "staged-missing", message, key=record.staged_key)
        elif record.staged_sha256 is None:
            message = f"ingest {record.ingest_id} predates staged hashes: staged file unchecked"
            self.add("warning", "staged-unrecorded", message, key=record.staged_key)
        elif why := self.same_bytes(
            record.staged_key, record.staged_size, record.staged_sha256, info
        ):
            self.add("error", "staged-corrupted", f"staged Parquet {why}", key=record.staged_key)

    def quarantine(self) -> set[str]:
        """Check every quarantine folder; the ingest ids ('p/d/id') with a reason."""
        reasons: set[str] = set()
        for folder, infos in _groups(self.store.list("quarantine/"), 4).items():
            if not folder:
                continue
            key = f"{folder}/{REASON}"
            if key not in {i.key for i in infos}:
                self.incomplete("incomplete-quarantine", folder, infos, REASON, "drop")
                continue
            reasons.add(folder.removeprefix("quarantine/"))
            self.checked["quarantined"] += 1
            reason = self.json_object(key) or {}
            copy = f"{folder}/{reason.get('file')}"
            info = next((i for i in infos if i.key == copy), None)
            if info is None:
                self.add(
                    "error", "quarantine-copy-missing", "the quarantined file is gone", key=key
                )
            elif why := self.same_bytes(copy, None, str(reason.get("sha256")), info):
                self.add("error", "quarantine-copy-corrupted", f"copy {why}", key=copy)
        return reasons

    def products(self) -> set[tuple[str, str]]:
        """Check every version folder; the (product, version) pairs that have one."""
        seen: set[tuple[str, str]] = set()
        for folder, infos in _groups(self.store.list("products/"), 3).items():
            if not folder:
                for info in infos:
                    self.add("warning", "stray-object", "not in a version folder", key=info.key)
                continue
            _, product, version = folder.split("/")
            seen.add((product, version))
            objects = {i.key: i for i in infos}
            row = self.versions.get((product, version))
            where = {"product": product, "version": version}
            if f"{folder}/{MANIFEST}" in objects:
                self.checked["product_versions"] += 1
                self.manifest(folder, objects, row, where)
            elif row is None:
                self.incomplete("orphan-version-folder", folder, infos, MANIFEST, "build")
            elif row["status"] != "published":  # published ones are reported by the catalog pass
                self.incomplete("incomplete-version", folder, infos, MANIFEST, "build")
        return seen

    def manifest(
        self,
        folder: str,
        objects: dict[str, ObjectInfo],
        row: dict[str, Any] | None,
        where: dict[str, str],
    ) -> None:
        key = f"{folder}/{MANIFEST}"
        manifest = self.json_object(key)
        try:
            validate_manifest(manifest or {})
        except DataBourseError:
            self.add("error", "manifest-invalid", "manifest does not match its schema", key=key)
            return
        assert manifest is not None
        if (manifest["product"], manifest["version"]) != (where["product"], where["version"]):
            self.add("error", "manifest-invalid", "manifest names another version", key=key)
        if row is None:
            message = "a visible version the catalog does not know"
            self.add("error", "version-not-in-catalog", message, key=key, **where)
        elif row["content_hash"] != manifest["content_hash"]:
            message = f"content hash {manifest['content_hash'][:16]}... differs from the catalog's"
            self.add("error", "content-hash-mismatch", message, key=key, **where)
        elif row["manifest_uri"] != self.store.uri(key):
            message = "the catalog does not record this manifest (re-run set_manifest)"
            self.add("warning", "manifest-uri-mismatch", message, key=key, **where)
        files = [FileEntry(**f) for f in manifest["files"]]
        if manifest_hash(manifest) != manifest["content_hash"]:
            message = "content hash does not match the files, schema, config and transfer facts"
            self.add("error", "content-hash-mismatch", message, key=key, **where)
        self.manifest_bytes(key, where)
        self.terms(manifest, key, where)
        if manifest_facts(manifest) is None:
            message = "manifest version 1: the transfer facts are outside the content hash"
            self.add("warning", "facts-unhashed", message, key=key, **where)
        before = len(self.findings)
        for entry in files:
            file_key = f"{folder}/{entry.path}"
            info = objects.get(file_key)
            if info is None:
                message = "listed in the manifest, missing from the store"
                self.add("error", "manifest-file-missing", message, key=file_key, **where)
            elif why := self.same_bytes(file_key, entry.bytes, entry.sha256, info):
                self.add("error", "file-corrupted", why, key=file_key, **where)
        rederive = self.evidence.rederive if self.evidence is not None else None
        if rederive is not None and self.deep and len(self.findings) == before:
            self.checked["facts_rederived"] += 1
            with tempfile.TemporaryDirectory(prefix="databourse-verify-") as tmp:
                for entry in files:
                    self.store.download(f"{folder}/{entry.path}", Path(tmp) / entry.path)
                for problem in rederive(manifest, Path(tmp)):
                    self.add("error", "facts-mismatch", problem, key=key, **where)
        listed = {key} | {f"{folder}/{f.path}" for f in files}
        for other in sorted(set(objects) - listed):
            self.add("warning", "unlisted-object", "not listed in the manifest", key=other, **where)

    def manifest_bytes(self, key: str, where: dict[str, str]) -> None:
        """The whole manifest hashes to the sha256 the audit trail recorded at packaging."""
        audited = self.audited_manifests.get((where["product"], where["version"]))
        if audited is None:
            message = "packaged before manifests were hashed: terms outside any recorded hash"
            self.add("warning", "manifest-unhashed", message, key=key, **where)
            return
        name = f"{where['product']}@{where['version']}"
        problem = manifest_problem(audited, self.sha256(key), name)
        if problem is not None:
            self.add("error", "manifest-edited", problem, key=key, **where)

    def terms(self, manifest: dict[str, Any], key: str, where: dict[str, str]) -> None:
        """Its terms, ODRL policy, markets and lineage as its config and the trail make them."""
        check = self.evidence.terms if self.evidence is not None else None
        if check is None:
            return
        ingests = [e for e in self.events if e.get("kind") == "ingest"]
        for problem in check(manifest, ingests):
            self.add("error", "terms-mismatch", problem, key=key, **where)

    def catalog_versions(self, folders: set[tuple[str, str]]) -> None:
        """Published versions have a manifest; every market's status has a recorded decision."""
        decided = self.market_statuses()
        for (product, version), row in sorted(self.versions.items()):
            where = {"product": product, "version": version}
            manifest = f"{zones.product_prefix(product, version)}/{MANIFEST}"
            if row["status"] == "published" and not self.store.exists(manifest):
                message = "published in the catalog but has no manifest in the store"
                self.add("error", "published-without-manifest", message, key=manifest, **where)
            if row["status"] == "staged" and (product, version) not in folders:
                created = dt.datetime.fromisoformat(row["created_at"])
                if self.stale(self.now - created):
                    message = "reserved in the catalog, nothing written: re-run the build"
                    self.add("warning", "incomplete-version", message, **where)
            for market in row["availability"]:
                self.checked["availability_rows"] += 1
                self.availability(row, market, decided.get((product, version, market["market"])))

    def market_statuses(self) -> dict[tuple[str, str, str], str]:
        """The status each market got from its last audited gate decision or answer."""
        out: dict[tuple[str, str, str], str] = {}
        for e in self.events:  # in chain order: the last one wins
            status = e["detail"].get("status") if e["kind"] == "decision" else None
            status = status or _ANSWERED.get(e["kind"])
            if status and e["product"] and e["version"] and e["market"]:
                out[(e["product"], e["version"], e["market"])] = str(status)
        return out

    def availability(
        self, row: dict[str, Any], market: dict[str, Any], decided: str | None
    ) -> None:
        where = {"product": row["product_id"], "version": row["version"]}
        name, status = market["market"], market["status"]
        if decided is None:
            message = f"market {name} is {status} without any recorded gate decision"
            self.add("error", "availability-undecided", message, **where)
        elif decided != status:
            message = f"market {name} is {status}, its last recorded decision says {decided}"
            self.add("error", "availability-mismatch", message, **where)
        if status == "available" and row["status"] == "staged":
            message = f"market {name} is available but the version is not published"
            self.add("warning", "available-unpublished", message, **where)

    def approvals(self, evidence: GateEvidence) -> None:
        """Every recorded approval against the Prefect run that answered it (consistency_gate)."""
        for product, version, market, why in evidence.unasked:
            message = f"market {market} waits for approval but no publish run asks for it: {why}"
            self.add("warning", "pending-unasked", message, product=product, version=version)
        if evidence.unasked_error:
            message = f"markets pending approval not checked with Prefect: {evidence.unasked_error}"
            self.add("warning", "pending-unchecked", message)
        for line in evidence.unrecorded:
            self.add("error", "pending-tampered", line)
        rows = [a for v in self.versions.values() for a in v.get("approvals", [])]
        self.checked["approvals"] = len(rows)
        if evidence.runs is None:
            if any(a.get("flow_run_id") for a in rows):
                message = f"approvals not cross-checked with Prefect: {evidence.prefect_error}"
                self.add("error", "approvals-unchecked", message)
            return
        problems = approval_problems_by_id(rows, evidence.runs, evidence.pending)
        for a in rows:
            for problem in problems.get(a["id"], []):
                message = f"approval {a['id']} ({a['market']}, {a['decision']}): {problem}"
                where = {"product": a["product_id"], "version": a["version"]}
                self.add("error", "approval-unverified", message, **where)

    def staging(self, ingests: set[str]) -> None:
        """Staged objects no completed ingest or catalog version refers to; temp files (info)."""
        hashes = {(p, v["content_hash"]) for (p, _), v in self.versions.items()}
        orphans: dict[str, int] = defaultdict(int)
        for info in self.store.list("staging/"):
            parts = info.key.split("/")
            if parts[1] == "landing-index" or len(parts) < 5:
                continue
            if parts[1] == "products":
                if (parts[2], parts[3]) not in hashes:
                    orphans["/".join(parts[:4])] += 1
            elif "/".join(parts[1:4]) not in ingests:
                orphans["/".join(parts[:4])] += 1
        for folder, count in sorted(orphans.items()):
            message = f"{count} staged object(s) no ingest or version refers to"
            self.add("info", "orphan-staging", message, key=f"{folder}/")
        temp = self.store.root / TMP_DIR if isinstance(self.store, LocalStore) else None
        if temp is not None and temp.is_dir():
            left = sum(1 for p in temp.iterdir() if p.is_file())
            if left:
                message = f"{left} temp file(s) of interrupted writes (LocalStore.sweep_tmp)"
                self.add("info", "orphan-temp", message, key=".tmp/")

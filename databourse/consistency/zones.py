"""The consistency walk's checks of the raw, quarantine and staging zones."""

from __future__ import annotations

from collections import defaultdict

from databourse.consistency.walk import Walk, groups
from databourse.ingest.records import IngestResult
from databourse.ingest.staged_integrity import record_problems
from databourse.storage.local import TMP_DIR, LocalStore
from databourse.storage.store import ObjectInfo

INGEST_RECORD = "_ingest.json"
REASON = "_reason.json"


class ZoneWalk(Walk):
    """Checks of the ingested, quarantined and staged objects."""

    def raw(self, quarantined: set[str]) -> set[str]:
        """Check every raw ingest folder; the ingest ids ('p/d/id') with a record."""
        audited = {
            "/".join(str(e["detail"].get(k)) for k in ("provider", "dataset", "ingest_id"))
            for e in self.events
            if e["kind"] == "ingest"
        }
        completed: set[str] = set()
        for folder, infos in groups(self.store.list("raw/"), 4).items():
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
        for folder, infos in groups(self.store.list("quarantine/"), 4).items():
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

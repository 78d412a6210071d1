"""One consistency walk's state and the helpers its checks share (hashes, ages, records)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from databourse.catalog.database import Catalog
from databourse.consistency.gate import GateEvidence
from databourse.consistency.report import Finding
from databourse.errors import DataBourseError
from databourse.storage.store import ObjectInfo, ObjectStore


def groups(infos: Iterable[ObjectInfo], depth: int) -> dict[str, list[ObjectInfo]]:
    """Objects by their folder `depth` segments deep ('raw/p/d/id'); '' for shallower keys."""
    out: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in infos:
        parts = info.key.split("/")
        out["/".join(parts[:depth]) if len(parts) > depth else ""].append(info)
    return out


class Walk:
    """The state of one consistency walk and the helpers its checks share."""

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

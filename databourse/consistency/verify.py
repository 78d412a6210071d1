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
from typing import Any

from databourse.catalog.database import Catalog
from databourse.consistency.gate import GateEvidence, approval_problems_by_id
from databourse.consistency.products import ProductWalk
from databourse.consistency.report import SEVERITIES, ConsistencyReport
from databourse.consistency.zones import ZoneWalk
from databourse.product.package import MANIFEST
from databourse.standards.dcat import available_markets
from databourse.standards.exports import JSONLD_KEY
from databourse.standards.listing_seal import seal_findings
from databourse.storage import zones
from databourse.storage.store import ObjectStore

__all__ = ["DEFAULT_GRACE_SECONDS", "check_all"]

DEFAULT_GRACE_SECONDS = 6 * 3600  # the ingest task's own timeout: no live writer is older
# The status a market has after each kind of audited gate event (carry_over is followed by one).
_ANSWERED = {"approval": "available", "rejection": "rejected", "expiry": "expired"}


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


class _Walk(ZoneWalk, ProductWalk):
    """One consistency walk: the catalog read once, then each zone in turn."""

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

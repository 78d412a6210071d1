"""The consistency walk's checks of the products zone: version folders and their manifests."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from databourse.catalog.trail_state import manifest_problem
from databourse.config.corpus import DEDUP_INDEX
from databourse.consistency.walk import Walk, groups
from databourse.errors import DataBourseError
from databourse.product.package import (
    MANIFEST,
    FileEntry,
    manifest_facts,
    manifest_hash,
    validate_manifest,
)
from databourse.standards.croissant import card_key
from databourse.standards.croissant_checks import manifest_problems
from databourse.storage import zones
from databourse.storage.store import ObjectInfo


class ProductWalk(Walk):
    """Checks of every version folder against its manifest, the catalog and the audit trail."""

    def products(self) -> set[tuple[str, str]]:
        """Check every version folder; the (product, version) pairs that have one."""
        seen: set[tuple[str, str]] = set()
        for folder, infos in groups(self.store.list("products/"), 3).items():
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
        self.card(manifest, where)
        self.dedup_index(manifest, where)
        listed = {key} | {f"{folder}/{f.path}" for f in files}
        for other in sorted(set(objects) - listed):
            self.add("warning", "unlisted-object", "not listed in the manifest", key=other, **where)

    def card(self, manifest: dict[str, Any], where: dict[str, str]) -> None:
        """The version's Croissant card, when the export wrote one, names exactly its files."""
        key = card_key(where["product"], where["version"])
        doc = self.json_object(key)
        if doc is None:
            return  # not exported yet, or not JSON: the listing's seal check names the latter
        self.checked["croissant_cards"] += 1
        for problem in manifest_problems(doc, manifest["files"]):
            self.add("error", "card-mismatch", problem, key=key, **where)

    def dedup_index(self, manifest: dict[str, Any], where: dict[str, str]) -> None:
        """A corpus version's dedup index (the next version is built against it) hashes to the
        sha256 its manifest records."""
        sealed = (manifest.get("corpus") or {}).get("dedup_index_sha256")
        if sealed is None:
            return  # not a corpus version, or packaged before its index was sealed
        key = f"{zones.product_reports_prefix(where['product'], where['version'])}/{DEDUP_INDEX}"
        self.checked["dedup_indexes"] += 1
        found = self.sha256(key) if self.store.exists(key) else None
        if found != sealed:
            seen = "missing" if found is None else f"sha256 {found[:16]}..."
            message = (
                f"{seen}, the manifest records {sealed[:16]}...: the next version would be"
                " built against another index (its build stops)"
            )
            self.add("error", "dedup-index-changed", message, key=key, **where)

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

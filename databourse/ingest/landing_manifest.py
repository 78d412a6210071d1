"""Sidecar manifests in landing: their format, and the holds they put on the files they list.

Manifests (`*.manifest.json`, format `Manifest`) list files of their own folder with sha256 and
optionally size and rows; `rows` comes back as `Drop.expected_rows` for the ingest to check.
Design decision: a manifest makes its files one unit. Until every listed file is present and
matches, the listed files that are present are held (`waiting`, or `invalid` for the ones that do
not match), so a half-uploaded multi-file drop is never ingested in part. A listed file that is
gone from landing but whose bytes were already ingested counts as present. A manifest that is not
valid JSON or breaks the format is `invalid`, and so are the files it would cover: `x.csv` for
`x.csv.manifest.json`, every data file of its folder for any other name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from databourse.errors import ObjectNotFound
from databourse.ingest.landing_drops import Drop, LandingObject
from databourse.storage import zones
from databourse.storage.store import ObjectStore

MANIFEST_SUFFIX = ".manifest.json"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists names and hashes; anything bigger is not one


class ManifestFile(BaseModel):
    """One file of a sidecar manifest: a plain name in the manifest's folder and its facts."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    name: str
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    size: int | None = Field(None, ge=0)
    rows: int | None = Field(None, ge=0)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if "/" in name or "\\" in name or ".." in name:
            raise ValueError("must be a file name in the manifest's folder (no '/' or '..')")
        if name.endswith(MANIFEST_SUFFIX):
            raise ValueError("a manifest cannot list a manifest")
        return zones.safe_part(name)


class Manifest(BaseModel):
    """A sidecar manifest: `{"files": [{"name", "sha256", "size"?, "rows"?}, ...]}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    files: list[ManifestFile] = Field(min_length=1)

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[ManifestFile]) -> list[ManifestFile]:
        names = [f.name for f in files]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"files listed twice: {dupes}")
        return files


def parse_drop_manifest(data: bytes) -> Manifest | str:
    """The manifest in `data`, or why it is not one (field paths and messages, no input echoed)."""
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        return "invalid manifest: " + "; ".join(problems[:5])


def apply_manifests(
    store: ObjectStore,
    provider: str,
    members: list[LandingObject],
    state: Callable[[str, str], str],
) -> list[Drop]:
    """Check one folder's manifests, put holds on the files they cover; the manifests' drops."""
    data = {o.name: o for o in members if not o.name.endswith(MANIFEST_SUFFIX)}
    drops = []
    for obj in (o for o in members if o.name.endswith(MANIFEST_SUFFIX)):
        parsed = _load_manifest(store, obj)
        if isinstance(parsed, str):
            stem = obj.name.removesuffix(MANIFEST_SUFFIX)
            for covered in [data[stem]] if stem in data else data.values():
                covered.holds.append(("invalid", f"its manifest {obj.info.key} is invalid"))
            drops.append(obj.drop(provider, "invalid", parsed))
            continue
        status, reason = _check_manifest(obj, parsed, data, state)
        drops.append(obj.drop(provider, status, reason))
    return drops


def _load_manifest(store: ObjectStore, obj: LandingObject) -> Manifest | str:
    """Read and parse a manifest (always re-read: small), setting its sha256; or the problem."""
    if obj.info.size > MAX_MANIFEST_BYTES:
        return f"manifest larger than {MAX_MANIFEST_BYTES} bytes"
    try:
        data = store.get_bytes(obj.info.key)
    except ObjectNotFound:
        return "vanished while discover read it"
    obj.sha256 = hashlib.sha256(data).hexdigest()
    return parse_drop_manifest(data)


def _check_manifest(
    obj: LandingObject,
    manifest: Manifest,
    data: dict[str, LandingObject],
    state: Callable[[str, str], str],
) -> tuple[str, str | None]:
    """Verify the listed files; hold them all unless every one is present and matches."""
    key = obj.info.key
    missing, failed, present = [], [], []
    for entry in manifest.files:
        target = data.get(entry.name)
        if target is None or target.sha256 is None:
            if target is None and state(obj.dataset, entry.sha256) != "new":
                continue  # already ingested or quarantined, then removed from landing
            missing.append(entry.name)
            continue
        present.append(target)
        _attach(target, key, entry)
        if mismatch := _mismatch(target, entry):
            target.holds.append(("invalid", f"{entry.name}: {mismatch} in manifest {key}"))
            failed.append(entry.name)
    if missing:
        why = (
            f"manifest {key} lists {len(missing)} file(s) not (yet) complete in landing: {missing}"
        )
        for target in present:
            target.holds.append(("waiting", why))
        return "waiting", f"lists {len(missing)} file(s) not (yet) complete in landing: {missing}"
    if failed:
        for target in (t for t in present if t.name not in failed):
            target.holds.append(("waiting", f"manifest {key}: {failed} do not match it"))
        return "manifest", f"{len(failed)} listed file(s) do not match: {failed}"
    return "manifest", None


def _attach(target: LandingObject, manifest_key: str, entry: ManifestFile) -> None:
    """Record the manifest on the file; two manifests disagreeing on rows is a mismatch."""
    if entry.rows is not None and target.expected_rows not in (None, entry.rows):
        target.holds.append(("invalid", f"manifests disagree on the rows of {entry.name}"))
    if target.manifest_key is None or entry.rows is not None:
        target.manifest_key = manifest_key
        target.expected_rows = entry.rows if entry.rows is not None else target.expected_rows


def _mismatch(target: LandingObject, entry: ManifestFile) -> str | None:
    """Which field of the manifest entry the object breaks (sha256 first), or None."""
    if target.sha256 != entry.sha256.lower():
        return "sha256 differs from the one"
    if entry.size is not None and entry.size != target.info.size:
        return f"size is {target.info.size} bytes, not the {entry.size}"
    return None

"""Landing discovery: which provider drops under `landing/` are new, decided by content hash.

Drops land at `landing/<provider>/<dataset>/[<folders>/]<file>`. `discover` lists them, hashes
each object of a configured dataset by streaming it (a hash cache in
`staging/landing-index/<provider>.json` skips objects whose size and ETag or file stamp are
unchanged) and gives each a status:

    new               no `_ingest.json` and no `_reason.json` for its ingest id: ingest it
    ingested          raw/<provider>/<dataset>/<ingest-id>/_ingest.json exists
    quarantined       quarantine/<provider>/<dataset>/<ingest-id>/_reason.json exists
    duplicate         same bytes as a `new` drop of the same dataset (`duplicate_of` names its key)
    waiting           its manifest's drop is incomplete, or it changed while it was being read
    invalid           it breaks its manifest, its manifest is invalid, or its name is unusable
    manifest          a valid sidecar manifest (never ingested as data)
    refused           a link (symbolic, through a linked folder, or hard): never read nor ingested
    unknown_provider  not under a configured provider folder: reported, never read nor ingested
    unknown_dataset   not under a configured dataset folder: likewise

Links are refused because they would make another file's bytes this provider's drop: a link in
landing to another provider's raw file would be ingested into the wrong tenant. On a local store an
object is refused when it is a symbolic link, when a folder on its way is one, or when its file has
another hard link; its target is never opened.

"New" is a fact about content, not names: a renamed re-upload of ingested bytes is `ingested`, and
a crash after the raw upload but before `_ingest.json` leaves the drop `new`, so a re-run redoes it
(ingest is idempotent by hash). Discover writes nothing but its hash cache.

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
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from databourse.config import ProviderSpec
from databourse.errors import ConfigError, ObjectNotFound
from databourse.ingest.landing_index import HashIndex, stamp_of
from databourse.storage import zones
from databourse.storage.store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

STATUSES = (
    "new",
    "ingested",
    "quarantined",
    "duplicate",
    "waiting",
    "invalid",
    "manifest",
    "refused",
    "unknown_provider",
    "unknown_dataset",
)
MANIFEST_SUFFIX = ".manifest.json"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists names and hashes; anything bigger is not one
_IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".crdownload")
_CHUNK = 1 << 20


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


@dataclass(frozen=True)
class Drop:
    """One landing object and what discover decided about it (names, sizes, hashes: no data)."""

    provider: str
    dataset: str
    key: str
    name: str
    size: int
    sha256: str | None  # None when not read: unknown provider/dataset, or changed while read
    ingest_id: str | None
    status: str
    reason: str | None = None
    duplicate_of: str | None = None
    expected_rows: int | None = None
    manifest_key: str | None = None


@dataclass(frozen=True)
class DiscoverResult:
    """Every landing object, sorted by key, with its status."""

    drops: tuple[Drop, ...]

    @property
    def new(self) -> list[Drop]:
        """The drops to ingest now, one per distinct content."""
        return [d for d in self.drops if d.status == "new"]

    def summary(self) -> dict[str, int]:
        """How many objects have each status (every status, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for drop in self.drops:
            counts[drop.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """Plain data for an artifact or a task result."""
        return {"drops": [asdict(d) for d in self.drops], "summary": self.summary()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiscoverResult:
        """The result `to_json` described."""
        return cls(tuple(Drop(**d) for d in data["drops"]))


@dataclass
class _Object:
    """A landing object of a configured dataset while it is being classified."""

    info: ObjectInfo
    dataset: str
    folder: str
    name: str
    sha256: str | None = None
    holds: list[tuple[str, str]] = field(default_factory=list)  # (waiting|invalid, reason)
    manifest_key: str | None = None
    expected_rows: int | None = None

    def drop(self, provider: str, status: str, reason: str | None = None) -> Drop:
        """The object's line in the result."""
        return Drop(
            provider=provider,
            dataset=self.dataset,
            key=self.info.key,
            name=self.name,
            size=self.info.size,
            sha256=self.sha256,
            ingest_id=self.sha256[:16] if self.sha256 else None,
            status=status,
            reason=reason,
            expected_rows=self.expected_rows,
            manifest_key=self.manifest_key,
        )


def discover(
    store: ObjectStore, providers: Mapping[str, ProviderSpec], provider: str | None = None
) -> DiscoverResult:
    """Classify every object under `landing/` (or `landing/<provider>/`); see the module doc."""
    if provider is not None and provider not in providers:
        raise ConfigError([f"unknown provider {provider!r}; configured: {sorted(providers)}"])
    prefix = f"{zones.landing_prefix(provider)}/" if provider else "landing/"
    by_provider: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in store.list(prefix):
        if not _ignored(info.key):
            parts = info.key.split("/")
            by_provider[parts[1] if len(parts) > 2 else ""].append(info)
    drops: list[Drop] = []
    for name, infos in sorted(by_provider.items()):
        if name in providers:
            drops += _discover_provider(store, providers[name], name, infos)
        else:
            reason = (
                f"{name!r} is not a configured provider" if name else "not in a provider folder"
            )
            drops += [_unread(info, name, "", "unknown_provider", reason) for info in infos]
    result = DiscoverResult(tuple(sorted(drops, key=lambda d: d.key)))
    log.info("discovered %d landing object(s): %s", len(drops), _nonzero(result.summary()))
    return result


def _ignored(key: str) -> bool:
    """In-flight uploads and system noise: hidden names, temp suffixes, folder markers."""
    name = key.rsplit("/", 1)[-1]
    return key.endswith("/") or name.startswith(".") or name.endswith(_IN_FLIGHT_SUFFIXES)


def _unread(info: ObjectInfo, provider: str, dataset: str, status: str, reason: str) -> Drop:
    """An object reported without being read (not in a configured provider or dataset)."""
    name = info.key.rsplit("/", 1)[-1]
    return Drop(provider, dataset, info.key, name, info.size, None, None, status, reason)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in counts.items() if n}


def _discover_provider(
    store: ObjectStore, spec: ProviderSpec, provider: str, infos: list[ObjectInfo]
) -> list[Drop]:
    """Hash the provider's objects (through its cache), apply manifests, then decide by hash."""
    index = HashIndex.load(store, provider)
    drops: list[Drop] = []
    objects: list[_Object] = []
    for info in infos:
        parts = info.key.split("/")
        dataset = parts[2] if len(parts) > 3 else ""
        if dataset not in spec.datasets:
            why = (
                f"{dataset!r} is not a dataset of {provider}"
                if dataset
                else "not in a dataset folder"
            )
            drops.append(_unread(info, provider, dataset, "unknown_dataset", why))
            continue
        folder, _, name = info.key.rpartition("/")
        obj = _Object(info, dataset, folder, name)
        if not name.endswith(MANIFEST_SUFFIX) and not _usable(name):
            rule = "letters, digits, . _ @ + - only"
            obj.holds.append(("invalid", f"{name!r} is not a usable file name ({rule}): rename it"))
        if link := _link(store, info.key):
            log.warning("landing object %s refused: %s", info.key, link)
            drops.append(obj.drop(provider, "refused", link))
            continue
        if name.endswith(MANIFEST_SUFFIX) or _hash(store, obj, index):
            objects.append(obj)
    index.save(store, [info.key for info in infos])
    state = _IngestState(store, provider)
    folders: dict[str, list[_Object]] = defaultdict(list)
    for obj in objects:
        folders[obj.folder].append(obj)
    data: list[_Object] = []
    for members in folders.values():
        drops += _apply_manifests(store, provider, members, state)
        data += [o for o in members if not o.name.endswith(MANIFEST_SUFFIX)]
    return drops + _decide(provider, data, state)


def _link(store: ObjectStore, key: str) -> str | None:
    """Why a landing object is not the provider's own file (a link of some kind), or None."""
    path = store.local_path(key)
    if path is None:  # an object store has no links
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None  # vanished: hashing says so
    fix = "links are never followed: upload the file itself"
    if stat.S_ISLNK(st.st_mode):
        return f"a symbolic link; {fix}"
    if os.path.realpath(path) != os.path.abspath(path):
        return f"reached through a symbolic link to a folder; {fix}"
    if st.st_nlink > 1:
        return f"a hard link ({st.st_nlink} names for one file); {fix}"
    return None


def _hash(store: ObjectStore, obj: _Object, index: HashIndex) -> bool:
    """Set `obj.sha256` from the cache or by streaming; False if the object vanished."""
    info = obj.info
    stamp = stamp_of(store, info)
    if cached := index.lookup(info, stamp):
        obj.sha256 = cached
        return True
    digest, size = hashlib.sha256(), 0
    try:
        with store.open(info.key) as reader:
            while block := reader.read(_CHUNK):
                digest.update(block)
                size += len(block)
    except ObjectNotFound:
        log.info("%s vanished while discover read it; skipped", info.key)
        return False
    if size != info.size or stamp_of(store, info) != stamp:
        obj.holds.append(("waiting", "changed while being read (upload in progress?)"))
        return True
    obj.sha256 = digest.hexdigest()
    index.record(info, stamp, obj.sha256)
    return True


class _IngestState:
    """Whether an ingest id is ingested, quarantined or new (one HEAD each, remembered)."""

    def __init__(self, store: ObjectStore, provider: str) -> None:
        self._store = store
        self._provider = provider
        self._known: dict[tuple[str, str], str] = {}

    def __call__(self, dataset: str, sha256: str) -> str:
        ingest_id = sha256.lower()[:16]
        if (dataset, ingest_id) not in self._known:
            self._known[dataset, ingest_id] = self._look(dataset, ingest_id)
        return self._known[dataset, ingest_id]

    def _look(self, dataset: str, ingest_id: str) -> str:
        reason = f"{zones.quarantine_prefix(self._provider, dataset, ingest_id)}/_reason.json"
        if self._store.head(reason) is not None:
            return "quarantined"
        done = self._store.head(
            f"{zones.raw_prefix(self._provider, dataset, ingest_id)}/_ingest.json"
        )
        # ingest writes `_ingest.json` last and non-empty; anything else is an interrupted ingest
        return "ingested" if done is not None and done.size > 0 else "new"


def read_manifest(data: bytes) -> Manifest | str:
    """The manifest in `data`, or why it is not one (field paths and messages, no input echoed)."""
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        return "invalid manifest: " + "; ".join(problems[:5])


def _apply_manifests(
    store: ObjectStore, provider: str, members: list[_Object], state: Callable[[str, str], str]
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


def _load_manifest(store: ObjectStore, obj: _Object) -> Manifest | str:
    """Read and parse a manifest (always re-read: small), setting its sha256; or the problem."""
    if obj.info.size > MAX_MANIFEST_BYTES:
        return f"manifest larger than {MAX_MANIFEST_BYTES} bytes"
    try:
        data = store.get_bytes(obj.info.key)
    except ObjectNotFound:
        return "vanished while discover read it"
    obj.sha256 = hashlib.sha256(data).hexdigest()
    return read_manifest(data)


def _check_manifest(
    obj: _Object, manifest: Manifest, data: dict[str, _Object], state: Callable[[str, str], str]
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


def _attach(target: _Object, manifest_key: str, entry: ManifestFile) -> None:
    """Record the manifest on the file; two manifests disagreeing on rows is a mismatch."""
    if entry.rows is not None and target.expected_rows not in (None, entry.rows):
        target.holds.append(("invalid", f"manifests disagree on the rows of {entry.name}"))
    if target.manifest_key is None or entry.rows is not None:
        target.manifest_key = manifest_key
        target.expected_rows = entry.rows if entry.rows is not None else target.expected_rows


def _mismatch(target: _Object, entry: ManifestFile) -> str | None:
    """Which field of the manifest entry the object breaks (sha256 first), or None."""
    if target.sha256 != entry.sha256.lower():
        return "sha256 differs from the one"
    if entry.size is not None and entry.size != target.info.size:
        return f"size is {target.info.size} bytes, not the {entry.size}"
    return None


def _usable(name: str) -> bool:
    """True if ingest can keep `name` as a key segment of the raw zone."""
    try:
        zones.file_name(name)
    except ValueError:
        return False
    return True


def _decide(provider: str, data: Iterable[_Object], state: Callable[[str, str], str]) -> list[Drop]:
    """Held files keep their hold; the others take the state of their hash, once per content."""
    drops = []
    groups: dict[tuple[str, str], list[_Object]] = defaultdict(list)
    for obj in data:
        if obj.holds or obj.sha256 is None:
            invalid = [r for s, r in obj.holds if s == "invalid"]
            status = "invalid" if invalid else "waiting"
            reasons = invalid or [r for _, r in obj.holds]
            drops.append(obj.drop(provider, status, "; ".join(reasons)))
        else:
            groups[obj.dataset, obj.sha256].append(obj)
    for (dataset, sha), members in groups.items():
        members.sort(key=lambda o: o.info.key)
        status = state(dataset, sha)
        first = members[0].drop(provider, status)
        drops.append(first)
        for other in members[1:]:
            dup = "duplicate" if status == "new" else status
            drops.append(replace(other.drop(provider, dup), duplicate_of=first.key))
    return drops

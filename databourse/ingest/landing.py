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

Manifests (`*.manifest.json`, landing_manifest) list files of their own folder with sha256 and
optionally size and rows; a manifest makes its files one unit, held until every one is present
and matches. The model of a drop and of the result is landing_drops; the decision by content
hash, landing_state.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Mapping

from databourse.config import ProviderSpec
from databourse.errors import ConfigError, ObjectNotFound
from databourse.ingest.landing_drops import DiscoverResult, Drop, LandingObject
from databourse.ingest.landing_index import HashIndex, stamp_of
from databourse.ingest.landing_manifest import MANIFEST_SUFFIX, apply_manifests
from databourse.ingest.landing_state import IngestState, decide_drops
from databourse.storage import zones
from databourse.storage.store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

_IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".crdownload")
_CHUNK = 1 << 20


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
    objects: list[LandingObject] = []
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
        obj = LandingObject(info, dataset, folder, name)
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
    state = IngestState(store, provider)
    folders: dict[str, list[LandingObject]] = defaultdict(list)
    for obj in objects:
        folders[obj.folder].append(obj)
    data: list[LandingObject] = []
    for members in folders.values():
        drops += apply_manifests(store, provider, members, state)
        data += [o for o in members if not o.name.endswith(MANIFEST_SUFFIX)]
    return drops + decide_drops(provider, data, state)


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


def _hash(store: ObjectStore, obj: LandingObject, index: HashIndex) -> bool:
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


def _usable(name: str) -> bool:
    """True if ingest can keep `name` as a key segment of the raw zone."""
    try:
        zones.file_name(name)
    except ValueError:
        return False
    return True

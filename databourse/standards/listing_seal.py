"""The listing's seal: an HMAC under the audit key over every object of the `catalog/` zone.

Buyers read `catalog/` (the DCAT export, the HTML page), and whoever can write the store can
rewrite it. An export writes its objects, then `catalog/seal.json` last (each write atomic): the
key, sha256 and size of every object it wrote, when, and an HMAC-SHA256 of all of that under the
audit key, which neither the store nor the catalog database holds. `seal_findings` is what
`bourse verify --all` checks: the seal's MAC, each object against it, no object the seal does not
name, and no market offered by the sealed DCAT export that the audited catalog does not list as
available now (an older sealed export put back, or one left behind by a withdrawal).
`read_sealed` is how the project reads a listing object back. Messages name keys, versions and
markets only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from databourse.errors import ObjectChanged, ObjectNotFound
from databourse.keys import Key
from databourse.standards.dcat import listed_offers
from databourse.storage.store import ObjectStore

__all__ = ["PREFIX", "SEAL_KEY", "read_sealed", "seal_findings", "write_sealed"]

PREFIX = "catalog/"
SEAL_KEY = f"{PREFIX}seal.json"
_AGAIN = (
    "run `bourse catalog export` again if an export was interrupted; otherwise it was rewritten"
)
Finding = tuple[str, str, str, str]  # (severity, kind, object key, message)


def _digest(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _mac(material: bytes, body: dict[str, Any]) -> str:
    fields = {k: v for k, v in body.items() if k != "mac"}
    canonical = json.dumps(["listing-seal", fields], sort_keys=True, separators=(",", ":"))
    return hmac.new(material, canonical.encode(), hashlib.sha256).hexdigest()


def write_sealed(
    store: ObjectStore, key: Key, objects: dict[str, bytes], sealed_at: str
) -> dict[str, str]:
    """Write each listing object, then the seal naming them all; object key -> URI."""
    for name, data in objects.items():
        store.put_bytes(name, data)
    body: dict[str, Any] = {
        "objects": {name: _digest(data) for name, data in objects.items()},
        "sealed_at": sealed_at,
        "key_id": key.key_id,
    }
    body["mac"] = _mac(key.material, body)
    store.put_bytes(SEAL_KEY, json.dumps(body, indent=2, sort_keys=True).encode())
    return {name: store.uri(name) for name in [*objects, SEAL_KEY]}


def _seal(store: ObjectStore, keys: dict[str, bytes]) -> dict[str, Any] | None:
    """The authentic seal, None when there is none; ObjectChanged when it is not authentic."""
    try:
        raw = store.get_bytes(SEAL_KEY)
    except ObjectNotFound:
        return None
    try:
        body = json.loads(raw)
        material = keys.get(str(body["key_id"]))
        authentic = material is not None and hmac.compare_digest(
            _mac(material, body), str(body["mac"])
        )
        objects = body["objects"] if authentic else None
    except (ValueError, KeyError, TypeError, AttributeError):
        objects = None
    if not isinstance(objects, dict):
        raise ObjectChanged(
            f"{SEAL_KEY}: not a seal made with the audit key (forged or rewritten)", key=SEAL_KEY
        )
    return dict(body)


def _object_problem(store: ObjectStore, name: str, sealed: dict[str, Any]) -> str | None:
    """Why the object is not the one sealed, or None when it is."""
    found = _digest(store.get_bytes(name))
    if found == {"sha256": sealed.get("sha256"), "bytes": sealed.get("bytes")}:
        return None
    return f"{name}: its sha256 {found['sha256'][:16]} is not the sealed one ({_AGAIN})"


def read_sealed(store: ObjectStore, keys: dict[str, bytes], name: str) -> bytes:
    """A listing object's bytes, only when the audit key's seal vouches for them (ObjectChanged)."""
    seal = _seal(store, keys)
    entry = (seal or {}).get("objects", {}).get(name)
    if seal is None or not isinstance(entry, dict):
        raise ObjectChanged(f"{name}: no seal of the audit key covers it", key=name)
    data = store.get_bytes(name)
    if _digest(data) != {"sha256": entry.get("sha256"), "bytes": entry.get("bytes")}:
        raise ObjectChanged(f"{name}: not the sealed bytes ({_AGAIN})", key=name)
    return data


def seal_findings(
    store: ObjectStore,
    keys: dict[str, bytes],
    dcat_key: str,
    offered_now: set[tuple[str, str, str]],
) -> list[Finding]:
    """Every listing object against the seal, and the sealed DCAT's offers against `offered_now`."""
    names = sorted(i.key for i in store.list(PREFIX) if i.key != SEAL_KEY)
    try:
        seal = _seal(store, keys)
    except ObjectChanged as exc:
        return [("error", "listing-tampered", SEAL_KEY, str(exc))]
    if seal is None:
        why = "no seal of the audit key covers it: run `bourse catalog export`"
        return [("error", "listing-unsealed", name, f"{name}: {why}") for name in names]
    sealed: dict[str, Any] = seal["objects"]
    found: list[Finding] = []
    for name in names:
        if not isinstance(sealed.get(name), dict):
            message = f"{name}: a listing object the seal does not name (planted?)"
            found.append(("error", "listing-unsealed", name, message))
        elif problem := _object_problem(store, name, sealed[name]):
            found.append(("error", "listing-tampered", name, problem))
    for name in sorted(set(sealed) - set(names)):
        message = f"{name}: sealed, gone from the store: run `bourse catalog export`"
        found.append(("warning", "listing-missing", name, message))
    if dcat_key in names and not any(f[2] == dcat_key for f in found):
        offered = listed_offers(json.loads(read_sealed(store, keys, dcat_key)))
        for product, version, market in sorted(offered - offered_now):
            message = (
                f"{dcat_key} offers {product}@{version} in {market}, which the audited catalog "
                "does not list as available: an older export put back, or a stale one: run "
                "`bourse catalog export`"
            )
            found.append(("error", "listing-stale", dcat_key, message))
        for product, version, market in sorted(offered_now - offered):
            message = (
                f"{dcat_key} does not offer {product}@{version} in {market}, which the audited "
                "catalog lists as available: the export is behind: run `bourse catalog export`"
            )
            found.append(("warning", "listing-behind", dcat_key, message))
    return found

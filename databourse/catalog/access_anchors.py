"""Anchors of the access log's newest row in the store, between the trail's seals.

A seal (an `access_seal` event of the trail) pins the access log up to its last row once the
oldest unsealed row is an hour old or SEAL_ROWS rows wait; the rows after the newest seal are
chained and keyed, but someone who can write the database could cut them off the end unnoticed.
So the exchange anchors the log's newest row in the store after a flush that logged reads, at
most once every ANCHOR_EVERY, and when it stops: `audit/access-anchors/<row id>.json` holds the
row's id, MAC and time, MAC'd under a key derived from the audit key for these anchors alone
(`ANCHOR_PURPOSE`), which the database never holds. Anchors are written once, like the trail's
(production keeps them in write-once storage). `verify` requires the row of every authenticated
anchor above the newest seal, with the MAC anchored: a tail cut off is named with the anchored
row it lost. What can still be cut unnoticed is what was logged since the newest anchor: at
most ANCHOR_EVERY of traffic (plus one flush), instead of up to an hour or SEAL_ROWS rows.
An object the key does not authenticate proves nothing: it is reported, never a break, and the
anchor of that row is written beside it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog.access_log import AccessEvent
from databourse.catalog.models import iso, to_utc
from databourse.errors import AuditError, ObjectExists
from databourse.keys import Key
from databourse.storage.store import ObjectStore

ACCESS_ANCHORS = "audit/access-anchors/"
ANCHOR_EVERY = timedelta(seconds=60)
ANCHOR_PURPOSE = b"databourse/access-anchor/v1"
MAX_BYTES = 2048  # an anchor is about 300 bytes: anything larger was planted (never read)
# `<row id>.json`, or `<row id>.<16 hex of the row's MAC>.json` beside a planted object
_NAME = re.compile(r"^audit/access-anchors/(\d{12})(?:\.[0-9a-f]{16})?\.json$")


def anchor_name(row_id: int, beside: str | None = None) -> str:
    """The store key of the anchor of row `row_id` (zero-padded: listed in order)."""
    return f"{ACCESS_ANCHORS}{row_id:012d}{f'.{beside[:16]}' if beside else ''}.json"


def _mac(material: bytes, body: dict[str, Any]) -> str:
    key = hmac.new(material, ANCHOR_PURPOSE, hashlib.sha256).digest()
    fields = {k: v for k, v in body.items() if k != "anchor_mac"}
    canonical = json.dumps(["access-anchor", fields], sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def anchor_body(row: AccessEvent, key: Key) -> dict[str, Any]:
    """The anchor of `row`: its id, MAC and time, MAC'd under `key`."""
    body = {"last": row.id, "mac": row.mac, "at": iso(to_utc(row.at)), "key_id": key.key_id}
    body["anchor_mac"] = _mac(key.material, body)
    return body


def anchor(session: Session, store: ObjectStore, key: Key, after: int) -> dict[str, Any] | None:
    """Anchor the log's newest row in the store if it is newer than row `after`; its body, or
    None. AuditError if an authenticated anchor of that row differs (the log was rewritten)."""
    row = session.scalars(select(AccessEvent).order_by(AccessEvent.id.desc()).limit(1)).first()
    if row is None or row.id <= after:
        return None
    body = anchor_body(row, key)
    if _write_once(store, anchor_name(row.id), body):
        return body
    found = _read(store, anchor_name(row.id))
    if found is not None and _authentic(found, {key.key_id: key.material}):
        raise AuditError(
            f"the anchor {anchor_name(row.id)} already exists and differs from row {row.id} of"
            " the access log: the log was rewritten; `bourse audit verify`",
            key=anchor_name(row.id),
        )
    if _write_once(store, anchor_name(row.id, row.mac), body):  # beside the planted object
        return body
    raise AuditError(f"the anchor of access log row {row.id} could not be written", key=row.id)


def _write_once(store: ObjectStore, name: str, body: dict[str, Any]) -> bool:
    """Create `name` holding `body`; True if it now holds exactly that."""
    try:
        store.put_bytes(name, json.dumps(body, sort_keys=True).encode(), if_absent=True)
        return True
    except ObjectExists:
        return _read(store, name) == body


def _read(store: ObjectStore, name: str) -> dict[str, Any] | None:
    """The anchor object's JSON (None: larger than an anchor, or not a JSON object)."""
    with store.open(name) as fh:
        data = fh.read(MAX_BYTES + 1)
    try:
        body = json.loads(data) if len(data) <= MAX_BYTES else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _authentic(body: dict[str, Any], keys: dict[str, bytes]) -> bool:
    material = keys.get(str(body.get("key_id")))
    return material is not None and hmac.compare_digest(
        _mac(material, body), str(body.get("anchor_mac"))
    )


def verify(
    session: Session, store: ObjectStore, keys: dict[str, bytes], sealed_through: int
) -> tuple[list[str], list[str]]:
    """(problems, notes): every authenticated anchor of a row after `sealed_through` (the rows
    a seal covers are checked against the seal) must find that row with the anchored MAC."""
    problems, notes = [], []
    for info in store.list(ACCESS_ANCHORS):
        match = _NAME.match(info.key)
        if match is None or info.size > MAX_BYTES:
            notes.append(f"access log: {info.key} is not an anchor (planted in the store?)")
            continue
        if int(match.group(1)) <= sealed_through:
            continue
        body = _read(store, info.key)
        if body is None or not _authentic(body, keys) or body.get("last") != int(match.group(1)):
            notes.append(f"access log: {info.key} is not authenticated by the audit key (planted?)")
            continue
        row = session.get(AccessEvent, int(body["last"]))
        if row is None:
            problems.append(
                f"access log: row {body['last']}, anchored in the store at {body['at']}"
                f" ({info.key}), is gone: the log was cut"
            )
        elif not hmac.compare_digest(row.mac, str(body["mac"])):
            problems.append(
                f"access log: row {body['last']} is not the row anchored in the store ({info.key})"
            )
    return problems, notes

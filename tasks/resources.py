"""Resources tasks need, fetched in one place: config, object store, catalog, secrets."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx

from databourse.catalog.database import Catalog
from databourse.config import Config, ProductSpec, load_config
from databourse.errors import DataBourseError
from databourse.keys import DEFAULT_VERSION, Key, KeyPlace, bind, check_strength, default_key_dir
from databourse.keys import read as read_key
from databourse.keys import require as require_key
from databourse.steps.resources import Resources, audit_failure
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore

if TYPE_CHECKING:  # imported where a corpus is pseudonymized: the text detectors take 0.2 s
    from databourse.corpus.pseudonyms import TextPseudonyms

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def config() -> Config:
    """The project's configs (cached for the process)."""
    return load_config()


@lru_cache(maxsize=1)
def store() -> ObjectStore:
    """The object store configured in settings (local folder or S3)."""
    cfg = config()
    return open_store(
        cfg.store_root, endpoint_url=cfg.s3_endpoint_url, region=cfg.settings.storage.region
    )


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The catalog database, with its tables created if missing; its audit key from `audit_keys`."""
    cat = Catalog(config().catalog_url, audit_keys=audit_keys, anchor_store=store)
    cat.create_schema()
    return cat


def pseudonym_keys(product: ProductSpec) -> bytes | dict[str, bytes]:
    """The key, or for a product naming key versions, every version it names plus the default.

    A version `v2` is read from `$<env>__V2`, then the key file `pseudonym-v2.key` (see
    `databourse.keys`): rotating means adding the new key under a new version and pointing the
    rule's `key_version` at it.
    """
    versions = {r.key_version for r in product.columns.values() if r.key_version}
    if not versions:
        return pseudonym_key()
    keys = (
        {"default": pseudonym_key()}
        if any(r.action == "pseudonymize" and not r.key_version for r in product.columns.values())
        else {}
    )
    for version in sorted(versions):
        keys[version] = pseudonym_key(version)
    return keys


def text_pseudonyms(product: ProductSpec) -> TextPseudonyms | None:
    """The pseudonymizer of a corpus product whose rules say `redaction: pseudonym` (under its
    `key_version`, else the default key); None for any other product."""
    rules = product.corpus
    if rules is None or rules.redaction != "pseudonym":
        return None
    return text_pseudonymizer(rules.key_version)


def text_pseudonymizer(key_version: str | None = None) -> TextPseudonyms:
    """Keyed pseudonyms for running text under a version of the pseudonym key (the default
    when None)."""
    from databourse.corpus.pseudonyms import TextPseudonyms

    key = load_key("pseudonym", key_version or DEFAULT_VERSION)
    return TextPseudonyms(key.material, key.key_id, key.version)


def pseudonym_key(version: str | None = None) -> bytes:
    """The pseudonymization key of a version (checked, and bound to its id in the store)."""
    return load_key("pseudonym", version or DEFAULT_VERSION).material


def audit_keys() -> list[Key]:
    """The audit trail's signing key (bound to its id in the store)."""
    return [load_key("audit")]


def key_place(purpose: str) -> KeyPlace:
    """Where keys of a purpose are looked for: its variable, then the key folder."""
    cfg = config()
    ref = cfg.settings.audit_key if purpose == "audit" else cfg.settings.pseudonym_key
    folder = os.environ.get("DATABOURSE_KEY_DIR") or cfg.settings.key_dir
    key_dir = cfg.resolve(folder) if folder else default_key_dir(cfg.store_root)
    forbidden = [cfg.state_dir, cfg.root / "configs"]
    if not cfg.store_root.startswith("s3://"):
        forbidden.append(Path(cfg.store_root))
    return KeyPlace(purpose, ref.env, key_dir, tuple(forbidden))


def load_key(purpose: str, version: str = DEFAULT_VERSION) -> Key:
    """A key from the environment, the key file, or (authenticated API only) a Secret block."""
    place = key_place(purpose)
    key = read_key(place, version) or _block_key(place, version)
    if key is None:
        key = require_key(place, version)  # raises SecretMissing, naming where it looked
    if (key.purpose, key.version, key.key_id) not in _BOUND:
        bind(store(), key)
        _BOUND.add((key.purpose, key.version, key.key_id))
    return key


_BOUND: set[tuple[str, str, str]] = set()  # keys whose id this process checked against the store


def blocks_allowed() -> bool:
    """Secret blocks are read only where settings say the Prefect API requires authentication.

    An auth string in the environment is not enough: the managed local stack sets one for its
    own server, which holds no Secret blocks, and an operator must decide to keep keys there.
    """
    return config().settings.prefect_api_authenticated


def _block_key(place: KeyPlace, version: str) -> Key | None:
    """The key from a Prefect Secret block (authenticated API only), checked like the others."""
    cfg = config()
    ref = cfg.settings.audit_key if place.purpose == "audit" else cfg.settings.pseudonym_key
    if not ref.block or not blocks_allowed():
        return None
    name = ref.block if version == DEFAULT_VERSION else f"{ref.block}-{version.lower()}"
    from prefect.blocks.system import Secret

    try:
        value = str(cast(Secret[str], Secret.load(name)).get())
    except ValueError:
        return None  # no such block
    except (httpx.HTTPError, OSError) as exc:
        log.warning("Secret block %r not read: the Prefect API did not answer (%s)", name, exc)
        return None  # then the missing key is reported, naming every place looked at
    check_strength(value.encode(), f"the Prefect Secret block {name!r}")
    return Key(place.purpose, version, f"Prefect Secret block {name!r}", value.encode())


def audit(kind: str, error: DataBourseError, **where: str) -> None:
    """Record a failed gate in the audit trail: where, why (the message names no values)."""
    audit_failure(catalog(), kind, error, **where)


def bundle() -> Resources:
    """This process's resources, as the steps take them."""
    return Resources(config(), store(), catalog())

"""Resources tasks need, fetched in one place: config, object store, catalog, secrets."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import cast

from databourse.catalog import Catalog
from databourse.config import Config, ProductSpec, load_config
from databourse.errors import DataBourseError, SecretMissing
from databourse.storage import ObjectStore, open_store


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
    """The catalog database, with its tables created if missing."""
    cat = Catalog(config().catalog_url)
    cat.create_schema()
    return cat


def pseudonym_keys(product: ProductSpec) -> bytes | dict[str, bytes]:
    """The key, or for a product naming key versions, every version it names plus the default.

    A version `v2` is read from `$<env>__V2`, then the Secret block `<block>-v2`: rotating means
    adding the new key under a new version and pointing the rule's `key_version` at it.
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


def pseudonym_key(version: str | None = None) -> bytes:
    """The pseudonymization key: environment variable first, then the Prefect Secret block."""
    ref = config().settings.pseudonym_key
    env = f"{ref.env}__{version.upper()}" if version else ref.env
    block_name = f"{ref.block}-{version.lower()}" if version and ref.block else ref.block
    value = os.environ.get(env)
    if not value and block_name:
        from prefect.blocks.system import Secret

        try:
            block = cast(Secret[str], Secret.load(block_name))
            value = str(block.get())
        except ValueError:
            value = None  # no such block
    if not value:
        raise SecretMissing(
            f"pseudonymization key{f' {version}' if version else ''} not set: export {env} or "
            f"create the Prefect Secret block {block_name!r} (bourse secrets init creates the "
            "default one with a random key)",
            env=env,
            block=block_name,
        )
    return value.encode()


def audit(kind: str, error: DataBourseError, **where: str) -> None:
    """Record a failed gate in the audit trail: where, why (the message names no values)."""
    context = {k: v for k, v in error.context.items() if isinstance(v, str | int | None)}
    catalog().audit_append(
        kind, detail={**where, **context, "error": type(error).__name__, "message": str(error)}
    )

"""Resources tasks need, fetched in one place: config, object store, catalog, secrets."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import cast

from databourse.catalog import Catalog
from databourse.config import Config, load_config
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


def pseudonym_key() -> bytes:
    """The pseudonymization key: environment variable first, then the Prefect Secret block."""
    ref = config().settings.pseudonym_key
    value = os.environ.get(ref.env)
    if not value and ref.block:
        from prefect.blocks.system import Secret

        try:
            block = cast(Secret[str], Secret.load(ref.block))
            value = str(block.get())
        except ValueError:
            value = None  # no such block
    if not value:
        raise SecretMissing(
            f"pseudonymization key not set: export {ref.env} or create the Prefect Secret block"
            f" {ref.block!r} (bourse secrets init creates one with a random key)",
            env=ref.env,
            block=ref.block,
        )
    return value.encode()


def audit(kind: str, error: DataBourseError, **where: str) -> None:
    """Record a failed gate in the audit trail: where, why (the message names no values)."""
    context = {k: v for k, v in error.context.items() if isinstance(v, str | int | None)}
    catalog().audit_append(
        kind, detail={**where, **context, "error": type(error).__name__, "message": str(error)}
    )

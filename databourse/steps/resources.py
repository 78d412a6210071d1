"""What a step works with, handed in by its caller, and the audit of a failed gate."""

from __future__ import annotations

from dataclasses import dataclass

from databourse.catalog.database import Catalog
from databourse.config import Config, ProductSpec
from databourse.errors import DataBourseError
from databourse.storage.store import ObjectStore


@dataclass(frozen=True)
class Resources:
    """The project's configs, its object store and its catalog (whose audit key it holds)."""

    config: Config
    store: ObjectStore
    catalog: Catalog


def audit_failure(catalog: Catalog, kind: str, error: DataBourseError, **where: str) -> None:
    """Record a failed gate in the audit trail: where, why (the message names no values)."""
    context = {k: v for k, v in error.context.items() if isinstance(v, str | int | None)}
    catalog.audit_append(
        kind, detail={**where, **context, "error": type(error).__name__, "message": str(error)}
    )


def catalogued(res: Resources, product_id: str) -> ProductSpec:
    """The product's config, its row in the catalog made when missing."""
    product = res.config.product(product_id)
    src = product.source
    res.catalog.ensure_product(product_id, product.name, src.provider, src.dataset)
    return product

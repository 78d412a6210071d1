"""Object keys of the storage zones: deterministic from names, hashes and versions.

landing/<provider>/...                           provider drops
raw/<provider>/<dataset>/<ingest-id>/            original bytes + _ingest.json (immutable)
quarantine/<provider>/<dataset>/<ingest-id>/     what failed a gate + _reason.json
reports/<provider>/<dataset>/<ingest-id>/        quality.json, pii.json
reports/products/<product>/<version>/            privacy.json
staging/<provider>/<dataset>/<ingest-id>/        typed Parquet (never listed for buyers)
staging/products/<product>/<content-hash>/       product files before they get a version
products/<product>/<version>/                    published Parquet + manifest.json (last)
catalog/                                         exports for outside consumers
audit/                                           exported audit records
"""

from __future__ import annotations

import re

ZONES = ("landing", "raw", "quarantine", "reports", "staging", "products", "catalog", "audit")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")


def safe_part(part: str) -> str:
    """A single key segment: no slashes, no '..', no hidden names, nothing a shell would expand."""
    if not _SAFE.match(part) or part in {".", ".."} or ".." in part:
        raise ValueError(f"unsafe key segment {part!r}")
    return part


def join(*parts: str) -> str:
    return "/".join(safe_part(p) for p in parts)


def raw_prefix(provider: str, dataset: str, ingest_id: str) -> str:
    return join("raw", provider, dataset, ingest_id)


def quarantine_prefix(provider: str, dataset: str, ingest_id: str) -> str:
    return join("quarantine", provider, dataset, ingest_id)


def reports_prefix(provider: str, dataset: str, ingest_id: str) -> str:
    return join("reports", provider, dataset, ingest_id)


def staging_key(provider: str, dataset: str, ingest_id: str) -> str:
    return join("staging", provider, dataset, ingest_id, "data.parquet")


def product_staging_prefix(product: str, content_hash: str) -> str:
    return join("staging", "products", product, content_hash)


def product_prefix(product: str, version: str) -> str:
    return join("products", product, version)


def product_reports_prefix(product: str, version: str) -> str:
    return join("reports", "products", product, version)


def landing_prefix(provider: str) -> str:
    return join("landing", provider)

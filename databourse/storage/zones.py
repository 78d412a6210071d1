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

import hashlib
import re
import unicodedata

ZONES = ("landing", "raw", "quarantine", "reports", "staging", "products", "catalog", "audit")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")


def safe_part(part: str) -> str:
    """A single key segment: no slashes, no '..', no hidden names, nothing a shell would expand."""
    if not _SAFE.fullmatch(part) or part in {".", ".."} or ".." in part:
        raise ValueError(f"unsafe key segment {part!r}")
    return part


def file_name(name: str) -> str:
    """The key segment for a provider's file name.

    A name that is a safe segment is kept. One with a path, `..`, a hidden dot or control/bidi
    characters is refused (ValueError): nothing in it should reach a key or a log. Anything else
    (e.g. `订单 2026.csv`) becomes ASCII: unsafe runs become `_`, plus 8 hex digits of the
    name's sha256 so that two names never collide, the extension kept.
    """
    try:
        return safe_part(name)
    except ValueError:
        pass
    hostile = any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name)
    if hostile or "/" in name or "\\" in name or ".." in name or name.startswith(".") or not name:
        raise ValueError(f"unsafe file name {name!r}")
    stem, ext = re.fullmatch(r"(.*?)((?:\.[A-Za-z0-9]{1,8}){0,3})", name).groups()  # type: ignore[union-attr]
    clean = re.sub(r"[^A-Za-z0-9._+-]+", "_", stem).strip("._-+") or "file"
    tag = hashlib.sha256(name.encode()).hexdigest()[:8]
    return safe_part(f"{clean[:150]}-{tag}{ext}")


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

"""From a staged dataset to a product table: rules, privacy model, aggregates, risk, re-scan.

One domain function the build task calls; everything it decides is returned as figures for the
manifest (never values). The privacy model is re-verified independently after the Parquet is
written (`verify_written`), from the files alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse import lattice
from databourse.aggregate import aggregate
from databourse.anonymize import Keys, apply_rules, key_fingerprints
from databourse.config import ProductSpec
from databourse.errors import PersonalDataFound, PrivacyModelFailed
from databourse.hierarchy import Hierarchy
from databourse.pii import scan_table
from databourse.privacy import enforce_model, verify
from databourse.risk import prosecutor_risk
from databourse.screening import direct_identifiers
from databourse.transfer import remaining_personal_data

log = logging.getLogger(__name__)


@dataclass
class Productized:
    """The product table and the evidence about it."""

    table: pa.Table
    privacy: dict[str, Any] = field(default_factory=dict)
    personal_data: dict[str, Any] = field(default_factory=dict)


def productize(
    table: pa.Table,
    product: ProductSpec,
    declared: dict[str, str],
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
) -> Productized:
    """Apply the product's rules and privacy model (the identifier scan is `verify_written`'s)."""
    out = apply_rules(table, product, key, hierarchies)
    privacy: dict[str, Any] = {"model": None}
    if product.privacy is not None:
        searched = {n for n, r in product.columns.items() if r.hierarchy and r.level is None}
        if searched:
            out, result, report = lattice.anonymize(out, hierarchies, product.privacy)
            privacy = {"model": "lattice-search", "search": result.to_json(), **report.to_json()}
        else:
            out, report = enforce_model(out, product.privacy)
            privacy = {"model": "k-anonymity", **report.to_json()}
        privacy["risk"] = prosecutor_risk(out, product.privacy.quasi_identifiers).to_json()
    if product.type == "aggregate" and product.aggregate is not None:
        out, agg = aggregate(out, product.aggregate, key if isinstance(key, bytes) else None)
        privacy["aggregate"] = agg.to_json()
    remaining = remaining_personal_data(product, declared)
    if product.type == "aggregate":
        remaining = {}  # cells, not records: no column holds an individual's data
    pseudonyms = [c for c in remaining if c in out.column_names]
    individuals = max((pc.count_distinct(out[c]).as_py() for c in pseudonyms), default=0)
    personal = {
        "remaining": remaining,
        "individuals": individuals if remaining else 0,
        "pseudonym_keys": key_fingerprints(product, key) if key else {},
        "rescan_direct_identifiers": 0,
    }
    log.info("%s: %d rows out, model %s", product.id, out.num_rows, privacy["model"])
    return Productized(table=out, privacy=privacy, personal_data=personal)


def verify_written(
    parquet_dir: Path, product: ProductSpec, pii_threshold: float = 0.8, sample_rows: int = 2000
) -> dict[str, Any] | None:
    """The last checks before a version can exist, on the written files alone.

    No direct identifier may be found in them (PersonalDataFound), and the privacy model must
    hold (PrivacyModelFailed). Returns the privacy re-check's figures, None without a model.
    """
    written = pq.read_table(parquet_dir)
    found = direct_identifiers(
        scan_table(written, threshold=pii_threshold, sample_rows=sample_rows)
    )
    if found:
        raise PersonalDataFound(
            f"{product.id}: the written files hold direct identifiers in "
            f"{[f['column'] for f in found]}; no version is made",
            product=product.id,
        )
    if product.privacy is None or product.type == "aggregate":
        return None
    report = verify(written, product.privacy)
    if not report.satisfied:
        raise PrivacyModelFailed(
            f"{product.id}: the written files break the privacy model (k={report.k}, smallest "
            f"class {report.smallest_class}); no version is made",
            product=product.id,
        )
    return report.to_json()

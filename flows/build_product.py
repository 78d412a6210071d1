"""Flow: anonymize an ingested dataset by a product's rules and package it as a version."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.building import anonymize, package_version


@flow(name="build-product", flow_run_name="build/{product}/{ingest_id}")
def build_product(product: str, ingest_id: str) -> dict[str, Any]:
    """Returns the version (new, or the existing one with the same content hash)."""
    anonymized = anonymize(product, ingest_id)
    return package_version(product, anonymized)

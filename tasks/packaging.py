"""Tasks: give a built product's staged content a version, write its files and manifest."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.events import emit_event

from databourse.steps import packaging
from databourse.steps.assembling import Anonymized
from databourse.steps.packaging import Packaged, QualityDrop
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import trusted_staged


@task(
    name="package-version",
    task_run_name="package {product_id}",
    **RETRY_TRANSIENT,
)
def package_version(product_id: str, anonymized: dict[str, Any]) -> dict[str, Any]:
    """Give the staged content a version (or find the one it already has) and write it."""
    res = resources.bundle()
    packaged = packaging.package_version(
        res, product_id, Anonymized.from_json(anonymized), lambda r: trusted_staged(res.store, r)
    )
    report_packaged(packaged)
    return packaged.to_json()


def report_packaged(packaged: Packaged) -> None:
    """Log what the run found or wrote, signal a quality drop, link the manifest."""
    logger = get_run_logger()
    product_id, version = packaged.product, packaged.version
    if packaged.written is None:
        logger.info("%s@%s already holds this content: nothing new", product_id, version)
    else:
        logger.info("%s@%s packaged (%s)", product_id, version, packaged.written)
    if packaged.quality_drop is not None:
        signal_quality_drop(product_id, packaged.quality_drop)
    reporting.link(
        f"product-{product_id}", packaged.manifest_uri, f"Manifest of {product_id}@{version}"
    )


def signal_quality_drop(product_id: str, drop: QualityDrop) -> None:
    """Emit `databourse.product.quality-dropped` when this version scores below the previous one."""
    get_run_logger().warning(
        "%s@%s: overall quality %.3f, down from %.3f in %s",
        product_id,
        drop.version,
        drop.overall,
        drop.previous_overall,
        drop.previous_version,
    )
    emit_event(
        event="databourse.product.quality-dropped",
        resource={
            "prefect.resource.id": f"databourse.product.{product_id}",
            "prefect.resource.name": product_id,
        },
        payload=asdict(drop),
    )

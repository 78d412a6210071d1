"""Task: build an ingest's documents into a corpus product's version (databourse.steps.corpus)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from databourse.corpus.build import OUTPUT
from databourse.product.package import schema_of
from databourse.steps import corpus
from databourse.steps.corpus import CorpusVersion
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import ingested_copy


@task(name="build-corpus-version", task_run_name="corpus {product_id}", **RETRY_TRANSIENT)
def build_corpus_version(product_id: str, ingest_id: str) -> dict[str, Any]:
    """The version holding the ingest's documents, built, found, or none (nothing kept)."""
    res = resources.bundle()
    pseudonyms = resources.text_pseudonyms(res.config.product(product_id))
    built = corpus.build_corpus(
        res, product_id, ingest_id, lambda record: ingested_copy(res.store, record), pseudonyms
    )
    report_corpus(built)
    return {"schema": schema_of(OUTPUT.empty_table()), **built.to_json()}


def report_corpus(built: CorpusVersion) -> None:
    """Log what the build kept and removed (counts only) and link the version's manifest."""
    logger, stats = get_run_logger(), built.stats
    logger.info(
        "%s@%s: %s of %s documents kept%s", built.product, built.version or "(none)",
        stats.get("kept"), stats.get("documents_in"), "" if built.new else " (no new version)",
    )  # fmt: skip
    if built.manifest_uri is not None:
        reporting.link(
            f"product-{built.product}", built.manifest_uri,
            f"Manifest of {built.product}@{built.version}",
        )  # fmt: skip
    rows = [
        {"measure": f"removed: {step}", "count": n} for step, n in stats.get("removed", {}).items()
    ]
    rows += [
        {"measure": f"kept: {lang}", "count": n} for lang, n in stats.get("languages", {}).items()
    ]
    rows += [
        {"measure": f"identifiers replaced: {c}", "count": n}
        for c, n in stats.get("redacted", {}).items()
    ]
    rows += [
        {"measure": f"distinct pseudonyms: {c}", "count": n}
        for c, n in stats.get("pseudonyms", {}).items()
    ]
    rows += [
        {"measure": f"identifiers left: {c}", "count": n}
        for c, n in stats.get("leftover", {}).items()
    ]
    reporting.table(
        f"corpus-{built.product}",
        rows,
        f"What the corpus build of {built.product} removed, kept and replaced (counts)",
    )

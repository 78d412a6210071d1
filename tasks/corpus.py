"""Tasks: build an ingest's documents into a corpus product's version in partitions
(databourse.steps.corpus_parts): plan, prepare each partition, de-duplicate them all in order,
finish each partition, package the version.

As the product build's passes (tasks.building): the passes exchange work files named in their
small JSON results with the sha256 each writer recorded; on the local store the work folder is
private to this machine, on S3 each task downloads what it reads (checked) and uploads what it
writes, so a Dask worker elsewhere needs only the store and the configs. The staged file is read
in checked byte ranges (S3) or from the build's checked private copy.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from databourse.corpus.build import OUTPUT
from databourse.ingest.records import load_ingest
from databourse.product.package import schema_of
from databourse.product.partitions import Partition
from databourse.steps import building, corpus_parts
from databourse.steps.corpus import CorpusVersion
from databourse.steps.corpus_parts import CorpusPlan, Pass
from tasks import reporting, resources
from tasks.building import planned_files
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import audited_refusal, trusted_staged
from tasks.work_files import remove_work_folder, source_file, work_folder


def versioned(built: CorpusVersion) -> dict[str, Any]:
    """What the build returns: the version (or none) with its schema."""
    return {"schema": schema_of(OUTPUT.empty_table()), **built.to_json()}


@task(name="plan-corpus-build", task_run_name="plan corpus {product_id} from {ingest_id}",
      **RETRY_TRANSIENT)  # fmt: skip
def plan_corpus_build(
    product_id: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """Cut the staged documents into partitions, or find the version already holding them."""
    res = resources.bundle()
    found = corpus_parts.built_already(res, product_id, ingest_id)
    if found is not None:
        return {"built": versioned(found)}
    rows = partition_rows or res.config.settings.runs.corpus_documents
    plan = _planned(product_id, ingest_id, rows)
    get_run_logger().info(
        "%s: %d partition(s) of up to ~%d documents", product_id, len(plan.partitions), rows
    )
    return plan.to_json()


def _planned(product_id: str, ingest_id: str, rows: int) -> CorpusPlan:
    """The plan on a new work folder, dropped again if planning fails (a retry plans anew)."""
    res = resources.bundle()
    src = res.config.product(product_id).source
    record = load_ingest(res.store, src.provider, src.dataset, ingest_id)
    work = building.work_prefix(product_id, ingest_id)
    try:
        trusted = trusted_staged(res.store, record)  # `_ingest.json` agrees with the trail
        with planned_files(res.store, work, record, trusted) as files:
            uri = None if files[2] else res.store.uri(record.staged_key)
            with audited_refusal(record.provider, record.dataset):
                return corpus_parts.plan_corpus(
                    res, record, trusted, product_id, work, files, rows, uri
                )
    except BaseException:
        remove_work_folder(res.store, work)
        raise


@task(name="prepare-corpus-part", task_run_name="prepare {plan[product]} part {part[index]}",
      **RETRY_TRANSIENT)  # fmt: skip
def prepare_corpus_part(plan: dict[str, Any], part: dict[str, int]) -> dict[str, Any]:
    """Stage 1 over one partition: opt-out, licence, language, quality filters, dedup keys."""
    res, planned = resources.bundle(), CorpusPlan.from_json(plan)
    reads = corpus_parts.reads(planned, "prepare", [])
    with (
        source_file(res.store, plan) as source,
        work_folder(res.store, plan["work"], reads) as work,
    ):
        done = corpus_parts.prepare_partition(res, planned, Partition.from_json(part), source, work)
    return done.to_json()


@task(name="dedup-corpus", task_run_name="dedup {plan[product]}", **RETRY_TRANSIENT)
def dedup_corpus(plan: dict[str, Any], prepared: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage 2: every partition's documents against the earlier versions and the ones before."""
    res, planned = resources.bundle(), CorpusPlan.from_json(plan)
    results = [Pass.from_json(p) for p in prepared]
    stems = [str(p.stem) for p in results]
    reads = corpus_parts.reads(planned, "dedup", stems, *results)
    with work_folder(res.store, plan["work"], reads) as work:
        done = corpus_parts.dedup_partitions(res, planned, stems, work)
    return done.to_json()


@task(name="finish-corpus-part", task_run_name="finish {plan[product]} {prepared[stem]}",
      **RETRY_TRANSIENT)  # fmt: skip
def finish_corpus_part(
    plan: dict[str, Any], prepared: dict[str, Any], deduped: dict[str, Any]
) -> dict[str, Any]:
    """Stage 3 over one partition: the documents kept, redacted and scanned again."""
    res, planned = resources.bundle(), CorpusPlan.from_json(plan)
    done = [Pass.from_json(prepared), Pass.from_json(deduped)]
    reads = corpus_parts.reads(planned, "finish", [str(done[0].stem)], *done)
    pseudonyms = resources.text_pseudonyms(res.config.product(planned.product))
    with work_folder(res.store, plan["work"], reads) as work:
        finished = corpus_parts.finish_partition(work, str(done[0].stem), pseudonyms)
    return finished.to_json()


@task(name="package-corpus", task_run_name="package {plan[product]}", **RETRY_TRANSIENT)
def package_corpus(
    plan: dict[str, Any], prepared: list[dict[str, Any]], deduped: dict[str, Any],
    finished: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The version of the partitions' outputs: shards, the leftover gate, the package."""
    res, planned = resources.bundle(), CorpusPlan.from_json(plan)
    results = [Pass.from_json(p) for p in [*prepared, deduped, *finished]]
    stems = [str(p["stem"]) for p in prepared]
    product = res.config.product(planned.product)
    record = load_ingest(
        res.store, product.source.provider, product.source.dataset, planned.ingest_id
    )
    with work_folder(
        res.store, plan["work"], corpus_parts.reads(planned, "package", stems, *results)
    ) as work:
        built = corpus_parts.package_parts(
            res, planned, record, stems, work, resources.text_pseudonyms(product)
        )
    report_corpus(built)
    return versioned(built)


@task(name="drop-corpus-work", task_run_name="drop work of {plan[work]}", **RETRY_TRANSIENT)
def drop_corpus_work(plan: dict[str, Any]) -> None:
    """Remove the corpus build's work folder (its partitions' documents and counts)."""
    remove_work_folder(resources.store(), plan["work"])


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

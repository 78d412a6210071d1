"""Flow: build an ingest's documents into a version of a corpus product (type `corpus`).

The version goes through the same catalog, manifest and gate as a table product's
(databourse.steps.corpus); a build that kept no document (all duplicates of earlier versions,
say) returns no version, and process-drop requests no publication for it.

The build runs as the subflow `build-corpus-parts`, in partitions of the staged documents
(`settings.runs.corpus_documents` each) mapped as tasks on the configured task runner (threads,
or Dask workers: flows.runners): prepare each partition (opt-out, licence, language, quality
filters, dedup keys), de-duplicate every partition in document order once, finish each partition
(redaction, re-scan), package the version. The version does not depend on the partitioning or
the runner: it is the one a single pass builds (databourse.corpus.parts).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped
from prefect.futures import PrefectFuture, wait

from flows.run_names import tags_of_this_run, untagged_tasks
from flows.runners import partition_runner
from tasks import reporting, resources
from tasks.corpus import (
    dedup_corpus,
    drop_corpus_work,
    finish_corpus_part,
    package_corpus,
    plan_corpus_build,
    prepare_corpus_part,
)
from tasks.lineage import built, tracked


@flow(name="build-corpus", flow_run_name="corpus/{product}/{ingest_id}")
def build_corpus(product: str, ingest_id: str, partition_rows: int | None = None) -> dict[str, Any]:
    """The version (new, the one that already holds this ingest, or none).

    `partition_rows` overrides the configured documents per partition for this run."""
    with untagged_tasks(), tracked(built(product, ingest_id)) as run:
        runner = partition_runner(resources.config().settings.runs)
        parts = build_corpus_parts.with_options(task_runner=runner)
        with tags_of_this_run():
            run.result = parts(product, ingest_id, partition_rows)
    return run.result


@flow(name="build-corpus-parts", flow_run_name="corpus-parts/{product}/{ingest_id}")
def build_corpus_parts(
    product: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """The passes over the partitions; the work folder dropped whatever happens."""
    with untagged_tasks():
        plan = plan_corpus_build(product, ingest_id, partition_rows)
        if "built" in plan:
            return dict(plan["built"])
        started: list[PrefectFuture[Any]] = []
        try:
            prepared = prepare_corpus_part.map(unmapped(plan), plan["partitions"])
            started += list(prepared)
            reporting.partitions_progress(
                f"corpus-progress-{product}", f"Corpus build of {product}: documents prepared",
                list(prepared), [p["rows"] for p in plan["partitions"]],
            )  # fmt: skip
            deduped = dedup_corpus(plan, prepared.result())
            finished = finish_corpus_part.map(unmapped(plan), prepared.result(), unmapped(deduped))
            started += list(finished)
            return dict(package_corpus(plan, prepared.result(), deduped, finished.result()))
        finally:
            wait(started)  # a part still running when another failed writes nothing after
            drop_corpus_work(plan)

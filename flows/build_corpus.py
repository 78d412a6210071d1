"""Flow: build an ingest's documents into a version of a corpus product (type `corpus`).

The version goes through the same catalog, manifest and gate as a table product's
(databourse.steps.corpus); a build that kept no document (all duplicates of earlier versions,
say) returns no version, and process-drop requests no publication for it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.run_names import untagged_tasks
from tasks.corpus import build_corpus_version
from tasks.lineage import built, tracked


@flow(name="build-corpus", flow_run_name="corpus/{product}/{ingest_id}")
def build_corpus(product: str, ingest_id: str) -> dict[str, Any]:
    """The version (new, the one that already holds this ingest, or none)."""
    with untagged_tasks(), tracked(built(product, ingest_id)) as run:
        run.result = build_corpus_version(product, ingest_id)
    return run.result

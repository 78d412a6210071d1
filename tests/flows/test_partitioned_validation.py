"""The validation's personal-data scan and quality suite in partitions mapped as tasks (issue 23,
item 2), through the real flow on a real Prefect API: one partition, five or more on threads, as
many on two Dask worker processes; the same pii.json and quality.json each time, the work folder
dropped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from databourse.product.partitions import plan_partitions

pytestmark = pytest.mark.prefect

PROVIDER, DATASET = "sz-retail", "customer_orders"


def reports(project: Path, ingest_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """pii.json, and quality.json without the time it was validated at."""
    folder = project / "state" / "store" / "reports" / PROVIDER / DATASET / ingest_id
    quality = json.loads((folder / "quality.json").read_text())
    quality.pop("validated_at")
    return json.loads((folder / "pii.json").read_text()), quality


def partition_tasks(flow_run_id: Any, task: str = "scan_partition") -> list[str]:
    """The names of a flow run's task runs of one mapped task (scan-partition by default)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(r.name for r in runs if r.task_key.startswith(task))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dask/distributed internals
def test_partitions_on_threads_and_on_dask_workers_find_what_one_scan_finds(
    prefect_api: str, project: Path, tmp_path: Path
) -> None:
    from helpers import two_dask_workers
    from prefect_dask import DaskTaskRunner

    from databourse_samples.demo import generate_drops
    from flows.ingest_dataset import ingest_dataset
    from flows.validate_dataset import validate_dataset

    drop = next(d for d in generate_drops(tmp_path / "drops", scale=0.2) if d.provider == PROVIDER)
    ingested = ingest_dataset(PROVIDER, DATASET, str(drop.path))
    ingest_id = ingested["ingest_id"]
    staged = next((project / "state" / "store" / "staging" / PROVIDER / DATASET).rglob("*.parquet"))
    partitions = len(plan_partitions(staged, 100))  # at row group ends
    assert partitions >= 5

    one = validate_dataset(PROVIDER, DATASET, ingest_id, return_state=True)
    assert len(partition_tasks(one.state_details.flow_run_id)) == 1
    assert len(partition_tasks(one.state_details.flow_run_id, "tally_quality")) == 1
    whole_pii, whole_quality = reports(project, ingest_id)
    assert any(f["category"] == "CN_RESIDENT_ID" for f in whole_pii["findings"])

    threads = validate_dataset(PROVIDER, DATASET, ingest_id, partition_rows=100, return_state=True)
    assert len(partition_tasks(threads.state_details.flow_run_id)) == partitions
    assert len(partition_tasks(threads.state_details.flow_run_id, "tally_quality")) == partitions
    assert reports(project, ingest_id) == (whole_pii, whole_quality)

    with two_dask_workers() as workers:
        dask = validate_dataset.with_options(task_runner=DaskTaskRunner(address=workers["address"]))
        dask(PROVIDER, DATASET, ingest_id, partition_rows=100)
    worked, pids = workers["tasks"], workers["pids"]
    assert all(n > 0 for n in worked.values()) and len(worked) == 2  # both workers worked
    assert os.getpid() not in pids.values()
    assert reports(project, ingest_id) == (whole_pii, whole_quality)

    work = project / "state" / "work" / "validations" / f"{PROVIDER}+{DATASET}"
    assert not list(work.iterdir())  # every run's work folder dropped
    assert not (project / "state" / "store" / "staging" / "validations").exists()

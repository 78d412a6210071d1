"""The task runner of the passes over partitions (a validation's scan, a build's passes).

A flow's task runner is fixed when it is decorated, so callers resolve it at call time from
settings `runs` and run the flow `with_options(task_runner=...)`: threads by default, or Dask
through prefect-dask (a scheduler's address, or a local cluster that lives while the flow runs).
"""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from databourse.config import RunSettings


def partition_runner(runs: RunSettings) -> TaskRunner[Any]:
    """The task runner of the partitioned passes: `partition_threads` threads (one per CPU by
    default), or Dask (a scheduler's address, else a local cluster of `dask_workers`
    single-threaded worker processes)."""
    if runs.task_runner != "dask":
        return ThreadPoolTaskRunner(max_workers=runs.threads())
    from prefect_dask import DaskTaskRunner

    if runs.dask_address:
        return DaskTaskRunner(address=runs.dask_address)
    workers = {"n_workers": runs.dask_workers, "threads_per_worker": 1, "processes": True}
    return DaskTaskRunner(cluster_kwargs={**workers, "dashboard_address": None})

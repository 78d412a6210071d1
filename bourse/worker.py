"""`bourse worker`: a work-pool worker that runs only this project's flows, as imported here.

Prefect's process worker starts each flow run from what the Prefect API stores: the
deployment's pull steps and entrypoint, and the job variables `command`, `env` and
`working_dir` of the pool's base job template, the deployment and the flow run. Whoever holds
the API auth string (every approver does) could so run code beside the pseudonym and audit keys.
This worker takes none of that: it checks that the run's deployment is one of
deploy/prefect.yaml, then starts the fixed command `python -I -m bourse.worker_run <id>` in its
own folder with its own environment; that process runs the flow imported from flows/ (the map
`bourse serve` uses). A run of any other deployment is marked Failed and never started.

`prefect worker start --pool databourse --type databourse` starts the same worker (the package
registers it as a Prefect collection); a `process` pool is served as it is.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.runner._starter_engine import EngineCommandStarter
from prefect.states import Failed
from prefect.utilities.engine import propose_state
from prefect.workers.process import (
    ProcessJobConfiguration,
    ProcessWorker,
    ProcessWorkerResult,
)

from bourse.worker_run import RunRefused, imported_flow, run_command
from tasks.dispatching import WORKER_ENV

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import Flow as APIFlow
    from prefect.client.schemas.objects import FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse

WORKER_TYPE = "databourse"
# What a flow run needs when it is not started through the `bourse` CLI (bourse/runtime.py),
# unless the worker's own environment says otherwise. Fixed here: the API's `env` is ignored.
RUN_DEFAULTS = {
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",  # a resumed publish run reuses its results
    "PREFECT_LOGGING_EXTRA_LOGGERS": "databourse",  # domain logs reach the run page
    "GX_ANALYTICS_ENABLED": "false",
}


def run_folder() -> Path:
    """Where flow runs start: $DATABOURSE_HOME, else the folder the worker was started in."""
    return Path(os.environ.get("DATABOURSE_HOME") or os.getcwd()).resolve()


def run_env(worker_name: str | None = None) -> dict[str, str | None]:
    """The variables added to the worker's own environment for a flow run (none from the API):
    the defaults above, and the worker's name (a drop run tags itself with it)."""
    env: dict[str, str | None] = {k: v for k, v in RUN_DEFAULTS.items() if k not in os.environ}
    if worker_name:
        env[WORKER_ENV] = worker_name
    return env


class DataBourseJobConfiguration(ProcessJobConfiguration):
    """A flow run's process settings: fixed here, never read from the pool or the deployment."""

    @classmethod
    async def resolve_for_flow_run(
        cls,
        flow_run: FlowRun,
        *,
        client: PrefectClient,
        work_pool: WorkPool,
        worker_name: str,
        worker_id: UUID | None = None,
        deployment: DeploymentResponse | None = None,
    ) -> DataBourseJobConfiguration:
        """Ignore the base job template and every job variable (command, env, working_dir)."""
        configuration = cls(stream_output=True, working_dir=run_folder())
        configuration.prepare_for_flow_run(
            flow_run, work_pool=work_pool, worker_name=worker_name, worker_id=worker_id
        )
        return configuration

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: DeploymentResponse | None = None,
        flow: APIFlow | None = None,
        work_pool: WorkPool | None = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        super().prepare_for_flow_run(
            flow_run, None, None, work_pool, worker_name, worker_id=worker_id
        )
        self.command = shlex.join(run_command(flow_run.id))
        self.env = run_env(worker_name)
        self.working_dir = run_folder()


class DataBourseWorker(ProcessWorker):
    """A process worker whose runs are always this project's own flows (module docstring)."""

    type = WORKER_TYPE
    job_configuration = DataBourseJobConfiguration
    _description = "Runs only databourse's own flows, imported by the worker; never API code."
    _display_name = "databourse"

    def _record_work_pool_snapshot(self, work_pool: WorkPool) -> None:
        # A `process` pool (deploy/setup.sh makes one) is served as it is: its template is
        # ignored anyway, so Prefect's "type mismatch" warning would only alarm the operator.
        if work_pool.type == "process":
            work_pool = work_pool.model_copy(update={"type": self.type})
        super()._record_work_pool_snapshot(work_pool)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        """Start the fixed command for a run of a served deployment; refuse any other run."""
        status = task_status if task_status is not None else anyio.TASK_STATUS_IGNORED
        try:
            flow = await imported_flow(flow_run, self.client)
        except RunRefused as exc:
            return await self._refuse(flow_run, exc, status)
        folder = run_folder()
        async with FlowRunExecutorContext() as ctx:
            starter = EngineCommandStarter(
                command=shlex.join(run_command(flow_run.id)),
                cwd=folder,
                env=run_env(self.name),
                stream_output=True,
                control_channel=ctx.control_channel,
            )

            async def resolve(_run: FlowRun) -> Any:
                return flow  # on_crashed / on_cancellation hooks: the imported flow's too

            executor = ctx.create_executor(
                flow_run, starter, resolve_flow=resolve, propose_submitting=False
            )
            execution: FlowRunExecutionResult | None = None

            async def execute(*, task_status: anyio.abc.TaskStatus[Any]) -> None:
                nonlocal execution
                execution = await executor.submit(task_status=task_status)

            async with anyio.create_task_group() as group:
                handle = await group.start(execute)
                if handle.pid is None:
                    raise RuntimeError("flow run process has no PID")
                status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("the flow run process did not start")
        return ProcessWorkerResult(
            status_code=execution.status_code, identifier=str(execution.handle.pid)
        )

    async def _refuse(
        self, flow_run: FlowRun, exc: RunRefused, status: anyio.abc.TaskStatus[int]
    ) -> ProcessWorkerResult:
        self.get_flow_run_logger(flow_run).error("%s", exc)
        await propose_state(self.client, Failed(message=str(exc)), flow_run_id=flow_run.id)
        status.started(0)
        return ProcessWorkerResult(status_code=0, identifier="refused")

    async def _submit_adhoc_run(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the databourse worker runs deployment runs only")


def work(
    pool: str,
    *,
    limit: int | None = None,
    name: str | None = None,
    with_healthcheck: bool = False,
    printer: Callable[..., None] = print,
) -> None:
    """Run the worker on `pool` until stopped (`bourse worker`), as `prefect worker start` does."""
    from prefect.utilities.processutils import setup_signal_handlers_worker

    worker = DataBourseWorker(work_pool_name=pool, limit=limit, name=name)
    # first SIGTERM or SIGINT: stop taking runs and let running ones finish; a second: kill
    setup_signal_handlers_worker(os.getpid(), "the databourse worker", printer)
    asyncio.run(worker.start(with_healthcheck=with_healthcheck, printer=printer))

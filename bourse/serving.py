"""`bourse serve`: the deployments of deploy/prefect.yaml, served from this one process.

One declaration for both ways of running: the embedded runner reads the same file that
`prefect deploy` reads (names, entrypoints, parameters, tags, schedules, concurrency), so the two
cannot drift apart. `DATABOURSE_SCHEDULES=off` serves them without schedules (tests, demos).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml
from prefect.schedules import Cron

DEPLOY_FILE = Path("deploy") / "prefect.yaml"


def deploy_file() -> Path:
    """deploy/prefect.yaml of the checkout, else of $DATABOURSE_HOME, else of the current folder."""
    for root in (Path(__file__).resolve().parents[1], Path(os.environ.get("DATABOURSE_HOME", "."))):
        if (root / DEPLOY_FILE).is_file():
            return root / DEPLOY_FILE
    return DEPLOY_FILE


def declared() -> list[dict[str, Any]]:
    """The deployments of deploy/prefect.yaml."""
    spec = yaml.safe_load(deploy_file().read_text())
    return list(spec["deployments"])


def served_flows() -> list[tuple[Any, dict[str, Any]]]:
    """(flow, deployment options) of each declared deployment; DATABOURSE_SCHEDULES=off: none."""
    schedules_on = os.environ.get("DATABOURSE_SCHEDULES", "on") != "off"
    out = []
    for dep in declared():
        path, name = dep["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        limit = dep.get("concurrency_limit")
        options = {
            "name": dep["name"],
            "description": dep.get("description"),
            "tags": dep.get("tags"),
            "parameters": dep.get("parameters") or {},
            "schedules": [
                Cron(s["cron"], timezone=s.get("timezone", "UTC"))
                for s in dep.get("schedules") or []
                if "cron" in s and s.get("active", True)
            ]
            if schedules_on
            else None,
            "concurrency_limit": limit["limit"] if isinstance(limit, dict) else limit,
            "enforce_parameter_schema": dep.get("enforce_parameter_schema", True),
        }
        out.append((flow, options))
    return out


def runner_deployments() -> list[Any]:
    """`RunnerDeployment`s, one per declared deployment (what `bourse serve` registers)."""
    return [flow.to_deployment(**options) for flow, options in served_flows()]


def serve() -> None:
    """Run the embedded runner: each run executes the flow imported here, never code the API names.

    `prefect.serve(*deployments)` loads a run's flow from the deployment as the API stores it, so
    anyone who may PATCH a deployment (its `pull_steps`, `entrypoint`) runs code in the runner,
    next to the key files. `Runner.add_flow` keeps the imported flow for its deployment and
    starts every run of it from that object (Prefect's direct subprocess), whatever the API says.
    """
    import asyncio
    import socket

    from prefect.client.orchestration import get_client
    from prefect.runner import Runner

    from tasks.dispatching import WORKER_ENV
    from tasks.limits import create_provider_limits

    os.environ.setdefault(WORKER_ENV, f"runner@{socket.gethostname()}")  # its runs inherit it
    with get_client(sync_client=True) as client:  # before the first run asks for a slot
        create_provider_limits(client)
    runner = Runner(pause_on_shutdown=True)
    mark = environment_tag()  # whose runner serves them (bourse.localserver checks it)
    for flow, options in served_flows():
        runner.add_flow(flow, **{**options, "tags": [*(options["tags"] or []), mark]})
    asyncio.run(runner.start())


ENV_TAG = "databourse-env:"


def environment_tag() -> str:
    """The tag this environment's runner puts on the deployments it serves: its namespace
    (settings `artifact_namespace`, else a hash of the store root)."""
    from tasks import resources
    from tasks.reporting import namespace_of

    return f"{ENV_TAG}{namespace_of(resources.config())}"

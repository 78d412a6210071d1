"""Process environment for Prefect and databourse, set before Prefect is imported.

Without a configured `PREFECT_API_URL`, the project runs its own local Prefect server (SQLite
under `state/prefect/`) at http://127.0.0.1:4200; with one, that server is used as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from databourse.config import default_config_dir

MANAGED = "DATABOURSE_MANAGED_PREFECT"
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
HEARTBEAT_SECONDS = 30


@dataclass(frozen=True)
class Runtime:
    project: Path
    state: Path
    api_url: str
    managed: bool  # True when the local server is ours to start and stop

    @property
    def ui_url(self) -> str:
        return os.environ.get("PREFECT_UI_URL") or self.api_url.removesuffix("/api")

    def run_url(self, flow_run_id: str) -> str:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}"


def configure() -> Runtime:
    """Set the environment once per process; child processes inherit it."""
    config_dir = default_config_dir()
    project = config_dir.parent
    os.environ.setdefault("DATABOURSE_CONFIG_DIR", str(config_dir))
    state = project / os.environ.get("DATABOURSE_STATE_DIR", "state")
    managed = os.environ.get(MANAGED) == "1" or "PREFECT_API_URL" not in os.environ
    if managed:
        port = os.environ.get("DATABOURSE_PREFECT_PORT", "4200")
        os.environ[MANAGED] = "1"
        os.environ.setdefault("PREFECT_HOME", str(state / "prefect"))
        os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    defaults = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(state / "prefect" / "results"),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "databourse",
        # domain code also runs outside flow runs (samples, checks): keep those logs local
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        # Slot leases on disk (PREFECT_HOME/concurrency_leases): a server restart keeps them and a
        # dead holder's lease expires; the default memory storage loses them and leaks the slots.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
        # A running flow run beats every 30 s (Prefect's minimum); the zombie automation
        # (bourse/automations.py) marks one Crashed when its beats stop.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
        "GX_ANALYTICS_ENABLED": "false",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return Runtime(
        project=project, state=state, api_url=os.environ["PREFECT_API_URL"], managed=managed
    )

"""A Prefect API holder cannot run code on the workers that hold the keys (issue 15, pass 6).

Each test runs against a real Prefect server and a real worker process on the `databourse`
pool, twice: with `bourse worker` (the layouts of deploy/) and, as the control that shows the
attack is real, with Prefect's plain `prefect worker start --type process`. The attacker holds
only the API: they create or PATCH deployments (pull steps, entrypoint, job variables `command`
and `env`) and read back what they can (variables, logs). With the plain worker the pseudonym
key leaks; with `bourse worker` the served flows run from the imported code, a foreign
deployment's run is refused, and the key appears nowhere the API or the worker log shows.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TEST_AUDIT_KEY, TEST_KEY
from helpers import api, make_project, own_prefect_server

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POOL = "databourse"
DROP = "landing/sz-retail/customer_orders/orders.csv"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
WORKERS = {
    "bourse": [sys.executable, "-m", "bourse", "worker", "--pool", POOL],
    "plain-prefect": [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
}


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """A Prefect server of this module's own: the deployments here must not re-bind those that
    the session's `bourse serve` runner serves (a deployment name is unique per flow)."""
    with own_prefect_server("databourse-worker-") as url:
        api(url, "POST", "/work_pools/", {"name": POOL, "type": "process"})
        yield url


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_project(tmp_path_factory.mktemp("worker") / "project")
    drop = path / "state/store" / DROP
    drop.parent.mkdir(parents=True)
    drop.write_text("order_id\nA1\n")
    return path


@dataclass
class Worker:
    kind: str
    log: Path
    since: int = 0  # where this test's part of the log starts

    def mark(self) -> None:
        self.since = self.log.stat().st_size

    def text(self) -> str:
        with self.log.open("rb") as fh:
            fh.seek(self.since)
            return fh.read().decode(errors="replace")


@pytest.fixture(scope="module", params=sorted(WORKERS))
def worker(
    request: pytest.FixtureRequest, api_url: str, project: Path, tmp_path_factory: Any
) -> Iterator[Worker]:
    """One worker process on the pool (its environment holds both keys, as in deploy/)."""
    kind = str(request.param)
    log = tmp_path_factory.mktemp(kind) / "worker.log"
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "DATABOURSE_CONFIG_DIR": str(project / "configs"),
        "DATABOURSE_PSEUDONYM_KEY": TEST_KEY,
        "DATABOURSE_AUDIT_KEY": TEST_AUDIT_KEY,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            WORKERS[kind],
            cwd=project,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "started!" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield Worker(kind, log)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _log_of_this_test(request: pytest.FixtureRequest) -> None:
    if "worker" in request.fixturenames:
        request.getfixturevalue("worker").mark()


# ---------------------------------------------------------------- what an API holder does
def deploy(
    base: str,
    flow: str,
    name: str,
    *,
    pull_steps: list[Any] | None = None,
    pool: str = POOL,
    **extra: Any,
) -> dict[str, Any]:
    """Create (replace) a deployment on the pool, through the API only."""
    flow_id = api(base, "POST", "/flows/", {"name": flow})["id"]
    found = api(base, "POST", "/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    for old in (d for d in found if d["flow_id"] == flow_id):
        api(base, "DELETE", f"/deployments/{old['id']}")
    body = {
        "name": name,
        "flow_id": flow_id,
        "work_pool_name": pool,
        "entrypoint": "flows/discover_landing.py:discover_landing",
        "pull_steps": pull_steps
        or [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}],
        "parameters": {"provider": "sz-retail"},
        **extra,
    }
    return dict(api(base, "POST", "/deployments/", body))


def served(base: str) -> dict[str, Any]:
    """The project's own `discover-landing/discover`, as `prefect deploy` would create it."""
    return deploy(base, "discover-landing", "discover")


def start(base: str, deployment: dict[str, Any], job_variables: Any = None) -> str:
    body: dict[str, Any] = {"job_variables": job_variables} if job_variables else {}
    return str(api(base, "POST", f"/deployments/{deployment['id']}/create_flow_run", body)["id"])


def shell_step(script: str) -> dict[str, Any]:
    step = {"script": script, "expand_env_vars": True, "stream_output": True}
    return {"prefect.deployments.steps.run_shell_script": step}


def leaks(base: str, worker: Worker, run_id: str, marker: Path, variable: str) -> list[str]:
    """Where either key shows: a Prefect variable, a file, the run's API logs, the worker log."""
    found = []
    resp = httpx.get(f"{base}/variables/name/{variable}", timeout=30)
    if resp.status_code == 200 and TEST_KEY in json.dumps(resp.json()):
        found.append("prefect variable")
    if marker.exists() or any(marker.parent.glob(f"{marker.name}*")):
        found.append("file")
    logs = api(base, "POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
    text = json.dumps(logs)
    if TEST_KEY in text or TEST_AUDIT_KEY in text:
        found.append("run logs")
    if TEST_KEY in worker.text() or TEST_AUDIT_KEY in worker.text():
        found.append("worker log")
    return found


def outcome(
    base: str, worker: Worker, run_id: str, marker: Path, variable: str, timeout: float = 150
) -> tuple[dict[str, Any], list[str]]:
    """Wait for the run to end or the key to leak; (final state, where it leaked)."""
    deadline = time.monotonic() + timeout
    while True:
        state = api(base, "GET", f"/flow_runs/{run_id}")["state"] or {}
        found = leaks(base, worker, run_id, marker, variable)
        if state.get("type") in TERMINAL or found or time.monotonic() > deadline:
            if state.get("type") in TERMINAL or found:
                time.sleep(5)  # the last log lines, the rest of the attacker's script
                found = leaks(base, worker, run_id, marker, variable)
            return state, found
        time.sleep(1)


def discover_rows(base: str, run_id: str) -> list[tuple[str, str]]:
    """The table the imported discover-landing flow publishes (what proves it ran)."""
    artifacts = api(
        base, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    )
    [table] = [a for a in artifacts if a["type"] == "table"]
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    return [(r["key"], r["status"]) for r in rows]


def attacker_files(tmp_path: Path) -> tuple[Path, Path, str]:
    """A folder of the attacker's code, the marker file their code writes, a variable name."""
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "leaked"
    key = "os.environ['DATABOURSE_PSEUDONYM_KEY']"
    write = f"import os, pathlib; pathlib.Path({str(marker)!r}).write_text({key})"
    (evil / "sitecustomize.py").write_text(write + "\n")
    (evil / "evil_flow.py").write_text(
        "from prefect import flow\n\n\n"
        '@flow(name="discover-landing")\n'
        "def grab(provider=None):\n"
        f"    {write}\n"
    )
    return evil, marker, f"leak-{uuid.uuid4().hex[:12]}"


def assert_outcome(
    worker: Worker, state: dict[str, Any], found: list[str], *, served_run: str | None, base: str
) -> None:
    if worker.kind == "plain-prefect":  # the control: the attack works on Prefect's worker
        # the attacker's own code ran: it wrote the key where the attacker can get it
        assert {"file", "prefect variable"} & set(found), f"{found}: {state}\n{worker.text()}"
        return
    assert found == [], f"the key leaked to {found}: {state}"
    if served_run is None:
        assert state.get("type") == "FAILED", state
        assert "is not one this project serves" in (state.get("message") or ""), state
    else:
        assert state.get("type") == "COMPLETED", f"{state}\n{worker.text()[-3000:]}"
        assert discover_rows(base, served_run) == [(DROP, "new")]


# ---------------------------------------------------------------- the tests
def test_a_served_deployment_runs_to_completion(api_url: str, worker: Worker) -> None:
    """(1) The legitimate path on either worker: `discover-landing/discover` completes."""
    run_id = start(api_url, served(api_url))
    state, _ = outcome(api_url, worker, run_id, Path("/nonexistent/marker"), "unused-variable")
    assert state.get("type") == "COMPLETED", f"{state}\n{worker.text()[-3000:]}"
    assert discover_rows(api_url, run_id) == [(DROP, "new")]


def test_a_foreign_deployment_with_a_shell_pull_step_never_runs(
    api_url: str, worker: Worker, tmp_path: Path
) -> None:
    """(2) The reported attack: a new deployment on the pool whose pull step writes the key
    into a Prefect variable (read back through the API), prints both keys and drops a file."""
    _, marker, variable = attacker_files(tmp_path)
    script = "\n".join(
        [
            f"{BIN / 'prefect'} variable set {variable} $DATABOURSE_PSEUDONYM_KEY",
            "echo LEAK $DATABOURSE_PSEUDONYM_KEY $DATABOURSE_AUDIT_KEY",
            f"touch {marker}-$DATABOURSE_PSEUDONYM_KEY",
        ]
    )
    grab = deploy(api_url, "exfiltrate", "grab", pull_steps=[shell_step(script)])
    run_id = start(api_url, grab)
    state, found = outcome(api_url, worker, run_id, marker, variable)
    assert_outcome(worker, state, found, served_run=None, base=api_url)


def patch_pull_steps(base: str, dep: dict[str, Any], evil: Path, marker: Path, var: str) -> Any:
    script = "\n".join(
        [
            "echo LEAK $DATABOURSE_PSEUDONYM_KEY $DATABOURSE_AUDIT_KEY",
            f"touch {marker}-$DATABOURSE_PSEUDONYM_KEY",
        ]
    )
    steps = [
        shell_step(script),
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}},
    ]
    api(base, "PATCH", f"/deployments/{dep['id']}", {"pull_steps": steps})
    return None


def patch_entrypoint(base: str, dep: dict[str, Any], evil: Path, marker: Path, var: str) -> Any:
    steps = [{"prefect.deployments.steps.set_working_directory": {"directory": str(evil)}}]
    body = {"entrypoint": "evil_flow.py:grab", "pull_steps": steps}
    api(base, "PATCH", f"/deployments/{dep['id']}", body)
    return None


def patch_command(base: str, dep: dict[str, Any], evil: Path, marker: Path, var: str) -> Any:
    code = (evil / "sitecustomize.py").read_text()
    command = shlex.join([sys.executable, "-c", code])
    api(base, "PATCH", f"/deployments/{dep['id']}", {"job_variables": {"command": command}})
    return None


def flow_run_env(base: str, dep: dict[str, Any], evil: Path, marker: Path, var: str) -> Any:
    """Not a PATCH: the run's own job variables, `env` pointing Python at the attacker's code."""
    return {"env": {"PYTHONPATH": str(evil)}}


def patch_env(base: str, dep: dict[str, Any], evil: Path, marker: Path, var: str) -> Any:
    body = {"job_variables": {"env": {"PYTHONPATH": str(evil)}, "working_dir": str(evil)}}
    api(base, "PATCH", f"/deployments/{dep['id']}", body)
    return None


@pytest.mark.parametrize(
    "attack", [patch_pull_steps, patch_entrypoint, patch_command, patch_env, flow_run_env]
)
def test_a_patched_served_deployment_still_runs_only_the_imported_flow(
    api_url: str, worker: Worker, tmp_path: Path, attack: Any
) -> None:
    """(3) PATCH `discover-landing/discover` (pull steps, entrypoint, job variables `command`,
    `env`, `working_dir`) or give its run its own `env`: the imported flow runs, nothing else."""
    evil, marker, variable = attacker_files(tmp_path)
    dep = served(api_url)
    job_variables = attack(api_url, dep, evil, marker, variable)
    run_id = start(api_url, dep, job_variables)
    state, found = outcome(api_url, worker, run_id, marker, variable)
    assert_outcome(worker, state, found, served_run=run_id, base=api_url)


@pytest.mark.parametrize("deployment", ["foreign", "served"])
def test_the_flow_run_command_itself_ignores_what_the_api_names(
    api_url: str, project: Path, tmp_path: Path, deployment: str
) -> None:
    """`python -I -m bourse.worker_run ID`, the command of `bourse worker` and of the Kubernetes
    flow-run pods, run with an environment and folder the attacker chose (a pod's `env` job
    variable): PYTHONPATH and PREFECT__FLOW_ENTRYPOINT name their code. A foreign deployment's
    run is marked Failed and its pull step never runs; a served one runs the imported flow."""
    from bourse.worker_run import run_command

    evil, marker, _ = attacker_files(tmp_path)
    idle = f"idle-{uuid.uuid4().hex[:8]}"  # a pool no worker polls: only this command runs it
    api(api_url, "POST", "/work_pools/", {"name": idle, "type": "process"})
    steps = [shell_step(f"touch {marker}-$DATABOURSE_PSEUDONYM_KEY")]
    if deployment == "foreign":
        dep = deploy(api_url, "exfiltrate", "grab-direct", pull_steps=steps, pool=idle)
    else:
        dep = deploy(api_url, "discover-landing", "discover", pull_steps=steps, pool=idle)
    run_id = start(api_url, dep)
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "DATABOURSE_CONFIG_DIR": str(project / "configs"),
        "PYTHONPATH": str(evil),
        "PREFECT__FLOW_ENTRYPOINT": "evil_flow.py:grab",
    }
    done = subprocess.run(
        run_command(run_id), cwd=evil, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert TEST_KEY not in output and TEST_AUDIT_KEY not in output
    assert not list(tmp_path.glob("leaked*")), "the attacker's code ran"
    state = api(api_url, "GET", f"/flow_runs/{run_id}")["state"]
    if deployment == "foreign":
        assert state["type"] == "FAILED", state
        assert "'exfiltrate'/'grab-direct' is not one this project serves" in state["message"]
    else:
        assert state["type"] == "COMPLETED", f"{state}\n{output[-3000:]}"
        assert discover_rows(api_url, run_id) == [(DROP, "new")]


def test_prefect_worker_type_databourse_is_this_worker() -> None:
    """deploy/Dockerfile's `prefect worker start --type databourse` loads bourse/worker.py's
    worker (the package's `prefect.collections` entry point), not Prefect's process worker."""
    from prefect.workers.base import BaseWorker

    from bourse.worker import DataBourseWorker

    assert BaseWorker.get_worker_class_from_type("databourse") is DataBourseWorker
    cmd = [a for a in (REPO / "deploy/Dockerfile").read_text().splitlines() if a.startswith("CMD")]
    assert '"--type", "databourse"' in cmd[-1]

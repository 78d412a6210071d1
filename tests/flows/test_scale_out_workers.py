"""Drops on workers (issue 23): a nightly over four drops on two real worker processes.

A Prefect server of this module's own; `deploy/setup.sh` puts deploy/prefect.yaml on the work pool,
as an operator does; two `bourse worker` processes (`prefect worker start --type databourse`, the
only worker the layouts allow: Prefect's plain process worker runs what the API names,
tests/attacks/test_worker_attacks.py) serve it. The nightly runs through the real CLI against that
API and starts each drop as a run of `process-drop/drop`. While a drop runs on worker A, worker A
and its flow-run processes are killed (SIGKILL, as a lost machine): the zombie automation marks each
of its runs that had beaten Crashed, the nightly marks the others (killed while the worker submitted
them, or before their first heartbeat) after `runs.drop_silence_seconds` (60 here), starts them all
again, and worker B completes them. Then every drop completed once, both workers ran drops, and
`bourse verify --all` is clean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_AUDIT_KEY, TEST_KEY
from helpers import REPO, api, make_project, own_prefect_server

from databourse.storage import zones
from databourse_samples.demo import generate_drops

pytestmark = pytest.mark.prefect

BIN = Path(sys.executable).parent
POOL = "databourse"
WORKERS = ("worker-a", "worker-b")


def runs_of(base: str, deployment: str) -> list[dict[str, Any]]:
    flow, name = deployment.split("/")
    dep = api(base, "GET", f"/deployments/name/{flow}/{name}")
    body = {"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}, "sort": "START_TIME_ASC"}
    return list(api(base, "POST", "/flow_runs/filter", body))


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    with own_prefect_server("databourse-scale-", postgres=True) as url:
        yield url


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four drops in the landing zone: two providers, two days each (other bytes each)."""
    path = make_project(tmp_path_factory.mktemp("scale") / "project")
    settings = path / "configs" / "settings.yaml"
    text = settings.read_text().replace("drop_silence_seconds: 300", "drop_silence_seconds: 60")
    settings.write_text(text.replace("nightly_poll_seconds: 5", "nightly_poll_seconds: 2"))
    for day, seed in (("2026-12-01", 11), ("2026-12-02", 12)):
        for drop in generate_drops(path / "generated" / day, seed=seed, scale=0.05):
            key = f"{zones.landing_prefix(drop.provider)}/{drop.dataset}/{day}/{drop.path.name}"
            target = path / "state" / "store" / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(drop.path.read_bytes())
    return path


def env_for(project: Path, api_url: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME",)},
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(project / "prefect-client"),
        "DATABOURSE_CONFIG_DIR": str(project / "configs"),
        "DATABOURSE_HOME": str(REPO),
        "DATABOURSE_PSEUDONYM_KEY": TEST_KEY,
        "DATABOURSE_AUDIT_KEY": TEST_AUDIT_KEY,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def workers(api_url: str, project: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """deploy/setup.sh on the server, then two `bourse worker` processes on its pool."""
    env = env_for(project, api_url)
    setup = subprocess.run(
        ["sh", str(REPO / "deploy" / "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in WORKERS:
            log = project / f"{name}.log"
            with log.open("wb") as fh:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "bourse", "worker", "--pool", POOL, "--name", name],
                    cwd=project,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 90
            while "started!" not in log.read_text(errors="replace"):
                assert procs[name].poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def kill_worker_with_a_running_drop(
    base: str, workers: dict[str, subprocess.Popen[bytes]], deadline: float
) -> str:
    """Wait until a drop runs on a worker, then SIGKILL that worker and the run's process."""
    while time.monotonic() < deadline:
        for run in runs_of(base, "process-drop/drop"):
            named = [t.removeprefix("worker:") for t in run["tags"] if t.startswith("worker:")]
            if run["state_type"] == "RUNNING" and named and run["infrastructure_pid"]:
                [name] = named
                os.killpg(workers[name].pid, signal.SIGKILL)
                pid = int(str(run["infrastructure_pid"]).rsplit(":", 1)[-1])
                try:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it was in the worker's group, already gone
                return str(run["id"])
        time.sleep(0.5)
    raise AssertionError("no drop ran on a worker in time")


def settled(base: str, timeout: float) -> list[dict[str, Any]]:
    """The publish runs, once none is scheduled or running (each ended or waits for an answer)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_of(base, "publish-product/gated")
        busy = [r for r in runs if r["state_type"] in ("SCHEDULED", "PENDING", "RUNNING")]
        if not busy or time.monotonic() > deadline:
            return runs
        time.sleep(1)


def test_a_nightly_spreads_drops_over_two_workers_and_survives_losing_one(
    api_url: str, project: Path, workers: dict[str, subprocess.Popen[bytes]]
) -> None:
    env = env_for(project, api_url)
    nightly = subprocess.Popen(
        [sys.executable, "-m", "bourse", "nightly", "--wait", "0", "--json"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = kill_worker_with_a_running_drop(api_url, workers, time.monotonic() + 240)
    out, err = nightly.communicate(timeout=600)
    assert nightly.returncode == 0, out[-3000:] + err[-3000:]
    result = json.loads(out[out.index("{") :])

    # every drop completed; each killed run was marked Crashed (by the zombie automation, not
    # by us: we only killed processes) and started again, and that second run completed
    outcomes = {o["key"]: o for o in result["processed"]}
    assert len(outcomes) == 4 and result["failed"] == 0
    assert {o["state"] for o in outcomes.values()} == {"Completed"}
    runs = {r["id"]: r for r in runs_of(api_url, "process-drop/drop")}
    crashed = {i for i, r in runs.items() if r["state_type"] == "CRASHED"}
    assert killed in crashed
    restarted = [o for o in outcomes.values() if o["attempts"] == 2]
    assert len(restarted) == len(crashed)  # one restart per killed run, none for the others
    assert all(o["attempts"] in (1, 2) for o in outcomes.values())
    assert all(o["link"] and o["run_id"] in o["link"] for o in outcomes.values())

    # both workers ran drops; the nightly's children are the only drop runs, one completed each
    ran_on = {t for r in runs.values() for t in r["tags"] if t.startswith("worker:")}
    assert ran_on == {f"worker:{w}" for w in WORKERS}
    completed = [r for r in runs.values() if r["state_type"] == "COMPLETED"]
    assert sorted(r["id"] for r in completed) == sorted(o["run_id"] for o in outcomes.values())
    assert len(runs) == 4 + len(crashed)  # nothing processed twice
    assert all(r["parent_task_run_id"] for r in runs.values())  # children of the nightly in the UI

    # each drop made its products' versions once; the catalog and the store agree
    settled(api_url, timeout=300)
    listed = subprocess.run(
        [sys.executable, "-m", "bourse", "catalog", "list", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    versions = {p["id"]: p["version_count"] for p in json.loads(listed.stdout)}
    # two drops of other bytes per dataset: two versions of each product, none made twice
    assert versions == {"kl-building-environment": 2, "sz-retail-baskets": 2}
    verify = subprocess.run(
        [sys.executable, "-m", "bourse", "verify", "--all"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]

"""Faults never leave the gate hanging silently (issue 15, attack 9), with real processes.

Each test starts its own stack with the real CLI (`bourse server start`: a Prefect server and the
runner), breaks it with SIGKILL the way an outage does, and checks that nothing waits forever:
concurrency slots of dead holders come back, a wait for a slot says who holds it and ends at a
bound, and a publish run stopped after its answer is found and reported. Every subprocess has a
timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import TEST_KEY
from helpers import API_AUTH, API_AUTH_STRING, bourse, cli_env, make_project, stop_stack

pytestmark = [pytest.mark.e2e, pytest.mark.prefect]

PROVIDER, DATASET = "sz-retail", "customer_orders"
LIMIT = f"databourse-provider-{PROVIDER}"


def stack(tmp_path: Path, **runs: Any) -> tuple[Path, dict[str, str], str]:
    """A project whose settings.yaml sets `runs`, its CLI environment, and its API URL."""
    project = make_project(tmp_path / "project")
    settings = project / "configs" / "settings.yaml"
    data = yaml.safe_load(settings.read_text())
    data["runs"].update(runs)
    settings.write_text(yaml.safe_dump(data))
    env = cli_env(
        project, DATABOURSE_PSEUDONYM_KEY=TEST_KEY, PREFECT_API_AUTH_STRING=API_AUTH_STRING
    )
    return project, env, f"http://127.0.0.1:{env['DATABOURSE_PREFECT_PORT']}/api"


def drop(tmp_path: Path, seed: int) -> Path:
    """A small customer_orders drop; another seed gives other bytes (a new drop)."""
    from databourse_samples.demo import generate_drops

    out = tmp_path / f"drops-{seed}"
    [orders] = [d for d in generate_drops(out, seed=seed, scale=0.2) if d.dataset == DATASET]
    return orders.path


def spawn_run(env: dict[str, str], source: Path) -> subprocess.Popen[str]:
    """`bourse run` on a drop, in its own process group (so a SIGKILL takes all of it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bourse", "run", PROVIDER, DATASET, str(source)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def limit(api: str) -> dict[str, Any]:
    resp = httpx.get(f"{api}/v2/concurrency_limits/{LIMIT}", timeout=10, auth=API_AUTH)
    resp.raise_for_status()
    return dict(resp.json())


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_for(lambda: not _alive(pid), 30, f"process {pid} to die")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def server_pid(project: Path) -> int:
    return int((project / "state" / "run" / "prefect-server.pid").read_text())


# --- 9b: the server killed twice during drops -------------------------------------------------


def test_server_killed_twice_during_drops_leaks_no_slot(tmp_path: Path) -> None:
    """Two drops each killed with the server while they hold a slot of the provider's limit (2):
    the restarted server keeps the leases, the dead holders' slots are freed at start (their
    runs marked Crashed), and the next drop runs instead of waiting forever."""
    project, env, api = stack(tmp_path, slot_notice_seconds=5, slot_wait_seconds=40)
    try:
        bourse(env, "server", "start")
        httpx.post(
            f"{api}/v2/concurrency_limits/",
            json={"name": LIMIT, "limit": 2},
            timeout=10,
            auth=API_AUTH,
        )
        for seed in (1, 2):
            before = limit(api)["active_slots"]
            run = spawn_run(env, drop(tmp_path, seed))
            wait_for(
                lambda b=before: limit(api)["active_slots"] > b, 60, f"drop {seed} to hold a slot"
            )
            kill_group(server_pid(project))
            kill_group(run.pid)  # the drop dies with the outage
            run.communicate(timeout=10)
            restarted = bourse(env, "server", "start")
            assert "started Prefect server" in restarted.stderr
            assert "holder process of flow run" in restarted.stderr, restarted.stderr
        assert limit(api)["active_slots"] == 0

        crashed = httpx.post(
            f"{api}/flow_runs/filter",
            json={"flows": {"name": {"any_": ["process-drop"]}}},
            timeout=10,
            auth=API_AUTH,
        ).json()
        assert sorted(r["state"]["type"] for r in crashed) == ["CRASHED", "CRASHED"]
        third = subprocess.run(
            [sys.executable, "-m", "bourse", "run", PROVIDER, DATASET, str(drop(tmp_path, 3))],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,  # the old code waits here forever for a slot that never comes back
        )
        assert third.returncode == 0, third.stdout + third.stderr
        assert "sz-retail-baskets@" in third.stdout and "publish run" in third.stdout
        assert limit(api)["active_slots"] == 0
    finally:
        stop_stack(env)


# --- never wait silently ----------------------------------------------------------------------


def api_post(url: str, body: dict[str, Any], method: str = "POST") -> httpx.Response:
    """POST (or `method`) to the managed API as Prefect's own client does: a 503 (a retryable
    server error, such as SQLite busy just after start) is tried again, a few times; any other
    error fails."""
    for attempt in range(6):
        response = httpx.request(method, url, json=body, timeout=10, auth=API_AUTH)
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2**attempt)
    response.raise_for_status()
    return response


def test_a_wait_for_a_slot_names_the_holders_and_ends_at_the_bound(tmp_path: Path) -> None:
    """Both slots taken through the Prefect API by a holder that never lets go: the drop logs who
    holds them, then fails with an error naming the limit, the leases and how to free them; slots
    counted with no lease (what the memory lease storage leaves after a restart) are freed."""
    _, env, api = stack(tmp_path, slot_notice_seconds=3, slot_wait_seconds=10)
    try:
        bourse(env, "server", "start")  # creates the providers' limits (issue 21)
        made = httpx.get(f"{api}/v2/concurrency_limits/{LIMIT}", timeout=10, auth=API_AUTH)
        assert made.status_code == 200, made.text
        two = {"limit": 2}  # both taken below
        assert api_post(str(made.url), two, method="PATCH").status_code == 204
        taken = api_post(
            f"{api}/v2/concurrency_limits/increment-with-lease",
            {"names": [LIMIT], "slots": 2, "lease_duration": 3600},
        )
        lease = taken.json()["lease_id"]

        started = time.monotonic()
        ran = subprocess.run(
            [sys.executable, "-m", "bourse", "run", PROVIDER, DATASET, str(drop(tmp_path, 1))],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,  # the old code waits here forever
        )
        said = ran.stdout + ran.stderr
        assert ran.returncode == 1, said
        assert time.monotonic() - started < 60
        assert "still waiting after" in said and f"{LIMIT}: 2 of 2 slot(s) held" in said
        assert f"gave up waiting for a slot of {LIMIT} after" in said
        assert lease in said and "bourse server reclaim" in said
        report = bourse(env, "server", "reclaim").stdout
        assert "no slot held by a dead holder" in report
        assert f"{LIMIT}: 2 of 2 slot(s) in use" in report and lease in report

        api_post(f"{api}/v2/concurrency_limits/decrement-with-lease", {"lease_id": lease})
        api_post(  # a slot counted with no lease at all
            f"{api}/v2/concurrency_limits/increment", {"names": [LIMIT], "slots": 1}
        )
        assert limit(api)["active_slots"] == 1
        report = bourse(env, "server", "reclaim").stdout
        assert f"freed 1 slot(s) of {LIMIT} held by no lease" in report
        assert limit(api)["active_slots"] == 0
    finally:
        stop_stack(env)


def test_settings_bound_the_slot_wait() -> None:
    """A lease shorter than Prefect's minimum or a zero wait is refused naming the key."""
    from pydantic import ValidationError

    from databourse.config import RunSettings

    with pytest.raises(ValidationError, match="slot_lease_seconds"):
        RunSettings(slot_lease_seconds=10)
    with pytest.raises(ValidationError, match="slot_wait_seconds"):
        RunSettings(slot_wait_seconds=0)
    assert json.loads(RunSettings().model_dump_json())["slot_lease_seconds"] >= 60


# --- 9a: the runner killed about a second after a resume --------------------------------------


def flow_run_state(api: str, run_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{api}/flow_runs/{run_id}", timeout=10, auth=API_AUTH).json()["state"])


def test_runner_killed_after_a_resume_is_found_and_reported(tmp_path: Path) -> None:
    """An approver answers; about a second after the runner picks the resumed run up it is
    SIGKILLed. The answer is consumed and nothing recorded it: the sweep finds the run (answer
    for MY, no decision), marks it Crashed and says how to retry; the list shows it too."""
    project, env, api = stack(tmp_path)
    try:
        ran = bourse(env, "run", PROVIDER, DATASET, str(drop(tmp_path, 1))).stdout
        assert "Suspended" in ran, ran
        zombie = httpx.post(f"{api}/automations/filter", json={}, timeout=10, auth=API_AUTH).json()
        [beats] = [a for a in zombie if a["name"] == "databourse: a run stopped beating"]
        assert beats["trigger"]["after"] == ["prefect.flow-run.heartbeat"]
        assert beats["actions"][0]["state"] == "CRASHED"
        listed = json.loads(bourse(env, "approvals", "list", "--json").stdout)
        [waiting] = [w for w in listed if w["market"] == "MY"]  # SG waits on its own run
        run_id = waiting["run_id"]
        approve = subprocess.Popen(
            [sys.executable, "-m", "bourse", "approve", run_id, "--approver", "Li Wei",
             "--reference", "YUE-SC-2026-0042", "--valid-until", "2029-11-20"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        wait_for(
            lambda: flow_run_state(api, run_id)["type"] in ("PENDING", "RUNNING"),
            60,
            "the runner to pick up the resumed run",
        )
        time.sleep(0.5)
        kill_group(int((project / "state" / "run" / "runner.pid").read_text()))
        kill_group(approve.pid)
        approve.communicate(timeout=10)
        left = flow_run_state(api, run_id)
        assert left["type"] in ("PENDING", "RUNNING"), left  # nobody will move it again
        assert "started the deployment runner" in bourse(env, "server", "start").stderr
        time.sleep(2)
        assert flow_run_state(api, run_id)["type"] == left["type"]  # a new runner leaves it

        said = bourse(env, "approvals", "sweep", "--stuck-after", "2").stdout
        assert f"stuck: publish/sz-retail-baskets/1.0.0 ({run_id})" in said, said
        assert "answer for MY not recorded" in said
        assert f"bourse approvals retry {run_id}" in said
        assert flow_run_state(api, run_id)["type"] == "CRASHED"  # what it is, and retryable
        listed = json.loads(bourse(env, "approvals", "list", "--all", "--json").stdout)
        assert [f["run_id"] for f in listed["failed"]] == [run_id]
        assert not [d for d in listed["decided"] if d["market"] == "MY"]  # consumed, unrecorded
    finally:
        stop_stack(env)

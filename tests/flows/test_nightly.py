"""The nightly flow against a real Prefect API: exactly the new drops, once, each a deployment
run of `process-drop/drop` (here on the `bourse serve` runner; on two workers:
tests/flows/test_scale_out_workers.py)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from databourse.storage import zones
from databourse_samples.demo import generate_drops

pytestmark = pytest.mark.prefect


def test_nightly_processes_exactly_the_new_drops_once(runner: Any, project: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.nightly import nightly
    from tasks import resources
    from tasks.dispatching import DROP_DEPLOYMENT

    store = resources.store()
    [sensors] = [
        d
        for d in generate_drops(project / "nightly", seed=7, scale=0.1)
        if d.provider == "my-buildops"
    ]
    landing = f"{zones.landing_prefix('my-buildops')}/sensor_readings"
    store.put_file(f"{landing}/2026-11-20/readings.csv", sensors.path)
    renamed = sensors.path.with_name("same-bytes-renamed.csv")
    renamed.write_bytes(sensors.path.read_bytes())
    store.put_file(f"{landing}/2026-11-20/{renamed.name}", renamed)
    packed = sensors.path.with_name("readings.csv.gz")  # other bytes, same rows: a new drop
    packed.write_bytes(gzip.compress(sensors.path.read_bytes(), mtime=0))
    store.put_file(f"{landing}/2026-11-21/{packed.name}", packed)
    store.put_bytes(f"{zones.landing_prefix('my-buildops')}/unknown_dataset/x.csv", b"a\n1\n")

    squats = squat_the_drop_key(resources, sensors.path)
    first = nightly("my-buildops", publish_wait_seconds=120)
    processed = {
        p["key"].rsplit("/", 2)[-2] + "/" + p["key"].rsplit("/", 1)[-1]: p["state"]
        for p in first["processed"]
    }
    assert processed == {
        "2026-11-20/readings.csv": "Completed",
        "2026-11-21/readings.csv.gz": "Completed",
    }
    assert first["summary"]["duplicate"] == 1 and first["summary"]["unknown_dataset"] == 1
    assert first["failed"] == 0
    assert not {o["run_id"] for o in first["processed"]} & squats  # passed over, never reported
    with get_client(sync_client=True) as client:  # each drop ran as its own deployment run
        dep = client.read_deployment_by_name(DROP_DEPLOYMENT)
        for outcome in first["processed"]:
            run = client.read_flow_run(outcome["run_id"])
            assert run.deployment_id == dep.id and run.parent_task_run_id is not None
            assert outcome["worker"].startswith("runner@") and outcome["attempts"] == 1
            assert f"worker:{outcome['worker']}" in run.tags
            assert run.parameters["expected_sha256"] is not None
        for squat in squats:  # never started by anyone: they wait in the future
            assert client.read_flow_run(squat).state.is_scheduled()

    again = nightly(
        "my-buildops", publish_wait_seconds=120
    )  # a re-run: nothing new, nothing redone
    assert again["processed"] == [] and again["summary"]["new"] == 0
    assert again["summary"]["ingested"] == 3  # the renamed copy is recognized by content


def squat_the_drop_key(resources: Any, drop: Path) -> set[str]:
    """An API holder creates runs first under the key the nightly will use for `drop`: one of
    another deployment of the same flow (keys are unique per flow), one of the drop deployment
    with another file to ingest. Both scheduled far ahead, so that no runner starts them."""
    import datetime as dt
    import hashlib

    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    from tasks.dispatching import DROP_DEPLOYMENT

    sha = hashlib.sha256(drop.read_bytes()).hexdigest()
    key = f"{resources.catalog().identity}/drop/my-buildops/sensor_readings#{sha}"
    later = Scheduled(scheduled_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    evil = {"provider": "my-buildops", "dataset": "sensor_readings", "source": "/tmp/evil.csv"}
    squats = set()
    with get_client(sync_client=True) as client:
        on_demand = client.read_deployment_by_name("process-drop/on-demand")
        run = client.create_flow_run_from_deployment(
            on_demand.id, parameters=evil, idempotency_key=key, state=later
        )
        squats.add(str(run.id))
        dep = client.read_deployment_by_name(DROP_DEPLOYMENT)
        chained = f"{key}#after-{run.id}"  # the next key of the chain, squatted too
        run = client.create_flow_run_from_deployment(
            dep.id, parameters={**evil, "expected_sha256": "0" * 64}, idempotency_key=chained,
            state=later,
        )  # fmt: skip
        squats.add(str(run.id))
    return squats


def test_a_run_with_no_sign_of_life_is_taken_for_dead(prefect_api: str) -> None:
    """The zombie automation only crashes runs that beat once; the nightly also takes for dead a
    drop run Pending (its worker died while submitting) or Running (killed before its first
    heartbeat) with no state change and no heartbeat for `runs.drop_silence_seconds`."""
    import time

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Pending, Running

    from flows.nightly import crash_silent_run, is_silent

    @flow(name="silent-drop")
    def silent_drop() -> None:
        pass

    with get_client(sync_client=True) as client:
        runs = {}
        for name, state in (("pending", Pending()), ("running", Running()), ("done", Completed())):
            run = client.create_flow_run(silent_drop, name=f"silent-{name}")
            client.set_flow_run_state(run.id, state, force=True)
            runs[name] = client.read_flow_run(run.id)
            # changed just now (checked at once: on a loaded machine creating all three took 2 s)
            assert not is_silent(client, runs[name], 2)
        time.sleep(2.5)
        runs = {name: client.read_flow_run(r.id) for name, r in runs.items()}
        assert {name for name, r in runs.items() if is_silent(client, r, 2)} == {
            "pending",
            "running",
        }
        crashed = crash_silent_run(client, runs["running"], 2)
        assert crashed.state is not None and crashed.state.is_crashed()
        assert "without a state change or a heartbeat for 2 s" in (crashed.state.message or "")

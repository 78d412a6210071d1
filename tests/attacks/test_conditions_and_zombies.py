"""Issue 15, adversary pass 3, rows 7 and 8, and the zombie automation on twice-suspended runs.

(7) An approval's conditions were neither shown nor checked when a grant rested on it: `bourse
grant` now prints them (escaped) and refuses without `--accept-conditions`; the grant's audit
event records their sha256 as accepted, and conditions emptied with SQL contradict the trail.
(8) An approval that covers later versions carried over however old it was: now only while its
audited answer (the trail's time, never the catalog row's) is at most `carry_over_max_age_days`.
(Z) The zombie automation crashed publish runs suspended on their second market: the resumed
process's first heartbeat reached the server after its Suspended event (flows/suspending.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_facts_and_grants import (
    EXPORTER,
    PRODUCT,
    REMAINING,
    SCC,
    TODAY,
    World,
    gate,
    package,
    world,
)
from test_trail_backed_grants import sql

from bourse.runtime import HEARTBEAT_SECONDS
from databourse.catalog import trail as audit
from databourse.config import Settings, load_config
from databourse.errors import TransferNotApproved
from databourse.transfer.policy import facts_for

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

# Markup that crashes rich, a screen clear, a right-to-left override: printed as escapes.
CONDITIONS = "aggregates only [/] \x1b[2J\u202e; no onward transfer\nto third parties"


def approve_my(w: World, version: str, conditions: str | None = None, carry: bool = False) -> int:
    return w.catalog.record_approval(
        PRODUCT, version, "MY", "approved", approver="Li Wei", route=SCC,
        reference="YUE-SC-2026-0042", conditions=conditions,
        valid_until=TODAY + dt.timedelta(days=300), carry_over=carry,
    ).id  # fmt: skip


def grant(w: World, version: str, market: str, *extra: str) -> Any:
    return w.cli(
        "grant", f"{PRODUCT}@{version}", "--buyer", "KL Mart", "--market", market, *extra
    )  # fmt: skip


def grant_events(w: World) -> list[dict[str, Any]]:
    return [e for e in w.catalog.audit_history(PRODUCT) if e["kind"] == "grant"]


# --- row 7: conditions shown and accepted at grant time ----------------------------------------


def test_conditions_are_shown_escaped_and_a_grant_needs_their_acceptance(world: World) -> None:
    version = package(world)
    gate(world, version)
    approval = approve_my(world, version, CONDITIONS)

    refused = grant(world, version, "MY")
    assert refused.returncode == 1, refused.stdout
    said = refused.stderr
    assert f"approval {approval} (reference YUE-SC-2026-0042) for MY" in said
    shown = "aggregates only [/] \\x1b[2J\\u202e; no onward transfer\\x0ato third parties"
    assert shown in said, said  # one line: markup as text, controls and the break escaped
    assert "\x1b" not in said + refused.stdout and "\u202e" not in said
    assert "accept the conditions of approval" in said and "--accept-conditions" in said
    assert world.catalog.grants(PRODUCT) == [] and grant_events(world) == []

    given = grant(world, version, "MY", "--accept-conditions")
    assert given.returncode == 0, given.stderr
    [event] = grant_events(world)
    assert event["detail"]["approval_id"] == approval
    assert event["detail"]["conditions_sha256"] == hashlib.sha256(CONDITIONS.encode()).hexdigest()
    assert event["detail"]["conditions_accepted"] is True

    domestic = grant(world, version, "CN")  # rests on no approval: nothing to accept
    assert domestic.returncode == 0 and "conditions" not in domestic.stderr
    assert grant_events(world)[-1]["detail"]["conditions_accepted"] is False


def test_the_catalog_refuses_conditions_not_accepted_as_shown(world: World) -> None:
    """The rule lives in the catalog, not only in the CLI: no sha256, or another one, refused."""
    version = package(world)
    gate(world, version)
    approve_my(world, version, CONDITIONS)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    with pytest.raises(TransferNotApproved, match="conditions were not accepted"):
        world.catalog.record_grant(PRODUCT, version, "KL Mart", "MY", until)
    with pytest.raises(TransferNotApproved, match="conditions changed since they were shown"):
        world.catalog.record_grant(
            PRODUCT, version, "KL Mart", "MY", until, accepted_conditions="0" * 64
        )
    shown = world.catalog.grant_conditions(PRODUCT, version, "MY")
    assert shown is not None and shown["conditions"] == CONDITIONS
    world.catalog.record_grant(
        PRODUCT, version, "KL Mart", "MY", until, accepted_conditions=shown["conditions_sha256"]
    )
    assert len(world.catalog.grants(PRODUCT)) == 1


def test_conditions_emptied_with_sql_refuse_the_grant(world: World) -> None:
    """The insider blanks the conditions so that nothing is shown: the trail has their hash."""
    version = package(world)
    gate(world, version)
    approve_my(world, version, CONDITIONS)
    sql(world, "UPDATE approvals SET conditions = NULL")
    refused = grant(world, version, "MY")  # nothing is shown now, so nothing to accept
    assert refused.returncode == 1
    assert "contradicts the authenticated audit trail" in refused.stderr
    assert "its conditions are not the audited ones" in refused.stderr
    assert world.catalog.grants(PRODUCT) == []
    proc = world.cli("verify", "--all")
    assert proc.returncode == 1 and "its conditions are not the audited ones" in proc.stdout


# --- row 8: a maximum age for carry-over -------------------------------------------------------


def decide_v2(w: World, max_age_days: int | None = None) -> dict[str, Any]:
    """Package and gate a second version; its MY decision."""
    return decide(w, package(w, tag="v2"), max_age_days)


def decide(w: World, version: str, max_age_days: int | None = None) -> dict[str, Any]:
    """Publish and gate `version` for MY (None: the default maximum age); its decision."""
    w.catalog.publish_version(PRODUCT, version)
    facts = facts_for("CN", REMAINING, 30, False)
    gate_ = w.catalog.apply_transfer_policy
    decisions = (
        gate_(PRODUCT, version, w.cfg.policy, facts, ["MY"], EXPORTER)
        if max_age_days is None
        else gate_(
            PRODUCT, version, w.cfg.policy, facts, ["MY"], EXPORTER,
            carry_over_max_age_days=max_age_days,
        )
    )  # fmt: skip
    [my] = decisions
    return {**my, "version": version}


def answered_days_ago(w: World, monkeypatch: pytest.MonkeyPatch, days: int) -> int:
    """v1 gated and approved for later versions with the trail's clock `days` in the past."""
    then = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=days)
    with monkeypatch.context() as clock:
        clock.setattr(audit, "utcnow", lambda: then)
        v1 = package(w, tag="v1")
        gate(w, v1)
        return approve_my(w, v1, carry=True)


def test_an_approval_answered_over_a_year_ago_no_longer_carries_over(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = answered_days_ago(world, monkeypatch, 400)
    fresh = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    sql(world, "UPDATE approvals SET decided_at = :t WHERE id = :a", t=fresh, a=first)
    my = decide_v2(world)  # the catalog row says "today"; the trail says 400 days ago
    assert my["status"] == "pending_approval" and my["carried_over_from"] is None
    [problem] = my["carry_over_problems"]
    assert f"approval {first} was answered on" in problem
    assert "more than 365 days ago (carry_over_max_age_days): ask again" in problem

    # Asked again and answered today, its row aged to 2020 with SQL: the trail's time counts.
    again = world.catalog.record_approval(
        PRODUCT, my["version"], "MY", "approved", approver="Li Wei", route=SCC,
        reference="YUE-SC-2027-0007", valid_until=TODAY + dt.timedelta(days=300),
        carry_over=True,
    ).id  # fmt: skip
    sql(
        world,
        "UPDATE approvals SET decided_at = '2019-01-01 00:00:00.000000' WHERE id = :a",
        a=first,
    )
    sql(
        world,
        "UPDATE approvals SET decided_at = '2020-01-01 00:00:00.000000' WHERE id = :a",
        a=again,
    )
    v3 = decide(world, package(world, tag="v3"))
    assert v3["status"] == "available", v3["carry_over_problems"]
    assert v3["carried_over_from"]["approval_id"] == again


def test_the_maximum_age_is_a_documented_setting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().carry_over_max_age_days == 365
    assert load_config(world.cfg.root / "configs").settings.carry_over_max_age_days == 365
    answered_days_ago(world, monkeypatch, 40)
    my = decide_v2(world, max_age_days=30)
    assert my["status"] == "pending_approval"
    assert "more than 30 days ago" in my["carry_over_problems"][0]


# --- the zombie automation and runs that suspend twice -----------------------------------------


def run_state(api: str, run_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"])


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def suspension_runner(prefect_api: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A runner serving tests/suspension_flows.py, heartbeats every 30 s as `bourse serve`."""
    tests = Path(__file__).parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)]),
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
    }
    log = tmp_path / "runner.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(tests / "suspension_flows.py")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    ready = f"{prefect_api}/deployments/name/dies-running/test"
    wait_until(lambda: httpx.get(ready, timeout=10).status_code == 200, 90, "the runner")
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.prefect
@pytest.mark.timeout(240)
def test_a_run_suspended_twice_is_not_crashed_but_a_silent_running_one_is(
    prefect_api: str, suspension_runner: subprocess.Popen[bytes]
) -> None:
    """Prefect's zombie trigger (ours, narrowed to these flows, 35 s) against a real server.

    Before the fix the resumed run's first heartbeat reached the server after its second
    Suspended event, and the automation crashed the suspended run once `within` passed.
    """
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    from bourse.automations import zombie

    automation = zombie()
    automation.name = f"test: stopped beating {uuid.uuid4().hex[:8]}"
    automation.trigger.match_related = {  # type: ignore[union-attr]
        "prefect.resource.role": "flow",
        "prefect.resource.name": ["suspends-twice", "dies-running"],
    }
    automation.trigger.within = dt.timedelta(seconds=35)  # type: ignore[union-attr]
    created = automation.create()
    try:
        twice = str(run_deployment("suspends-twice/test", timeout=0).id)  # type: ignore[union-attr]
        key = lambda: run_state(prefect_api, twice)["state_details"].get("pause_key")  # noqa: E731
        wait_until(lambda: key() == "market-1", 90, "the first suspension")
        resume_flow_run(uuid.UUID(twice), run_input={"value": "a"})
        wait_until(lambda: key() == "market-2", 90, "the second suspension")
        suspended_at = time.monotonic()
        zombie_run = str(run_deployment("dies-running/test", timeout=0).id)  # type: ignore[union-attr]
        wait_until(lambda: run_state(prefect_api, zombie_run)["type"] == "CRASHED", 120, "a crash")
        assert "no heartbeat for" in run_state(prefect_api, zombie_run)["message"]
        time.sleep(max(0.0, suspended_at + 50 - time.monotonic()))  # past `within`, evaluated
        state = run_state(prefect_api, twice)
        assert (state["type"], state["name"]) == ("PAUSED", "Suspended"), state
    finally:
        created.delete()  # type: ignore[union-attr]

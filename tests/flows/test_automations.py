"""Operators' automations against a real Prefect API: created idempotently, and they fire."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.prefect


def automation_events(api: str, automation_id: str) -> list[dict[str, Any]]:
    body = {
        "filter": {"any_resource": {"id": [f"prefect.automation.{automation_id}"]}},
        "limit": 50,
    }
    response = httpx.post(f"{api}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return list(response.json()["events"])


def test_setup_is_idempotent_and_the_failed_run_automation_fires(prefect_api: str) -> None:
    from prefect import flow
    from prefect.automations import Automation

    from bourse.automations import ensure

    first = ensure(timedelta(hours=48))
    assert first == [
        "created automation 'databourse: a run failed'",
        "created automation 'databourse: an approval is waiting'",
        "created automation 'databourse: product quality dropped'",
        "created automation 'databourse: a run stopped beating'",
    ]
    second = ensure(timedelta(hours=24))
    assert all(line.startswith("updated automation") for line in second)
    waiting = Automation.read(name="databourse: an approval is waiting")
    assert waiting.trigger.within == timedelta(hours=24)  # type: ignore[union-attr]
    names = httpx.post(f"{prefect_api}/automations/filter", json={}, timeout=10).json()
    assert sorted(a["name"] for a in names if a["name"].startswith("databourse: ")) == [
        "databourse: a run failed",
        "databourse: a run stopped beating",
        "databourse: an approval is waiting",
        "databourse: product quality dropped",
    ]

    @flow(name="always-fails")
    def always_fails() -> None:
        raise RuntimeError("planned failure")

    always_fails(return_state=True)
    failed = Automation.read(name="databourse: a run failed")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kinds = {e["event"] for e in automation_events(prefect_api, str(failed.id))}
        if "prefect.automation.triggered" in kinds:
            break
        time.sleep(1)
    else:
        pytest.fail(f"the failed-run automation did not fire within 60 s (events: {kinds})")

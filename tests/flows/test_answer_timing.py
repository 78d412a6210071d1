"""An answer given the moment a run shows Suspended: Prefect marks a run Suspended before it saves
the form's schema, and refuses a resume with "Run input schema not found" in between. The CLI
waits for the form (and `approve` returns only once the next form is saved), so an operator who
answers the next market at once is never refused."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from uuid import uuid4

import pytest
from helpers import api_post
from prefect.client.orchestration import get_client
from prefect.input.run_input import keyset_from_base_key
from prefect.states import Suspended

from bourse.approvals import answer, form_ready

pytestmark = pytest.mark.prefect

KEY = "approval-my-1"
SCHEMA = {
    "type": "object",
    "properties": {"approver": {"type": "string"}, "decision": {"type": "string"}},
    "required": ["approver", "decision"],
}


def suspended_without_form(client: Any) -> Any:
    """A flow run in the state `suspend_flow_run` proposes, before its schema is saved."""
    flow_id = client.create_flow_from_name("answer-timing")
    # A deployment nobody serves: Prefect reschedules only runs of a deployment on resume.
    deployment_id = client.create_deployment(flow_id, f"unserved-{uuid4().hex[:8]}")
    run_id = client.create_flow_run_from_deployment(deployment_id).id
    client.set_flow_run_state(run_id, Suspended(timeout_seconds=600, pause_key=KEY), force=True)
    return run_id


def save_schema_later(api: str, run_id: Any, delay: float) -> threading.Thread:
    """What `suspend_flow_run` does right after the state: save the form's schema."""

    def save() -> None:
        time.sleep(delay)
        schema_key = keyset_from_base_key(f"suspended-{KEY}")["schema"]
        body = {"key": schema_key, "value": json.dumps(SCHEMA)}
        api_post(f"{api}/flow_runs/{run_id}/input", body).raise_for_status()

    thread = threading.Thread(target=save)
    thread.start()
    return thread


def test_the_form_is_not_ready_until_its_schema_is_saved(prefect_api: str) -> None:
    with get_client(sync_client=True) as client:
        run_id = suspended_without_form(client)
        assert client.read_flow_run(run_id).state.name == "Suspended"
        assert not form_ready(client, run_id, KEY)
        saver = save_schema_later(prefect_api, run_id, 0.5)
        assert form_ready(client, run_id, KEY, wait_seconds=15)
        saver.join()


def test_an_answer_in_the_window_waits_for_the_form_instead_of_being_refused(
    prefect_api: str,
) -> None:
    with get_client(sync_client=True) as client:
        run_id = suspended_without_form(client)
    saver = save_schema_later(prefect_api, run_id, 1.5)
    try:
        state = answer(str(run_id), {"approver": "Tan Mei Ling", "decision": "reject"}, 3)
    finally:
        saver.join()
    assert state != "Suspended"  # resumed: the server accepted the answer
    with get_client(sync_client=True) as client:
        assert not client.read_flow_run(run_id).state.is_paused()

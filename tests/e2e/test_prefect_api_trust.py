"""What the Prefect API says is not trusted (issue 15, R4: adversary rows 2, 14, 15, 19, 20, 23).

An insider attacks the managed stack (`bourse demo`, own server and runner) the way the
reviewer did: without credentials (refused: the managed API requires its auth string), then as
someone who holds the auth string and writes the API by hand: a forged `sender`, a replaced form
description, a forced pause timeout, changed run parameters. The catalog's pending row, not the
API, says what was asked and until when.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import bourse, cli_env, make_project, stop_stack
from pydantic import BaseModel, Field, ValidationError

from databourse.catalog.database import Catalog
from databourse.config import load_config
from databourse.errors import InvalidName
from databourse.keys import default_key_dir
from databourse.names import NAME_MAX_LENGTH, NAME_PATTERN, check_name, name_problems

pytestmark = pytest.mark.e2e
BASKETS, VERSION = "sz-retail-baskets", "1.0.0"
FILLERS = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", " \u3164 ", "\u2800\u3164\u034f"]


# --- row 20: names that show as blank ---------------------------------------------------------


@pytest.mark.parametrize("name", FILLERS)
def test_a_name_of_filler_characters_is_refused(name: str) -> None:
    """Hangul fillers, the Braille blank and friends draw nothing: not an approver's name."""
    with pytest.raises(InvalidName, match="shows nothing"):
        check_name(name, "approver")
    assert not re.search(NAME_PATTERN, name)

    class Form(BaseModel):  # the form's schema, as pydantic (Rust regex) checks it
        approver: str = Field(max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)

    with pytest.raises(ValidationError):
        Form(approver=name)


@pytest.mark.parametrize("name", ["Li Wei", "李雷", "\u3164Kim", "O'Brien", "박지민", "7"])
def test_visible_names_still_pass(name: str) -> None:
    assert name_problems(name, "approver") == [] and re.search(NAME_PATTERN, name)


# --- the managed stack -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`bourse demo` on its own managed stack: sz-retail-baskets@1.0.0 waits on MY, then SG."""
    project = make_project(tmp_path_factory.mktemp("trust") / "project")
    env = cli_env(project)
    try:
        bourse(env, "demo", "--scale", "0.2")
        cfg = load_config(project / "configs")
        key_file = default_key_dir(cfg.store_root) / "prefect-api-default.key"
        secret = key_file.read_text().strip() if key_file.exists() else "(no key file)"
        auth = f"bourse:{secret}"
        api = f"http://127.0.0.1:{env['DATABOURSE_PREFECT_PORT']}/api"
        with httpx.Client(base_url=api, auth=tuple(auth.split(":", 1)), timeout=30) as client:
            yield {"env": env, "api": api, "key_file": key_file, "client": client, "cfg": cfg}
    finally:
        stop_stack(env)


def catalog(stack: dict[str, Any]) -> Catalog:
    return Catalog(stack["cfg"].catalog_url)


def listed(stack: dict[str, Any]) -> dict[str, Any]:
    out = bourse(stack["env"], "approvals", "list", "--all", "--json").stdout
    return json.loads(out)


def waiting_run(stack: dict[str, Any], market: str, timeout: float = 120) -> dict[str, Any]:
    """The listing's entry of the demo run once it waits on `market`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [w for w in listed(stack)["waiting"] if w["market"] == market]
        if found:
            return found[0]
        time.sleep(2)
    raise AssertionError(f"no run waits on {market}: {listed(stack)}")


def answer_for(client: httpx.Client, run_id: str, key: str, **fields: Any) -> dict[str, Any]:
    """A complete answer for the form `key`: its constants (as the UI sends them) + fields."""
    schema = client.get(f"/flow_runs/{run_id}/input/suspended-{key}-schema").json()
    consts = {k: v["const"] for k, v in schema["properties"].items() if "const" in v}
    return {**consts, **fields}


def recorded(stack: dict[str, Any], market: str, timeout: float = 120) -> dict[str, Any]:
    """The market's approval once the resumed run has recorded it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = catalog(stack).show(BASKETS, VERSION)["versions"][0]
        if found := [a for a in shown["approvals"] if a["market"] == market]:
            return dict(found[0])
        time.sleep(1)
    raise AssertionError(f"no approval recorded for {market}")


def approval_of(stack: dict[str, Any], market: str) -> dict[str, Any]:
    shown = catalog(stack).show(BASKETS, VERSION)["versions"][0]
    return {a["market"]: a for a in shown["approvals"]}[market]


def status_of(stack: dict[str, Any], market: str) -> str:
    shown = catalog(stack).show(BASKETS, VERSION)["versions"][0]
    return {a["market"]: a["status"] for a in shown["availability"]}[market]


def test_the_managed_api_refuses_who_has_no_auth_string(stack: dict[str, Any]) -> None:
    """Row 2: no credentials, no API: reading runs and PATCHing pull_steps both get 401."""
    mode = stat.S_IMODE(Path(stack["key_file"]).stat().st_mode)
    assert mode == 0o600
    api = stack["api"]
    assert httpx.post(f"{api}/flow_runs/filter", json={}).status_code == 401
    [deployment] = stack["client"].post("/deployments/filter", json={
        "deployments": {"name": {"any_": ["gated"]}}}).json()  # fmt: skip
    steps = [{"prefect.deployments.steps.run_shell_script": {"script": "cat /etc/hostname"}}]
    patched = httpx.patch(f"{api}/deployments/{deployment['id']}", json={"pull_steps": steps})
    assert patched.status_code == 401
    wrong = httpx.post(f"{api}/flow_runs/filter", json={}, auth=("bourse", "guess"))
    assert wrong.status_code == 401
    again = stack["client"].get(f"/deployments/{deployment['id']}").json()
    assert again["pull_steps"] != steps
    status = bourse(stack["env"], "server", "status").stdout
    assert "basic auth string" in status
    # What status says to type into the UI's sign-in field opens the API (issue 21)
    said = json.loads(bourse(stack["env"], "server", "status", "--json").stdout)["auth"]
    found = re.search(r"the UI takes `(\w+):` followed by the contents of (\S+)$", said)
    assert found is not None, said
    user, where = found.groups()
    typed = (user, Path(where).read_text().strip())
    assert httpx.post(f"{api}/flow_runs/filter", json={}, auth=typed).status_code == 200


def test_who_holds_the_auth_string_cannot_run_code_in_the_runner(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    """Adversary pass 2, row 1: PATCH `pull_steps` of a served deployment, then start a run: the
    runner runs the flow it imported, never a step the API names (it ran and read key files)."""
    client, planted = stack["client"], tmp_path / "ran-in-the-runner.txt"
    [deployment] = client.post("/deployments/filter", json={
        "deployments": {"name": {"any_": ["discover"]}}}).json()  # fmt: skip
    script = f"sh -c 'echo pwned > {planted}'"  # run_shell_script runs no shell of its own
    steps = [{"prefect.deployments.steps.run_shell_script": {"script": script}}]
    patched = client.patch(f"/deployments/{deployment['id']}", json={"pull_steps": steps})
    assert patched.status_code == 204, patched.text
    assert client.get(f"/deployments/{deployment['id']}").json()["pull_steps"] == steps
    made = client.post(f"/deployments/{deployment['id']}/create_flow_run", json={})
    assert made.status_code == 201, made.text
    run_id = made.json()["id"]
    deadline = time.monotonic() + 180
    while (state := client.get(f"/flow_runs/{run_id}").json()["state"])["type"] not in {
        "COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:  # fmt: skip
        assert time.monotonic() < deadline, state
        time.sleep(1)
    assert not planted.exists(), "a pull step the API named ran in the runner"
    assert state["type"] == "COMPLETED", state  # the served flow itself ran


def test_a_forged_sender_is_recorded_as_an_unverified_claim(stack: dict[str, Any]) -> None:
    """Row 14: the `sender` a writer types is never the approver's Prefect identity."""
    client = stack["client"]
    run_id = waiting_run(stack, "MY")["run_id"]
    approval = {"approve_standard_contract": True,
                "reference": "YUE-SC-2026-0042", "valid_until": "2029-11-20"}  # fmt: skip
    value = answer_for(client, run_id, "approval-my", approver="Li Wei", decision=approval)
    sender = "prefect-cloud:user/chief-privacy-officer@example.com"
    posted = client.post(
        f"/flow_runs/{run_id}/input",
        json={"key": "suspended-approval-my-response", "value": json.dumps(value),
              "sender": sender},
    )  # fmt: skip
    assert posted.status_code == 201, posted.text
    forced = client.post(
        f"/flow_runs/{run_id}/set_state",
        json={"state": {"type": "SCHEDULED", "name": "Resuming"}, "force": True},
    )
    assert forced.status_code in (200, 201), forced.text
    my = recorded(stack, "MY")  # SG waits on its own run meanwhile: nothing to wait for there
    assert my["decision"] == "approved" and my["approver"] == "Li Wei"
    assert my["prefect_identity"] is None
    assert "unverified" in my["identity_note"] and "chief-privacy-officer" in my["identity_note"]


def test_a_replaced_description_is_flagged_and_its_answer_refused(stack: dict[str, Any]) -> None:
    """Row 15: the insider swaps the facts the approver reads; the answer on it is refused."""
    client = stack["client"]
    before = waiting_run(stack, "SG")
    run_id = before["run_id"]
    assert before["warnings"] == []
    key = "suspended-approval-sg-description"
    assert client.delete(f"/flow_runs/{run_id}/input/{key}").status_code == 204
    fake = json.dumps("No personal data remains. Legal pre-cleared: approve.")
    posted = client.post(f"/flow_runs/{run_id}/input", json={"key": key, "value": fake})
    assert posted.status_code == 201
    [flagged] = [w for w in listed(stack)["waiting"] if w["run_id"] == run_id]
    assert any("description was replaced" in w for w in flagged["warnings"])

    bourse(stack["env"], "approve", run_id, "--approver", "Tan Mei Ling", "--reference",
           "PDPA-2026-7", "--basis", "standard_contract", "--valid-until", "2029-11-20",
           check=False)  # fmt: skip
    again = waiting_run(stack, "SG")
    assert again["run_id"] == run_id and again["warnings"] == []  # a fresh form, asked again
    assert status_of(stack, "SG") == "pending_approval"
    refusals = [e for e in catalog(stack).audit_history(BASKETS) if e["kind"] == "refusal"]
    assert any("description" in "; ".join(e["detail"]["problems"]) for e in refusals)
    [first, second] = [p for p in catalog(stack).pending_of_run(run_id) if p["market"] == "SG"]
    assert (first["status"], second["status"]) == ("refused", "waiting")


def test_changed_parameters_do_not_move_the_listing(stack: dict[str, Any]) -> None:
    """Row 23: the listing maps a run to the version its form was opened for, and says so."""
    client = stack["client"]
    run_id = waiting_run(stack, "SG")["run_id"]
    patched = client.patch(
        f"/flow_runs/{run_id}", json={"parameters": {"product": BASKETS, "version": "9.9.9"}}
    )
    assert patched.status_code == 204, patched.text
    [entry] = [w for w in listed(stack)["waiting"] if w["run_id"] == run_id]
    assert (entry["product"], entry["version"], entry["market"]) == (BASKETS, VERSION, "SG")
    assert any("parameters were changed" in w for w in entry["warnings"])


def test_a_forced_pause_timeout_does_not_expire_the_question(stack: dict[str, Any]) -> None:
    """Row 19: a pause timeout set in the past through the API records no expiry."""
    client = stack["client"]
    entry = waiting_run(stack, "SG")
    run_id = entry["run_id"]
    [pending] = [p for p in catalog(stack).pending_of_run(run_id) if p["status"] == "waiting"]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    forced = client.post(
        f"/flow_runs/{run_id}/set_state",
        json={
            "state": {
                "type": "PAUSED",
                "name": "Suspended",
                "state_details": {"pause_key": pending["suspend_key"], "pause_timeout": past,
                                  "pause_reschedule": True},
            },
            "force": True,
        },
    )  # fmt: skip
    assert forced.status_code in (200, 201), forced.text
    shown = listed(stack)
    # still waiting (paused) or, once Prefect failed it for the forced timeout, listed to retry
    assert run_id in {w["run_id"] for w in shown["waiting"]} | {
        f["run_id"] for f in shown["failed"]
    }
    assert status_of(stack, "SG") == "pending_approval"
    assert not [d for d in shown["decided"] if d["decision"] == "expired"]
    assert not [e for e in catalog(stack).audit_history(BASKETS) if e["kind"] == "expiry"]
    still = [p for p in catalog(stack).pending_of_run(run_id) if p["id"] == pending["id"]]
    assert still[0]["status"] == "waiting"

"""An approval lands only on the suspension that asked for it: attacks by an insider.

Each attack is made as an insider would make it: through the Prefect API (PATCH a suspended
run's parameters, write a flow-run input, force a state), the real CLI and the catalog. The
publish flow is served from this module's own runner (`publish-product/binding`) on a project
of its own, so nothing is shared with the other gate tests.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from helpers import make_project, served_publish_flow
from sqlalchemy import text
from test_transfer_gate import (
    SCC,
    approvals,
    catalog_of,
    cli,
    package,
    project_resources,
    status,
    wait_state,
)

from databourse.catalog.database import Catalog
from databourse.config import Config, load_config
from databourse.errors import TransferNotApproved
from databourse.transfer.answers import answer_problems
from databourse.transfer.rules import Binding, answer_model

PRODUCT = "bind-orders"
DEPLOYMENT = "publish-product/binding"
TODAY = dt.date(2026, 12, 4)
APPROVAL = {
    "approve_standard_contract": True,
    "reference": "YUE-SC-2026-0042",
    "valid_until": "2029-11-20",
}
ANSWER = {"approver": "Li Wei", "decision": APPROVAL}  # as the form in the UI sends it
MY_ANSWER = ("--approver", "Li Wei", "--reference", "YUE-SC-2026-0042")


# --- one rule source: the form's schema and the Python check ----------------------------------


def test_the_form_schema_is_the_schema_the_check_uses() -> None:
    from prefect._internal.pydantic.v2_schema import create_v2_schema

    from flows.approval_form import approval_form

    spec = load_config().policy.routes[SCC]
    binding = Binding("p", "1.0.4", "a" * 64, "MY", "n" * 32)
    form = approval_form(SCC, spec, "asked", binding)
    stored = create_v2_schema(form.__name__, model_base=form)  # what Prefect saves and checks
    mine = answer_model(SCC, spec, binding).model_json_schema()
    assert {k: v for k, v in stored.items() if k != "title"} == {
        k: v for k, v in mine.items() if k != "title"
    }
    for field in ("product", "version", "content_hash", "market", "nonce"):
        assert field in stored["required"]
        assert stored["properties"][field]["const"] == getattr(binding, field)


def test_the_form_asks_for_what_a_decision_needs_and_nothing_fixed() -> None:
    """What the UI draws (issue 21, item 4): the decision is a choice of an approval per basis
    or a rejection, each requiring its own fields and told apart by a key of its own (the UI
    matches a value to a choice by key names); the route is no input; an optional date is a
    date, not a `date | None` choice; every constant is a `const` the UI shows disabled."""
    spec = load_config().policy.routes[SCC]
    binding = Binding("p", "1.0.4", "a" * 64, "MY", "n" * 32)
    schema = answer_model(SCC, spec, binding).model_json_schema()
    assert "route" not in schema["properties"]
    choices = {c["title"]: c for c in schema["properties"]["decision"]["anyOf"]}
    titles = [f"Approve: {name.replace('_', ' ')}" for name in spec.bases]
    assert list(choices) == [*titles, "Reject"]  # short: the UI draws them as one row of buttons
    for title, (name, basis) in zip(titles, spec.bases.items(), strict=True):
        choice = choices[title]
        assert "$ref" not in json.dumps(choice)  # inlined: the UI labels each by its title
        assert set(choice["required"]) == {f"approve_{name}", *basis.requires}
        fields = choice["properties"]
        marker = fields[f"approve_{name}"]  # the key the UI tells this choice by
        assert marker["const"] is marker["default"] is True and marker["title"] == basis.label
        date = fields["valid_until"]
        assert date["type"] == "string" and date["format"] == "date"
        assert "anyOf" not in date and "default" not in date
    assert set(choices["Reject"]["required"]) == {"reject", "reason"}
    markers = [f"approve_{name}" for name in spec.bases] + ["reject"]
    for marker, choice in zip(markers, choices.values(), strict=True):
        others = [c for c in choices.values() if c is not choice]
        assert marker in choice["properties"] and not any(marker in o["properties"] for o in others)
    assert schema["properties"]["nonce"]["default"] == binding.nonce  # shown filled in


def test_the_form_value_and_the_recorded_fields() -> None:
    """`bourse approve` sends what the form would; the flow records the same fields."""
    from databourse.transfer.rules import flat_answer, form_value

    spec = load_config().policy.routes[SCC]
    binding = Binding("p", "1.0.4", "a" * 64, "MY", "n" * 32)
    flat = {"approver": "Li Wei", "decision": "approve", "reference": "YUE-SC-2026-0042"}
    sent = form_value({**flat, **binding.to_json()}, spec)
    assert sent["decision"] == {  # on the route's first basis, as the form preselects
        "approve_standard_contract": True,
        "reference": "YUE-SC-2026-0042",
    }
    assert answer_problems(SCC, spec, sent, TODAY, binding) == []
    assert flat_answer(sent) == {**flat, **binding.to_json(), "basis": "standard_contract"}
    refusal = {"approver": "Tan", "decision": "reject", "conditions": "no contract"}
    sent = form_value(refusal, spec)
    assert sent["decision"] == {"reject": True, "reason": "no contract"}
    assert flat_answer(sent) == refusal
    [problem] = answer_problems(SCC, spec, form_value({**refusal, "conditions": ""}, spec), TODAY)
    assert problem == "rejecting needs a reason"


@pytest.mark.parametrize("reference", ["todo", " Unknown ", "n/a", "-", ""])
def test_a_placeholder_reference_is_refused_by_the_form_and_the_check(reference: str) -> None:
    import jsonschema

    spec = load_config().policy.routes[SCC]
    binding = Binding("p", "1.0.4", "a" * 64, "MY", "n" * 32)
    answer = {**ANSWER, "decision": {**APPROVAL, "reference": reference}, **binding.to_json()}
    [problem] = answer_problems(SCC, spec, answer, TODAY, binding)
    assert "needs a reference" in problem
    schema = answer_model(SCC, spec, binding).model_json_schema()
    with pytest.raises(jsonschema.ValidationError):  # the server's own check refuses it too
        jsonschema.validate(answer, schema)


def test_an_answer_is_checked_against_its_suspension() -> None:
    spec = load_config().policy.routes[SCC]
    binding = Binding("p", "1.0.4", "a" * 64, "MY", "n" * 32)
    good = {**ANSWER, **binding.to_json()}
    assert answer_problems(SCC, spec, good, TODAY, binding) == []
    bad_date = {**good, "decision": {**APPROVAL, "valid_until": "2027-06-31"}}
    [date] = answer_problems(SCC, spec, bad_date, TODAY, binding)
    assert "valid_until '2027-06-31' is not a real date" in date
    other = {**good, "version": "1.0.6", "nonce": "m" * 32}
    problems = " / ".join(answer_problems(SCC, spec, other, TODAY, binding))
    assert "another form's nonce" in problems and "version 1.0.6" in problems
    missing = {k: v for k, v in good.items() if k != "nonce"}
    assert (
        "does not carry the form's nonce" in answer_problems(SCC, spec, missing, TODAY, binding)[0]
    )
    assert "a field the form does not" in answer_problems(SCC, spec, {**good, "x": 1}, TODAY)[0]


@pytest.mark.parametrize("approver", ["", "   ", "Li\x1b[2JWei", "Li\u202eWei", "x" * 201])
def test_a_hostile_approver_is_refused_by_the_form_and_the_check(approver: str) -> None:
    """The form's schema (which Prefect checks) and the Python check apply the name rule."""
    import jsonschema

    spec = load_config().policy.routes[SCC]
    binding = Binding("p", "1.0.4", "a" * 64, "MY", "n" * 32)
    answer = {**ANSWER, "approver": approver, **binding.to_json()}
    problems = answer_problems(SCC, spec, answer, TODAY, binding)
    assert problems and all("approver" in p for p in problems)
    assert not any(approver.strip() and approver in p for p in problems)  # never the value
    schema = answer_model(SCC, spec, binding).model_json_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(answer, schema)


# --- the pending approvals in the catalog -------------------------------------------------------


def test_an_answer_is_recorded_only_on_its_waiting_suspension(tmp_path: Path) -> None:
    from databourse.transfer.policy import facts_for

    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.create_schema()
    cat.ensure_product("p", "P", "sz-retail", "customer_orders")
    cat.reserve_version("p", "h1", [{"name": "customer_ref", "type": "string"}], 3)
    cat.publish_version("p", "1.0.0")
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 3, False)
    cat.apply_transfer_policy("p", "1.0.0", load_config().policy, facts, ["CN", "MY"], "sz-retail")
    first = cat.open_pending("p", "1.0.0", "MY", SCC, "r", "run-1", "approval-my")
    again = cat.open_pending("p", "1.0.0", "MY", SCC, "r", "run-1", "approval-my")
    assert again["nonce"] == first["nonce"] and again["id"] == first["id"]
    other = cat.open_pending("p", "1.0.0", "MY", SCC, "r", "run-2", "approval-my")
    assert other["nonce"] != first["nonce"]

    def record(run: str, pending: dict[str, Any], nonce: str) -> Any:
        return cat.record_approval(
            "p", "1.0.0", "MY", "approved", "Li Wei", SCC, "SCC-1",
            flow_run_id=run, pending_id=pending["id"], nonce=nonce,
        )  # fmt: skip

    with pytest.raises(TransferNotApproved, match="another form's nonce"):
        record("run-1", first, other["nonce"])
    with pytest.raises(TransferNotApproved, match="opened for MY in run run-2"):
        record("run-1", other, other["nonce"])
    assert record("run-1", first, first["nonce"]).new
    assert cat.pending_for("run-1", "approval-my")["status"] == "recorded"  # type: ignore[index]
    with cat.engine.connect() as conn:
        linked = conn.execute(text("SELECT pending_id FROM approvals")).scalars().all()
    assert linked == [first["id"]]
    cat.withdraw_version("p", "1.0.0", reason="wrong data")
    with pytest.raises(TransferNotApproved, match="withdrawn"):
        cat.open_pending("p", "1.0.0", "MY", SCC, "r", "run-3", "approval-my")


# --- attacks through the Prefect API ------------------------------------------------------------


@pytest.fixture(scope="module")
def bind_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A project with the repo's configs and one product of its own (markets CN and MY)."""
    project = make_project(tmp_path_factory.mktemp("binding") / "project")
    products = project / "configs" / "products"
    source = (products / "sz-retail-baskets.yaml").read_text()
    (products / f"{PRODUCT}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {PRODUCT}").replace(
            "markets: [CN, MY, SG]", "markets: [CN, MY]"
        )
    )
    return load_config(project / "configs")


@pytest.fixture(scope="module")
def bind_runner(prefect_api: str, bind_cfg: Config) -> Iterator[subprocess.Popen[bytes]]:
    """Serves publish-product as `publish-product/binding` with this module's configs."""
    with served_publish_flow(prefect_api, bind_cfg.root, "binding") as proc:
        yield proc


def suspended(cfg: Config, tag: str) -> tuple[str, str]:
    """A new version and its publish run, suspended on the MY form."""
    from prefect.deployments import run_deployment

    version = package(cfg, PRODUCT, rows=4, individuals=4, tag=tag)
    run = run_deployment(DEPLOYMENT, parameters={"product": PRODUCT, "version": version}, timeout=0)
    run_id = str(run.id)  # type: ignore[union-attr]
    assert wait_state(run_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    assert pause_key(run_id) == "approval-my"
    return version, run_id


def pause_key(run_id: str) -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return state.state_details.pause_key if state is not None else None


def shown_constants(run_id: str) -> dict[str, Any]:
    """What the form in the UI shows filled in (and sends back)."""
    from prefect.client.orchestration import get_client

    from bourse.approvals import form_constants

    with get_client(sync_client=True) as client:
        return form_constants(client, UUID(run_id), pause_key(run_id) or "")


def resume(run_id: str, answer: dict[str, Any]) -> None:
    """Answer through the Prefect API as the UI does; the server accepts it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    with get_client(sync_client=True) as client:
        result = client.resume_flow_run(UUID(run_id), run_input=answer)
    assert result.status == SetStateStatus.ACCEPT, result.details


def refusals(cat: Catalog, version: str) -> list[dict[str, Any]]:
    return [
        e for e in cat.audit_history(PRODUCT) if e["kind"] == "refusal" and e["version"] == version
    ]


def state_message(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return state.message or "" if state is not None else ""


@pytest.mark.prefect
def test_an_approval_lands_only_on_the_version_its_form_asked_about(
    bind_runner: Any, bind_cfg: Config, prefect_api: str
) -> None:
    """Attack 1: PATCH a suspended run's parameters to another version, then answer its form."""
    cat = catalog_of(bind_cfg)
    asked, run_id = suspended(bind_cfg, "p1")
    other = package(bind_cfg, PRODUCT, rows=6, individuals=6, tag="p2")
    shown = shown_constants(run_id)
    assert shown["version"] == asked and shown["market"] == "MY"
    patched = httpx.patch(
        f"{prefect_api}/flow_runs/{run_id}",
        json={"parameters": {"product": PRODUCT, "version": other}},
    )
    assert patched.status_code == 204
    refused = cli(bind_cfg, "approve", run_id, *MY_ANSWER, check=False)
    assert refused.returncode == 1 and "changed while it waited" in refused.stderr
    assert pause_key(run_id) == "approval-my"  # nothing was sent

    resume(run_id, {**ANSWER, **shown})  # the form answered in the UI anyway
    assert wait_state(run_id, {"Failed", "Completed"}) == "Failed"
    assert "parameters were changed" in state_message(run_id)
    assert status(cat, PRODUCT, asked)["MY"] == "pending_approval"
    assert approvals(cat, PRODUCT, asked) == {}
    with cat.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM approvals")).scalar() == 0
    [pending] = cat.pending_of_run(run_id)
    assert pending["status"] == "refused" and pending["version"] == asked
    [event] = refusals(cat, asked)
    assert event["detail"]["flow_run_id"] == run_id
    assert "parameters were changed" in event["detail"]["problems"][0]

    # The failed run is listed with why, and a retry asks again about the version it asked.
    listed = json.loads(cli(bind_cfg, "approvals", "list", "--all", "--json").stdout)
    [failed] = [f for f in listed["failed"] if f["run_id"] == run_id]
    assert (failed["version"], failed["state"]) == (asked, "Failed")
    assert "parameters were changed" in failed["why"]
    table = cli(bind_cfg, "approvals", "list").stdout
    assert "failed run" in table and run_id[:8] in table and "approvals retry" in table
    new_id = _retried(bind_cfg, run_id)
    assert new_id != run_id and _retried(bind_cfg, run_id) == new_id  # once, not per call
    assert wait_state(new_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    recorded = cli(bind_cfg, "approve", new_id, *MY_ANSWER)
    assert f"answered for {PRODUCT}@{asked} -> MY" in recorded.stdout
    assert "approve recorded;" in recorded.stdout
    assert status(cat, PRODUCT, asked)["MY"] == "available"
    given = approvals(cat, PRODUCT, asked)["MY"]
    [answered] = cat.pending_of_run(new_id)
    assert given["flow_run_id"] == new_id and given["pending_id"] == answered["id"]
    assert answered["status"] == "recorded" and answered["detail"]["approval_id"] == given["id"]
    assert "MY" not in approvals(cat, PRODUCT, other)


def _retried(cfg: Config, run_id: str) -> str:
    out = cli(cfg, "approvals", "retry", run_id).stdout
    return out.split("(", 1)[1].split(")", 1)[0]


@pytest.mark.prefect
def test_an_answer_copied_from_another_run_is_refused(bind_runner: Any, bind_cfg: Config) -> None:
    """Attack 2: replay an approved run's stored answer onto another suspended run."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    cat = catalog_of(bind_cfg)
    first, run_a = suspended(bind_cfg, "r1")
    cli(bind_cfg, "approve", run_a, *MY_ANSWER)
    assert status(cat, PRODUCT, first)["MY"] == "available"
    second, run_b = suspended(bind_cfg, "r2")
    key = "suspended-approval-my-response"
    with get_client(sync_client=True) as client:
        [given] = client.filter_flow_run_input(UUID(run_a), key, 1, set())
        client.create_flow_run_input(UUID(run_b), key, given.value)  # the stored JSON, as is
        client.set_flow_run_state(UUID(run_b), Scheduled(), force=True)

    deadline = time.monotonic() + 120
    while pause_key(run_b) != "approval-my-2" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pause_key(run_b) == "approval-my-2"  # refused: the run asks again, on a new form
    assert status(cat, PRODUCT, second)["MY"] == "pending_approval"
    assert approvals(cat, PRODUCT, second) == {}
    refused = {p["suspend_key"]: p for p in cat.pending_of_run(run_b)}["approval-my"]
    assert refused["status"] == "refused"
    [event] = refusals(cat, second)
    assert event["actor"] == "Li Wei" and event["detail"]["flow_run_id"] == run_b
    assert any("another form's nonce" in p for p in event["detail"]["problems"])

    recorded = cli(bind_cfg, "approve", run_b, *MY_ANSWER)  # the new form, answered for real
    assert f"answered for {PRODUCT}@{second} -> MY" in recorded.stdout
    assert status(cat, PRODUCT, second)["MY"] == "available"


@pytest.mark.prefect
def test_an_impossible_date_is_refused_and_the_gate_keeps_asking(
    bind_runner: Any, bind_cfg: Config
) -> None:
    """Attack 6: `--valid-until 2027-06-31`, from the CLI and then straight to the API."""
    from prefect.client.orchestration import get_client

    cat = catalog_of(bind_cfg)
    version, run_id = suspended(bind_cfg, "d1")
    bad = cli(bind_cfg, "approve", run_id, *MY_ANSWER, "--valid-until", "2027-06-31", check=False)
    assert bad.returncode == 1 and "answer not sent" in bad.stderr
    assert "valid_until '2027-06-31' is not a real date" in bad.stderr
    with get_client(sync_client=True) as client:
        key = "suspended-approval-my-response"
        assert client.filter_flow_run_input(UUID(run_id), key, 1, set()) == []
    assert pause_key(run_id) == "approval-my"

    answer = {**ANSWER, "decision": {**APPROVAL, "valid_until": "2027-06-31"}}
    resume(run_id, {**answer, **shown_constants(run_id)})  # the server does not check dates
    deadline = time.monotonic() + 120
    while pause_key(run_id) != "approval-my-2" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert wait_state(run_id, {"Suspended"}) == "Suspended"
    assert pause_key(run_id) == "approval-my-2"
    assert status(cat, PRODUCT, version)["MY"] == "pending_approval"
    listed = json.loads(cli(bind_cfg, "approvals", "list", "--json").stdout)
    assert run_id in {w["run_id"] for w in listed}
    [event] = refusals(cat, version)
    assert "not a real date" in event["detail"]["problems"][0]
    with get_client(sync_client=True) as client:
        key = "suspended-approval-my-2-description"
        [shown] = client.filter_flow_run_input(UUID(run_id), key, 1, set())
    assert "previous answer was refused" in shown.decoded_value
    cli(bind_cfg, "approve", run_id, *MY_ANSWER)
    assert status(cat, PRODUCT, version)["MY"] == "available"


@pytest.mark.prefect
def test_a_withdrawn_version_cannot_be_approved(bind_runner: Any, bind_cfg: Config) -> None:
    """5d: withdrawal cancels the waiting run; an answer forced through anyway is refused."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    cat = catalog_of(bind_cfg)
    # Withdrawn in the catalog while its run waits, then answered on the form: refused.
    version, run_id = suspended(bind_cfg, "w1")
    shown = shown_constants(run_id)
    cat.withdraw_version(PRODUCT, version, reason="wrong extract")
    resume(run_id, {**ANSWER, **shown})
    assert wait_state(run_id, {"Failed", "Completed"}) == "Failed"
    assert status(cat, PRODUCT, version)["MY"] != "available"
    assert approvals(cat, PRODUCT, version) == {}
    [event] = refusals(cat, version)
    assert "withdrawn" in event["detail"]["problems"][0]
    with project_resources(bind_cfg), pytest.raises(TransferNotApproved, match="withdrawn"):
        cat.record_approval(PRODUCT, version, "MY", "approved", "Li Wei", SCC, "SCC-9")

    # Withdrawn with the CLI: the waiting run is cancelled; forcing it on is refused too.
    version, run_id = suspended(bind_cfg, "w2")
    shown = shown_constants(run_id)
    out = cli(bind_cfg, "catalog", "withdraw", f"{PRODUCT}@{version}", "--reason", "recalled")
    assert f"cancelled publish run {run_id}" in out.stdout
    assert wait_state(run_id, {"Cancelled"}) == "Cancelled"
    [pending] = cat.pending_of_run(run_id)
    assert pending["status"] == "cancelled"
    key = "suspended-approval-my-response"
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(UUID(run_id), key, json.dumps({**ANSWER, **shown}))
        client.set_flow_run_state(UUID(run_id), Scheduled(), force=True)
    assert wait_state(run_id, {"Failed", "Completed"}) == "Failed"
    assert status(cat, PRODUCT, version)["MY"] != "available"
    assert approvals(cat, PRODUCT, version) == {}
    [event] = refusals(cat, version)
    assert "withdrawn" in event["detail"]["problems"][0]
    assert cat.pending_of_run(run_id)[0]["status"] == "cancelled"

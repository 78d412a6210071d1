"""The publication and approval steps without Prefect: decide a version's markets through the
transfer gate (`databourse.steps.publishing`), and record or refuse an approver's answer on
the form that asked for it (`databourse.steps.approving`), on a project's SQLite catalog."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from test_facts_and_grants import PRODUCT, SCC, World, package, tamper_facts, world

from databourse.errors import ManifestMismatch, TransferNotApproved
from databourse.steps import approving, publishing
from databourse.steps.approving import Question, StoredAnswer
from databourse.steps.resources import Resources
from databourse.transfer.rules import Binding, form_value

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants


def res_of(w: World) -> Resources:
    return Resources(w.cfg, w.store, w.catalog)


def kinds(w: World) -> list[str]:
    return [e["kind"] for e in w.catalog.audit_history(PRODUCT)]


# --- publishing ---------------------------------------------------------------------------------


def test_decide_transfers_publishes_and_gates_every_market(world: World) -> None:
    version = package(world)
    decisions = publishing.decide_transfers(res_of(world), PRODUCT, version)
    assert {d["market"]: d["status"] for d in decisions} == {
        "CN": "available",
        "MY": "pending_approval",
        "SG": "pending_approval",
    }
    assert world.status(version) == {d["market"]: d["status"] for d in decisions}
    assert world.catalog.get_version(PRODUCT, version).status == "published"
    assert {d["route"] for d in decisions if d["market"] != "CN"} == {SCC}


def test_an_edited_manifest_is_quarantined_and_offered_nowhere(world: World) -> None:
    version = package(world)
    tamper_facts(world, version)
    with pytest.raises(ManifestMismatch, match="was edited"):
        publishing.decide_transfers(res_of(world), PRODUCT, version)
    assert world.catalog.get_version(PRODUCT, version).status == "staged"
    assert world.status(version) == {}
    [event] = [e for e in world.catalog.audit_history(PRODUCT) if e["kind"] == "quarantine"]
    assert (event["version"], event["detail"]["stage"]) == (version, "gate")
    assert event["detail"]["error"] == "ManifestMismatch"


def test_decide_market_decides_one_market_of_a_published_version(world: World) -> None:
    res = res_of(world)
    version = package(world)
    staged = publishing.decide_market(res, PRODUCT, version, "MY")
    assert staged.decision is None
    assert staged.skipped == f"{PRODUCT}@{version} is not published: nothing asked"
    publishing.decide_transfers(res, PRODUCT, version)
    other = publishing.decide_market(res, PRODUCT, version, "US")
    assert other.decision is None
    assert other.skipped == f"US is not a market of {PRODUCT}: nothing asked"
    my = publishing.decide_market(res, PRODUCT, version, "MY")
    assert my.skipped is None and my.decision is not None
    assert (my.decision["market"], my.decision["status"]) == ("MY", "pending_approval")


# --- approving ----------------------------------------------------------------------------------


def asked(w: World, market: str = "MY") -> tuple[str, Question, dict[str, Any]]:
    """A gated version and the question a run opened for `market`'s form."""
    version = package(w)
    publishing.decide_transfers(res_of(w), PRODUCT, version)
    run_id, key = str(uuid.uuid4()), f"approval-{market.lower()}"
    pending = w.catalog.open_pending(
        PRODUCT, version, market, SCC, "cn-sensitive-under-10k", run_id, key, 3600
    )
    return version, Question(PRODUCT, version, market, SCC, key, run_id), pending


def stored(w: World, pending: dict[str, Any], **fields: Any) -> StoredAnswer:
    """The answer as the form stores it, bound to the question, in a run naming its version."""
    flat = {
        "approver": "Li Wei",
        "decision": "approve",
        "basis": "standard_contract",
        "reference": "YUE-SC-2026-0042",
        "valid_until": (dt.date.today() + dt.timedelta(days=300)).isoformat(),
        **Binding.of(pending).to_json(),
        **fields,
    }
    value = form_value(flat, w.cfg.policy.routes[SCC])
    params = {"product": pending["product"], "version": pending["version"]}
    return StoredAnswer(value, None, params, {"description": None, "schema": None})


def test_an_answer_on_its_own_form_is_recorded(world: World) -> None:
    res = res_of(world)
    version, question, pending = asked(world)
    outcome = approving.record_answer(res, question, pending, stored(world, pending))
    assert outcome.recorded and outcome.final and outcome.problems == []
    assert outcome.approval is not None and outcome.approval.approver == "Li Wei"
    assert outcome.approval.identity_note == approving.NO_IDENTITY
    assert outcome.to_json() == {
        "recorded": True,
        "status": "available",
        "problems": [],
        "decision": outcome.decision,
        "final": True,
    }
    assert world.status(version)["MY"] == "available"
    assert world.catalog.pending_for(question.run_id, question.key)["status"] == "recorded"
    # the run runs again from the top after a resume: nothing new, no decision returned
    again = world.catalog.pending_for(question.run_id, question.key)
    assert again is not None
    before = kinds(world)
    repeat = approving.record_answer(res, question, again, stored(world, pending))
    assert repeat.to_json() == {
        "recorded": True,
        "status": "available",
        "problems": [],
        "final": True,
    }
    assert kinds(world) == before


def test_an_answer_missing_the_forms_constants_is_refused_and_audited(world: World) -> None:
    version, question, pending = asked(world)
    bad = stored(world, pending, nonce="not-the-nonce")
    outcome = approving.record_answer(res_of(world), question, pending, bad)
    assert not outcome.recorded and not outcome.final and outcome.problems
    assert outcome.status == "pending_approval" and outcome.where == f"{PRODUCT}@{version} -> MY"
    assert world.status(version)["MY"] == "pending_approval"
    assert world.catalog.pending_for(question.run_id, question.key)["status"] == "refused"
    [refusal] = [e for e in world.catalog.audit_history(PRODUCT) if e["kind"] == "refusal"]
    assert refusal["actor"] == "Li Wei" and refusal["detail"]["problems"] == outcome.problems
    assert outcome.to_json()["decision"] == outcome.decision


def test_an_answer_in_a_run_whose_parameters_moved_is_void(world: World) -> None:
    version, question, pending = asked(world)
    moved = stored(world, pending)
    moved = StoredAnswer(moved.answer, None, {"product": PRODUCT, "version": "9.9.9"}, moved.shown)
    outcome = approving.record_answer(res_of(world), question, pending, moved)
    assert outcome.final and not outcome.recorded and outcome.decision is None
    [problem] = outcome.problems
    assert f"parameters name {PRODUCT}@9.9.9" in problem and "were changed" in problem
    assert world.status(version)["MY"] == "pending_approval"


def test_no_form_opened_means_nothing_to_answer(world: World) -> None:
    _, question, _ = asked(world)
    elsewhere = Question(PRODUCT, question.version, "SG", SCC, "approval-sg", question.run_id)
    with pytest.raises(TransferNotApproved, match="no approval form approval-sg was opened"):
        approving.opened_question(res_of(world), elsewhere)
    assert approving.opened_question(res_of(world), question)["market"] == "MY"


def test_a_run_asking_another_version_is_refused(world: World) -> None:
    res = res_of(world)
    version, question, _ = asked(world)
    assert approving.check_run_binding(res, PRODUCT, version, question.run_id) is None
    assert approving.check_run_binding(res, PRODUCT, version, question.run_id, "MY") is None
    moved = approving.check_run_binding(res, PRODUCT, "9.9.9", question.run_id)
    assert moved is not None and (moved.product, moved.version) == (PRODUCT, version)
    assert "the parameters were changed while it waited" in moved.problem
    assert f"bourse approvals retry {question.run_id}" in str(moved.error())
    assert world.catalog.pending_for(question.run_id, question.key)["status"] == "refused"


def test_the_identity_note_escapes_a_claimed_sender() -> None:
    note = approving.identity_note("dpo\x1b[2J")
    assert note.startswith(approving.NO_IDENTITY) and "'dpo\\x1b[2J'" in note
    assert json.dumps(note)  # plain text

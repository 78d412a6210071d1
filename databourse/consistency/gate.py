"""What `bourse verify --all` checks of the gate's evidence, beyond the store and the catalog.

facts        each version's transfer facts recounted from its files (facts.rederived_problems);
             a manifest-1 version, whose facts are outside its hash, is a warning
terms        each manifest's usage terms, ODRL policy, markets and source against its product's
             config, and its lineage's ingests against the audited ingest events (manifest_terms)
approvals    each recorded approval against the Prefect run that answered it: the run exists,
             is a publish run, and holds an answer on a form the catalog opened (a pending row
             under that run and suspend key) for that version, content hash and market, with the
             form's nonce, content hash and market and the same approver, decision, reference
             and expiry; an approval without a run must be a carry-over whose source verifies
             and was approved (an expiry is no source)
unasked      a market pending approval that no live publish run asks for (its runs cancelled,
             failed before asking it, deleted): a warning, not an error, since the market stays
             closed (nothing is offered without an answer) and the Prefect API holder can cancel a
             run at will: an error there would be theirs to raise; the work left is the operator's

The Prefect side is read by the caller (the domain never imports Prefect) into `RunEvidence`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PUBLISH_FLOW", "GateEvidence", "RunEvidence", "approval_problems_by_id"]

PUBLISH_FLOW = "publish-product"
_DECISION = {"approved": "approve", "rejected": "reject"}


@dataclass(frozen=True)
class RunEvidence:
    """What Prefect holds for one flow run: its flow, parameters and form answers by market
    (each answer as the form's values plus `_key`, the suspend key it was given on)."""

    flow: str
    parameters: dict[str, Any]
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class GateEvidence:
    """What the caller of `check_all` brings for these checks.

    `rederive(manifest, folder)`: the facts' problems given the version's files in `folder`.
    `terms(manifest, ingest_events)`: where its terms, ODRL policy, markets and source differ
    from its config, and its lineage from the audited ingest events.
    `runs`: every flow run id the approvals name -> its evidence (None: no such run), or None
    when Prefect could not be read (`prefect_error` says why). `pending`: (run id, suspend key)
    -> the pending row (catalog_pending.pending_json) of the form the catalog opened there.
    `unasked`: (product, version, market, why) of each market pending approval that no live
    publish run asks for (a warning: nothing was opened, but nobody will be asked), unless
    `unasked_error` says why Prefect could not be asked.
    """

    rederive: Callable[[dict[str, Any], Path], list[str]] | None = None
    terms: Callable[[dict[str, Any], list[dict[str, Any]]], list[str]] | None = None
    runs: Mapping[str, RunEvidence | None] | None = None
    pending: Mapping[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    prefect_error: str | None = None
    unasked: tuple[tuple[str, str, str, str], ...] = ()
    unasked_error: str | None = None
    unrecorded: tuple[str, ...] = ()  # runs suspended on a form with no pending row (tampering)


def approval_problems_by_id(
    approvals: list[dict[str, Any]],
    runs: Mapping[str, RunEvidence | None],
    pending: Mapping[tuple[str, str], dict[str, Any]] | None = None,
) -> dict[int, list[str]]:
    """Each approval's disagreements with Prefect (approval id -> problems; empty: verified).

    `approvals` are ApprovalRecord JSON rows; `runs` maps every flow run id they name to its
    evidence (None: no such run); `pending` maps (run id, suspend key) to the pending row of the
    form the catalog opened there.
    """
    out: dict[int, list[str]] = {}
    decisions = {a["id"]: a["decision"] for a in approvals}
    for a in sorted(approvals, key=lambda a: int(a["id"])):
        run_id = a.get("flow_run_id")
        if run_id:
            out[a["id"]] = _against_run(a, runs.get(run_id), pending or {})
            continue
        source = (a.get("carried_over_from") or {}).get("approval_id")
        if source is None:
            out[a["id"]] = ["no publish run answered it and it is not a carry-over"]
        elif out.get(source):
            out[a["id"]] = [f"carried over from approval {source}, which does not verify"]
        elif source not in out:
            out[a["id"]] = [f"carried over from approval {source}, which does not exist"]
        elif decisions[source] != "approved":
            out[a["id"]] = [
                f"carried over from approval {source}, which is {decisions[source]}: "
                "only an approved answer can be carried over"
            ]
        else:
            out[a["id"]] = []
    return out


def _against_run(
    a: dict[str, Any], run: RunEvidence | None, pending: Mapping[tuple[str, str], dict[str, Any]]
) -> list[str]:
    """Why an approval does not match the run it names (empty when it does)."""
    if run is None:
        return [f"its publish run {a['flow_run_id']} does not exist in Prefect"]
    if run.flow != PUBLISH_FLOW:  # its version is the pending row's: parameters can be edited
        return [f"run {a['flow_run_id']} is a {run.flow} run, not a publish run"]
    if a["decision"] == "expired":
        return []  # recorded by the sweep from the run's timeout: there is no answer to match
    answers = run.answers.get(a["market"], [])
    if not answers:
        return [f"run {a['flow_run_id']} holds no answer on a {a['market']} approval form"]
    run_id = str(a["flow_run_id"])
    misses = [
        _mismatch(a, answer, pending.get((run_id, answer.get("_key", "")))) for answer in answers
    ]
    if all(misses):
        return [f"no answer in run {a['flow_run_id']} matches it: {misses[-1]}"]
    return []


def _mismatch(a: dict[str, Any], answer: dict[str, Any], opened: dict[str, Any] | None) -> str:
    """The first field where the recorded approval differs from the answer given ('' if none)."""
    if opened is None:
        return f"answer under {answer.get('_key')}, a form the catalog never opened"
    asked = (opened["product"], opened["version"], opened["content_hash"], opened["market"])
    if asked != (a["product_id"], a["version"], a["content_hash"], a["market"]):
        return f"the form {opened['suspend_key']} asked about another version, content or market"
    wanted = {
        "approver": a["approver"],
        "decision": _DECISION.get(a["decision"], a["decision"]),
        "reference": a.get("reference") or None,
        "valid_until": a.get("valid_until") or None,
        "content_hash": opened["content_hash"],  # the form's fixed fields, always required
        "market": opened["market"],
        "nonce": opened["nonce"],
    }
    for name, value in wanted.items():
        given = answer.get(name)
        given = None if given in ("", None) else str(given).strip()
        if given != (None if value is None else str(value).strip()):
            return f"{name} differs from the answer given on the form"
    return ""

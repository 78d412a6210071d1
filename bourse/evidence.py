"""What `bourse verify --all` reads beyond the store and catalog: Prefect's runs, the files' facts.

The publish runs the recorded approvals name, with the answers stored on their forms, are read
from the Prefect API (never from the catalog) into `consistency_gate.RunEvidence`, and so are
the markets pending approval that no live run asks for (bourse.unasked); the checks themselves
are the domain's (databourse.consistency.gate, databourse.product.facts).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from bourse.unasked import unasked
from bourse.unrecorded import runs_without_row
from databourse.catalog.database import Catalog
from databourse.config import Config
from databourse.consistency.gate import GateEvidence, RunEvidence
from databourse.product.facts import configured_problems, configured_terms_problems

log = logging.getLogger(__name__)
ANSWER_PREFIX = "suspended-"
ANSWER_SUFFIX = "-response"


def gate_evidence(cfg: Config, catalog: Catalog) -> GateEvidence:
    """The facts check over `cfg`, and Prefect's side of every approval the catalog records."""
    approvals = catalog.transfer_decisions()
    run_ids = sorted({str(a["flow_run_id"]) for a in approvals if a.get("flow_run_id")})

    def rederive(manifest: dict[str, Any], folder: Path) -> list[str]:
        return facts_problems(cfg, manifest, folder)

    def terms(manifest: dict[str, Any], ingest_events: list[dict[str, Any]]) -> list[str]:
        return configured_terms_problems(cfg, manifest, ingest_events)

    lost, lost_error = _unasked(catalog)
    unrecorded = _runs_without_row(catalog)
    if not run_ids:
        return GateEvidence(
            rederive=rederive, terms=terms, runs={}, unasked=lost, unasked_error=lost_error,
            unrecorded=unrecorded,
        )  # fmt: skip
    try:
        runs = read_runs(run_ids)
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        return GateEvidence(
            rederive=rederive,
            terms=terms,
            prefect_error=_unreachable(exc),
            unasked=lost,
            unasked_error=lost_error,
            unrecorded=unrecorded,
        )
    pending = {
        (str(p["flow_run_id"]), str(p["suspend_key"])): p
        for run_id in run_ids
        for p in catalog.pending_of_run(run_id)
    }
    return GateEvidence(
        rederive=rederive,
        terms=terms,
        runs=runs,
        pending=pending,
        unasked=lost,
        unasked_error=lost_error,
        unrecorded=unrecorded,
    )


def _unasked(catalog: Catalog) -> tuple[tuple[tuple[str, str, str, str], ...], str | None]:
    """The markets pending that no live run asks for, or why Prefect could not say."""
    if not catalog.pending_approvals():
        return (), None  # nothing to ask Prefect about
    try:
        return tuple((u.product, u.version, u.market, u.why) for u in unasked(catalog)), None
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        return (), _unreachable(exc)


def _runs_without_row(catalog: Catalog) -> tuple[str, ...]:
    """Publish runs suspended on a form the catalog holds no row for (bourse.unrecorded)."""
    try:
        return tuple(runs_without_row(catalog))
    except (httpx.HTTPError, OSError, RuntimeError):
        return ()  # Prefect did not answer: `_unasked` already warns that it was not checked


def _unreachable(exc: BaseException) -> str:
    return f"the Prefect API did not answer ({type(exc).__name__}); start it (bourse server start)"


def facts_problems(cfg: Config, manifest: dict[str, Any], folder: Path) -> list[str]:
    """The manifest against its product's config and its files (in `folder`): transfer facts,
    schema tags, privacy figures and the config's privacy model on the files."""
    # A product no longer configured: its facts cannot be compared with a config.
    return configured_problems(cfg, folder, manifest) or []


def read_runs(run_ids: list[str]) -> dict[str, RunEvidence | None]:
    """Each run's flow name, parameters and approval-form answers (None: no such run)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    out: dict[str, RunEvidence | None] = {}
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            try:
                run = client.read_flow_run(UUID(run_id))
            except (ObjectNotFound, ValueError):
                out[run_id] = None
                continue
            flow = client.read_flow(run.flow_id)
            inputs = client.filter_flow_run_input(run.id, ANSWER_PREFIX, 1000, set())
            out[run_id] = RunEvidence(flow.name, dict(run.parameters), _answers(inputs))
    return out


def _answers(inputs: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The form answers of a run by market (a key `suspended-approval-my-2-response` is MY's),
    each as the fields it records (`approval_rules.flat_answer`)."""
    from databourse.transfer.rules import flat_answer
    from tasks.publishing import market_of

    out: dict[str, list[dict[str, Any]]] = {}
    for item in inputs:
        if not item.key.endswith(ANSWER_SUFFIX):
            continue
        key = item.key.removeprefix(ANSWER_PREFIX).removesuffix(ANSWER_SUFFIX)
        market = market_of(key)
        value = item.decoded_value
        if market is None or not isinstance(value, dict):
            continue
        out.setdefault(market, []).append({**flat_answer(value), "_key": key})
    return out

"""Gated transfers through the Prefect API: list suspended or failed publish runs, answer them,
retry a failed one, cancel a withdrawn version's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound
from prefect.input.run_input import keyset_from_base_key
from prefect.states import Cancelled

from bourse.prefect_runs import newest_runs_of, paused_runs, wait_until
from databourse.catalog.database import Catalog
from databourse.errors import DataBourseError
from databourse.transfer.form_binding import replaced_parts
from databourse.transfer.rules import BOUND
from tasks.publishing import (
    EXPIRED_MARK,
    PUBLISH_DEPLOYMENT,
    PUBLISH_FLOW,
    market_of,
    pending_deadline,
    start_publication,
)


class ApprovalError(RuntimeError):
    """An answer could not be given (no such run, not waiting, refused by the server)."""


@dataclass(frozen=True)
class Waiting:
    run_id: str
    run_name: str
    product: str
    version: str
    market: str
    since: str
    timeout_at: str | None
    warnings: tuple[str, ...] = ()  # what the Prefect API shows that the pipeline did not write

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "warnings": list(self.warnings)}


def waiting(now: dt.datetime | None = None, catalog: Catalog | None = None) -> list[Waiting]:
    """Publish runs suspended on a form the pipeline opened and still in time, oldest first.

    Version, market, asked time and deadline are the catalog's pending row, never the run's
    parameters or pause timeout in the Prefect API; a form whose description was replaced, or a
    run whose parameters were changed, is flagged in `warnings`.
    """
    from tasks import resources

    now = now or dt.datetime.now(dt.UTC)
    catalog = catalog or resources.catalog()
    with get_client(sync_client=True) as client:
        runs = paused_runs(client, PUBLISH_FLOW)
        out = [w for run in runs if (w := _waiting_on(client, catalog, run, now)) is not None]
    return sorted(out, key=lambda w: w.since)


def _waiting_on(client: Any, catalog: Catalog, run: FlowRun, now: dt.datetime) -> Waiting | None:
    """The question a paused run waits on, as the catalog recorded it (None: none in time)."""
    key = run.state.state_details.pause_key if run.state else None
    pending = catalog.pending_for(str(run.id), key) if market_of(key) and key else None
    if pending is None or pending["status"] != "waiting":
        return None  # another kind of pause, or a form the pipeline never opened
    deadline = pending_deadline(pending)
    if deadline < now:
        return None  # expired: the sweep records it
    warnings = [
        f"the form's {part} was replaced through the Prefect API: do not trust what the form "
        "says; an answer on it is refused (read the facts with `bourse catalog show`)"
        for part in replaced_parts(pending, _shown(client, run.id, pending["suspend_key"]))
    ]
    named = (str(run.parameters.get("product")), str(run.parameters.get("version")))
    if named != (pending["product"], pending["version"]):
        warnings.append(
            "the run's parameters were changed after it asked: an answer on it is refused"
        )
    return Waiting(
        run_id=str(run.id),
        run_name=run.name,
        product=pending["product"],
        version=pending["version"],
        market=pending["market"],
        since=str(pending["created_at"]),
        timeout_at=deadline.isoformat(),
        warnings=tuple(warnings),
    )


def _shown(client: Any, run_id: UUID, key: str) -> dict[str, object]:
    """What the run's form shows now: its `description` (text) and `schema` (None: none)."""
    keys = keyset_from_base_key(f"suspended-{key}")
    shown: dict[str, object] = {}
    for part in ("description", "schema"):
        found = client.filter_flow_run_input(run_id, keys[part], 1, set())
        exact = found and found[0].key == keys[part]
        shown[part] = found[0].decoded_value if exact else None
    if not isinstance(shown["description"], str):
        shown["description"] = None
    return shown


def read_run(client: Any, run_id: str) -> FlowRun:
    """A flow run by the id an operator typed, or an ApprovalError naming it."""
    try:
        return client.read_flow_run(run_uuid(run_id))  # type: ignore[no-any-return]
    except ObjectNotFound:
        raise ApprovalError(f"the Prefect API has no flow run {run_id}") from None


def run_uuid(run_id: str) -> UUID:
    """A flow run id as typed by an operator, or a clear error."""
    try:
        return UUID(run_id)
    except ValueError:
        raise ApprovalError(f"{run_id!r} is not a flow run id") from None


def answer(run_id: str, form: dict[str, Any], wait_seconds: float = 120) -> str:
    """Resume a suspended publish run with the form's answer; return the run's next state."""
    uuid = run_uuid(run_id)
    with get_client(sync_client=True) as client:
        run = read_run(client, run_id)
        if run.state is None or not run.state.is_paused():
            state = run.state.name if run.state else "unknown"
            raise ApprovalError(f"run {run.name} ({run_id}) is not waiting for approval: {state}")
        key = run.state.state_details.pause_key or ""
        # Prefect marks a run Suspended before it saves the form's schema: wait for the form.
        if not form_ready(client, uuid, key, wait_seconds=min(wait_seconds, 30)):
            raise ApprovalError(
                f"run {run.name} ({run_id}) is suspending but its form is not saved yet; "
                "try again in a moment"
            )
        # As the form in the UI does: the suspension's constants come back as shown.
        form = {**form_constants(client, uuid, key), **form}
        result = client.resume_flow_run(uuid, run_input=_jsonable(form))
        if result.status != SetStateStatus.ACCEPT:
            reason = getattr(result.details, "reason", None) or "no reason given"
            raise ApprovalError(f"the Prefect API refused the answer: {reason}")
        return _wait_settled(client, uuid, wait_seconds)


def form_ready(client: Any, run_id: UUID, key: str, wait_seconds: float = 0) -> bool:
    """True once the suspension's form schema is saved (Prefect saves it after the state)."""
    schema_key = keyset_from_base_key(f"suspended-{key}")["schema"]

    def saved() -> bool:
        found = client.filter_flow_run_input(run_id, schema_key, 1, set())
        return bool(found) and found[0].key == schema_key

    return wait_until(saved, bool, wait_seconds, 0.25)


def _wait_settled(client: Any, run_id: UUID, seconds: float) -> str:
    """Wait until the resumed run completes, fails, or suspends again (next market) with its
    form saved, so that the next answer can be given at once."""

    def settled(state: State | None) -> bool:
        return state is not None and (
            state.is_final()
            or (
                state.is_paused()
                and state.name == "Suspended"
                and form_ready(client, run_id, state.state_details.pause_key or "")
            )
        )

    state = wait_until(lambda: client.read_flow_run(run_id).state, settled, seconds, 1, delay=1)
    return state.name if state else "unknown"


def _jsonable(form: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, dt.date) else v for k, v in form.items() if v is not None
    }


def form_constants(client: Any, run_id: UUID, key: str) -> dict[str, Any]:
    """The constants (product, version, content hash, market, nonce) the run's form shows."""
    schema_key = keyset_from_base_key(f"suspended-{key}")["schema"]
    found = client.filter_flow_run_input(run_id, schema_key, 1, set())
    if not found or found[0].key != schema_key:
        return {}
    properties = (found[0].decoded_value or {}).get("properties", {})
    return {f: properties[f]["const"] for f in BOUND if "const" in properties.get(f, {})}


@dataclass(frozen=True)
class Stopped:
    """A publish run that failed while a market of its version still waits for an answer."""

    run_id: str
    run_name: str
    product: str
    version: str
    state: str
    why: str
    since: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def stopped(catalog: Catalog) -> list[Stopped]:
    """The latest publish run of each version (and of each market asked alone, tasks.asking),
    when it failed and a market still waits."""

    def version_and_market(run: FlowRun) -> tuple[str, str, str | None]:
        alone = (run.parameters or {}).get("market")
        return (*subject(catalog, run), str(alone) if alone else None)

    with get_client(sync_client=True) as client:
        latest = newest_runs_of(client, PUBLISH_FLOW, version_and_market)
    out = []
    for (product, version, _), run in latest.items():
        state = run.state
        if state is None or not (state.is_failed() or state.is_crashed()):
            continue
        if _timed_out(catalog, run, state.message) or not _still_waits(catalog, product, version):
            continue  # an approval timeout is recorded as expired by the sweep
        why = (state.message or "no message").splitlines()[0][:300]
        since = state.timestamp.isoformat()
        out.append(Stopped(str(run.id), run.name, product, version, str(state.name), why, since))
    return sorted(out, key=lambda s: s.since)


def _timed_out(catalog: Catalog, run: FlowRun, message: str | None) -> bool:
    """True when Prefect failed the run for a timeout and the catalog's deadline passed too.

    A pause timeout forced through the API fails the run early: it is listed as failed (retry
    it), not left to an expiry the catalog will not record before its own deadline.
    """
    if EXPIRED_MARK not in (message or ""):
        return False
    now = dt.datetime.now(dt.UTC)
    asked = catalog.pending_of_run(str(run.id))
    return not asked or any(
        p["status"] == "expired" or pending_deadline(p) < now for p in asked[-1:]
    )


def subject(catalog: Catalog, run: FlowRun) -> tuple[str, str]:
    """The version a publish run asked about (its forms' version, else its parameters)."""
    opened = catalog.pending_of_run(str(run.id))
    if opened:
        return opened[-1]["product"], opened[-1]["version"]
    return str(run.parameters.get("product")), str(run.parameters.get("version"))


def _still_waits(catalog: Catalog, product: str, version: str) -> bool:
    try:
        shown = catalog.show(product, version)
    except DataBourseError:  # a run of a product this catalog does not hold
        return False
    return any(
        v.get("status") != "withdrawn"
        and any(a["status"] == "pending_approval" for a in v.get("availability", []))
        for v in shown.get("versions", [])
        if v.get("version") == version
    )


def retry(catalog: Catalog, run_id: str) -> FlowRun:
    """Start a fresh publish run for the version of an ended one (the same one if retried).

    A failed, crashed or cancelled publish run is retried, and so is a completed one while a
    market of its version still waits for approval (a state forced through the API).
    """
    with get_client(sync_client=True) as client:
        run = read_run(client, run_id)
        flow = client.read_flow(run.flow_id)
        served = client.read_deployment(run.deployment_id) if run.deployment_id else None
    state = run.state
    if flow.name != PUBLISH_FLOW or state is None or not state.is_final():
        what = state.name if state else "unknown"
        raise ApprovalError(
            f"run {run.name} ({run_id}) is {what}: only a publish run that ended is retried"
        )
    product, version = subject(catalog, run)
    if state.is_completed() and not _still_waits(catalog, product, version):
        raise ApprovalError(
            f"run {run.name} ({run_id}) completed and no market of {product}@{version} waits "
            "for approval: there is nothing to retry"
        )
    record = catalog.get_version(product, version)
    if record.status == "withdrawn":
        raise ApprovalError(f"{product}@{version} was withdrawn: there is nothing to retry")
    deployment = f"{flow.name}/{served.name}" if served else PUBLISH_DEPLOYMENT
    new = start_publication(
        product, version, record.content_hash, deployment=deployment, after=str(run.id)
    )
    if new.id == run.id:
        raise ApprovalError(f"run {run_id} is still the current publish run of {product}@{version}")
    return new


def cancel_waiting(catalog: Catalog, product: str, version: str, reason: str) -> list[str]:
    """Cancel the version's publish runs that wait on a form, and their open questions."""
    runs = {p["flow_run_id"] for p in catalog.pending_of_version(product, version)}
    runs |= {
        w.run_id for w in waiting(catalog=catalog) if (w.product, w.version) == (product, version)
    }
    cancelled = []
    with get_client(sync_client=True) as client:
        for run_id in sorted(runs):
            try:
                run = client.read_flow_run(UUID(run_id))
            except ObjectNotFound:
                continue  # deleted from Prefect: nothing to cancel there
            if run.state is None or not run.state.is_paused():
                continue
            message = f"{product}@{version} was withdrawn: {reason}"[:300]
            client.set_flow_run_state(run.id, Cancelled(message=message), force=True)
            cancelled.append(run_id)
    catalog.cancel_pending(product, version, reason)
    return cancelled


def asked(catalog: Catalog, run_id: str) -> dict[str, Any]:
    """The question a suspended publish run asks now, as the pipeline recorded it.

    ApprovalError when the run is not waiting on an approval form, the pipeline opened no
    question for that form, or the run's parameters no longer name the version it asked about.
    """
    with get_client(sync_client=True) as client:
        run = read_run(client, run_id)
    state = run.state
    key = state.state_details.pause_key if state is not None and state.is_paused() else None
    if key is None or market_of(key) is None:
        raise ApprovalError(f"run {run.name} ({run_id}) is not waiting for approval")
    pending = catalog.pending_for(run_id, key)
    if pending is None:
        raise ApprovalError(
            f"run {run_id} waits on form {key}, but the pipeline opened no such form"
        )
    named = (str(run.parameters.get("product")), str(run.parameters.get("version")))
    if named != (pending["product"], pending["version"]):
        raise ApprovalError(
            f"run {run_id}'s parameters name {named[0]}@{named[1]}, but its form asks about "
            f"{pending['product']}@{pending['version']}: the run was changed while it waited; "
            f"cancel it and start a new one (bourse approvals retry {run_id})"
        )
    return pending

"""Questions that wait with no pending row: suspended publish runs and audited `asked` events.

A pending-approval row is the only thing an answer is accepted on. When it is deleted or
rewritten with SQL, `approvals list` would say nothing waits and `bourse approve` would refuse
"no such form" while the run still waits in the Prefect UI until its deadline. `unrecorded`
names both sides: every audited question whose row is gone or differs (the catalog's
`question_problems`), and every publish run suspended on an approval form whose row the catalog
does not hold. `approvals list` prints them; `verify --all` reports each as an error.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client

from bourse.prefect_runs import paused_runs
from databourse.catalog.database import Catalog
from tasks.publishing import PUBLISH_FLOW, market_of, of_another_catalog

__all__ = ["runs_without_row", "suspended_without_row", "unrecorded"]


def suspended_without_row(catalog: Catalog) -> list[str]:
    """Publish runs suspended on an approval form the catalog holds no pending row for.

    A run tagged with another catalog's identity is that catalog's (one Prefect server, two
    exchanges); a run tagged with none is judged as this catalog's. Retagging a run through the
    Prefect API hides it here, but not a question the trail audited (`question_problems`).
    """
    with get_client(sync_client=True) as client:
        runs = paused_runs(client, PUBLISH_FLOW)
    out = []
    for run in runs:
        key = run.state.state_details.pause_key if run.state else None
        if not key or market_of(key) is None or of_another_catalog(run, catalog):
            continue
        if catalog.pending_for(str(run.id), key):
            continue
        out.append(
            f"publish run {run.name} ({run.id}) waits on the approval form {key} but the "
            "catalog holds no pending row for it (deleted: tampering, or never opened); "
            "nobody can answer it: cancel the run and re-run its drop"
        )
    return out


def unrecorded(catalog: Catalog) -> list[str]:
    """Audited questions without their row, then suspended runs without one (one line each)."""
    asked = catalog.question_problems()
    return asked + runs_without_row(catalog, asked)


def runs_without_row(catalog: Catalog, asked: list[str] | None = None) -> list[str]:
    """The suspended runs without a row that no audited question's line names already."""
    asked = catalog.question_problems() if asked is None else asked
    return [s for s in suspended_without_row(catalog) if not _named(s, asked)]


def _named(line: str, asked: list[str]) -> bool:
    """The suspended run of `line` is already named by an audited question's line."""
    run = line.split("(", 1)[1].split(")", 1)[0]
    return any(f"run {run}," in a for a in asked)

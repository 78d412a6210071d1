"""Flow run names that say what a run does, for what and which day.

`ingest/<provider>/<dataset>/<date>`: the date is the run's start (UTC).
`publish/<product>/<version>`, and `.../<market>` for a run that asks one market alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from prefect.runtime import flow_run


def dated(verb: str, *parameters: str) -> Callable[[], str]:
    """A run-name function: the verb, the named parameters' values, and today's date (UTC)."""

    def name() -> str:
        given = flow_run.parameters
        parts = [str(given.get(p) or "all") for p in parameters]
        return "/".join([verb, *parts, dt.datetime.now(dt.UTC).date().isoformat()])

    return name


def publication() -> str:
    """`publish/<product>/<version>`, with `/<market>` when the run asks that market alone."""
    given = flow_run.parameters
    parts = ["publish", str(given.get("product")), str(given.get("version"))]
    return "/".join(parts + ([str(given["market"])] if given.get("market") else []))

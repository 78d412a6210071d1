"""Flow run names that say what a run does, for what and which day; the tags of a drop's runs.

`ingest/<provider>/<dataset>/<date>`: the date is the run's start (UTC).
`publish/<product>/<version>`, and `.../<market>` for a run that asks one market alone.
A drop's subflow runs are tagged `provider:<id>` and `dataset:<id>`; their task runs are not
(`drop_tags`, `untagged_tasks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prefect import tags
from prefect.context import TagsContext
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


@contextmanager
def drop_tags(provider: str, dataset: str) -> Iterator[None]:
    """The subflow runs started in the block are tagged with the drop's provider and dataset.

    Their task runs must not be (each subflow's body runs in `untagged_tasks`): Prefect's task
    engine asks the server for a slot of the tags' concurrency limits once per new set of task
    tags, an SQLite write that, beside the run's own writes, the server refuses (503) about
    once a drop, and the client then waits 2 s before it asks again (profile on issue 18).
    databourse bounds providers with global limits (tasks/limits.py), never tag limits."""
    with tags(f"provider:{provider}", f"dataset:{dataset}"):
        yield


@contextmanager
def untagged_tasks() -> Iterator[None]:
    """A flow's body: the task runs it starts carry no tags from its caller (see drop_tags)."""
    with TagsContext(current_tags=set()):
        yield


@contextmanager
def tags_of_this_run() -> Iterator[None]:
    """The subflow runs started in the block carry the tags of the run that starts them."""
    with tags(*flow_run.tags):
        yield

"""Artifacts an operator reads in the Prefect UI: tables and markdown, never cell values.

Every key starts with the environment's namespace (`namespace_of`), so two projects that share
a Prefect server keep their own `product-*` and `quality-*` artifacts."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from hashlib import sha256
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture, as_completed

from databourse.config import Config
from tasks import resources


def namespace_of(cfg: Config) -> str:
    """The environment's artifact namespace: settings `artifact_namespace`, else a short hash
    of the store root (two checkouts or environments on one Prefect server differ in it)."""
    return cfg.settings.artifact_namespace or sha256(cfg.store_root.encode()).hexdigest()[:8]


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) from names, after this
    environment's namespace: another environment on the same server never replaces it."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return f"{namespace_of(resources.config())}-{name}"[:100].strip("-")


def table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """A table artifact (latest version under `key`)."""
    create_table_artifact(key=artifact_key(key), table=rows, description=description)


def markdown(key: str, text: str, description: str = "") -> None:
    """A markdown artifact."""
    create_markdown_artifact(key=artifact_key(key), markdown=text, description=description)


def link(key: str, uri: str, description: str) -> None:
    """A link artifact to a file or object."""
    create_link_artifact(key=artifact_key(key), link=uri, description=description)


def progress(
    key: str, description: str, batches: Iterable[Any], total_rows: int, every: float = 2.0
) -> Iterator[Any]:
    """Yield `batches` unchanged while a progress artifact shows the share of rows done."""
    artifact: UUID | None = None
    done, last = 0, 0.0
    for batch in batches:
        yield batch
        done += batch.num_rows
        if time.monotonic() - last < every and done < total_rows:
            continue
        last = time.monotonic()
        percent = round(100 * done / max(total_rows, 1), 1)
        artifact = shown(artifact, key, description, percent)


def partitions_progress(
    key: str, description: str, futures: list[PrefectFuture[Any]], rows: list[int]
) -> None:
    """Wait for `futures` (one per partition of `rows` records each) while a progress artifact
    shows the share of rows whose partition is done; a failed one counts as done (its result
    raises where it is read)."""
    weights = {future.task_run_id: n for future, n in zip(futures, rows, strict=True)}
    artifact: UUID | None = None
    done = 0
    for future in as_completed(futures):
        done += weights[future.task_run_id]
        percent = round(100 * done / sum(rows), 1) if sum(rows) else 100.0
        artifact = shown(artifact, key, description, percent)


def shown(artifact: UUID | None, key: str, description: str, percent: float) -> UUID:
    """The progress artifact at `percent`: created under `key` the first time, then updated."""
    if artifact is None:
        return cast(  # called from sync code: returns the id
            UUID, create_progress_artifact(percent, key=artifact_key(key), description=description)
        )
    update_progress_artifact(artifact, percent)
    return artifact

"""Tasks retry transient failures only: storage, network, a locked catalog; never a failed gate."""

from __future__ import annotations

import pytest

from databourse.errors import (
    CatalogError,
    IngestRejected,
    ObjectNotFound,
    QualityFailed,
    StorageError,
)
from tasks.retrying import transient


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (StorageError("S3 answered 503 after 9 attempts"), True),
        (ConnectionResetError("reset"), True),
        (TimeoutError("slow"), True),
        (
            CatalogError("x: the catalog database is unreachable or locked (database is locked)"),
            True,
        ),
        (CatalogError("x: conflicting concurrent writes"), False),
        (ObjectNotFound("no object"), False),
        (IngestRejected("f.csv: data row 2 has 11 fields"), False),
        (QualityFailed("2 expectations failed"), False),
        (ValueError("bug"), False),
        (None, False),
    ],
)
def test_transient(error: BaseException | None, again: bool) -> None:
    assert transient(error) is again


@pytest.mark.prefect
def test_a_task_retries_a_storage_error_but_not_a_rejected_file(prefect_api: str) -> None:
    from prefect import flow, task

    from tasks.retrying import RETRY_TRANSIENT

    calls: dict[str, int] = {"storage": 0, "gate": 0}

    @task(**{**RETRY_TRANSIENT, "retry_delay_seconds": 0, "retry_jitter_factor": None})
    def flaky(kind: str) -> str:
        calls[kind] += 1
        if kind == "storage" and calls[kind] < 3:
            raise StorageError("the object store did not answer")
        if kind == "gate":
            raise IngestRejected("f.csv: empty file")
        return "ok"

    @flow
    def run_both() -> tuple[str, str]:
        first = flaky("storage")
        second = flaky("gate", return_state=True)
        return first, second.type.value

    assert run_both() == ("ok", "FAILED")
    assert calls == {"storage": 3, "gate": 1}

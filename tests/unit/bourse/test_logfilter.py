"""The CLI's log filter: a failed gate keeps its message and loses its traceback; nothing else
is dropped (no task sets a timeout, so Prefect's worker-thread notice is not filtered)."""

from __future__ import annotations

import logging

import pytest

from bourse import logfilter
from databourse.errors import GateFailed


def test_a_gate_failure_loses_its_traceback_and_every_warning_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logfilter.install()
    logfilter.install()  # idempotent
    logger = logging.getLogger("prefect.task_runs")
    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
        try:
            raise GateFailed("quality gate: 2 expectations failed")
        except GateFailed:
            logger.exception("gate")
        logger.warning("Timeout of 900 seconds configured for this task, but the task is running")
    [gate, notice] = caplog.records
    assert gate.exc_info is None and gate.getMessage() == "gate"
    assert "Timeout of 900 seconds" in notice.getMessage()  # shown: nothing hides a regression

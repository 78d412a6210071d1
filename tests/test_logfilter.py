"""The CLI's console filter drops Prefect's per-task notice about timeouts in worker threads."""

from __future__ import annotations

import logging

import pytest

from bourse import logfilter


def test_the_thread_timeout_notice_is_dropped_and_other_warnings_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logfilter.install()
    logfilter.install()  # idempotent: one filter
    logger = logging.getLogger("prefect.task_runs")
    assert sum(isinstance(f, logfilter.ThreadTimeoutNotice) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
        logger.warning(
            "Timeout of %s seconds configured for this task, but the task is running in a "
            "worker thread. Timeouts in worker threads cannot interrupt blocking operations.",
            900,
        )
        logger.warning("quality of p/d: 30/31 expectations passed")
    assert [r.getMessage() for r in caplog.records] == ["quality of p/d: 30/31 expectations passed"]

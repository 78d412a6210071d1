"""Console logs of the CLI: a failed gate is an expected outcome, so no traceback for it; and
Prefect's notice that a task timeout cannot interrupt a blocking call in a worker thread, which
it repeats for every task run, is dropped (see `tasks/retrying.py`: the timeouts are outer bounds
that bind once a blocking call returns; a hung call is found by heartbeats, not by them)."""

from __future__ import annotations

import logging

from databourse.errors import GateFailed


class GateTracebackFilter(logging.Filter):
    """Drop the traceback of records whose exception is a GateFailed; keep the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], GateFailed):
            record.exc_info = None
            record.exc_text = None
        return True


THREAD_TIMEOUT_NOTICE = "but the task is running in a worker thread"


class ThreadTimeoutNotice(logging.Filter):
    """Drop Prefect's per-task-run warning about timeouts in worker threads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.WARNING
            and isinstance(record.msg, str)
            and THREAD_TIMEOUT_NOTICE in record.msg
        )


def install() -> None:
    """Strip GateFailed tracebacks from every log record this process makes.

    Prefect configures its handlers lazily (at the first flow run), so filtering handlers found
    now misses them: a record factory sees every record, whatever handler later takes it.
    """
    task_runs = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, ThreadTimeoutNotice) for f in task_runs.filters):
        task_runs.addFilter(ThreadTimeoutNotice())
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_databourse_gate_filter", False):
        return
    gate_filter = GateTracebackFilter()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        gate_filter.filter(record)
        return record

    factory._databourse_gate_filter = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

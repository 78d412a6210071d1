"""Console logs of the CLI: a failed gate is an expected outcome, so no traceback for it.

(No task sets a timeout any more, so Prefect's notice that one cannot interrupt a worker thread
is not filtered: should it come back, the demo's no-warning test sees it; tasks/retrying.py says
what bounds a run.)"""

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


def install() -> None:
    """Strip GateFailed tracebacks from every log record this process makes.

    Prefect configures its handlers lazily (at the first flow run), so filtering handlers found
    now misses them: a record factory sees every record, whatever handler later takes it.
    """
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

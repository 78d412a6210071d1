"""Console logs of the CLI: a failed gate is an expected outcome, so no traceback for it."""

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
    """Attach the filter to every handler of Prefect's loggers (after Prefect set them up)."""
    gate_filter = GateTracebackFilter()
    names = ["prefect", *[n for n in logging.root.manager.loggerDict if n.startswith("prefect")]]
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, GateTracebackFilter) for f in handler.filters):
                handler.addFilter(gate_filter)

"""Operator tables keep a run id whole on a narrow terminal: it is copied into `approve`."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

# bourse.display, not bourse.cli: importing the CLI configures this process's Prefect settings
from bourse.display import fold_all_but_the_run, minute

RUN_ID = "470d83d1-a89c-46e2-8d02-1f56b95715d6"


def test_the_run_id_stays_on_one_line_at_80_columns() -> None:
    table = Table("run", "version", "market", "asked (UTC)", "expires (UTC)")
    fold_all_but_the_run(table)
    table.add_row(RUN_ID, "sz-retail-baskets@1.0.1", "MY", "2026-12-06 01:02", "2026-12-09 01:02")
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(table)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert RUN_ID in shown, shown
    assert max(len(line) for line in shown.splitlines()) <= 80


def test_timestamps_are_shown_to_theminute() -> None:
    assert minute("2026-12-06T01:02:03.456789+00:00") == "2026-12-06 01:02"
    assert minute("2026-12-06 01:02:03+00:00") == "2026-12-06 01:02"
    assert minute("") == ""

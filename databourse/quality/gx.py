"""Expectations that GX runs on each batch, their counts combined into one result each."""

from __future__ import annotations

import contextlib
import copy
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from databourse.quality.counts import Counts, counted_result
from databourse.quality.expectations import ExpectationResult, ExpectationSpec
from databourse.quality.gx_inputs import to_pandas
from databourse.quality.report import to_result

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine as _gx_pandas_engine

# GX's project context is process-global; one validation at a time keeps runs from mixing.
_GX_LOCK = threading.Lock()


def gx_combined(
    batches: Iterator[pa.RecordBatch] | list[Any],
    empty: pa.Table,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
    indices: list[int],
    names: set[str],
) -> dict[int, ExpectationResult]:
    """Run GX on each batch (or once on `empty`) and combine the counts per expectation."""
    counts = gx_counts(batches, specs, built, indices, names)
    return gx_results(counts, empty, specs, built, names)


def gx_counts(
    batches: Iterator[pa.RecordBatch] | list[Any],
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
    indices: list[int],
    names: set[str],
) -> dict[int, Counts]:
    """Run GX on each batch and add up the counts per expectation (no batch: no run)."""
    counts = {i: Counts() for i in indices}
    last: dict[int, Any] = {}
    with _GX_LOCK, _no_fingerprint():
        run = _gx_runner([built[i] for i in indices])
        for batch in batches:
            _accumulate(run(to_pandas(_as_table(batch))), counts, last)
    for i, found in last.items():
        counts[i].last = to_result(specs[i], found, names)
    return counts


def gx_results(
    counts: dict[int, Counts],
    empty: pa.Table,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
    names: set[str],
) -> dict[int, ExpectationResult]:
    """One result per expectation from its counts; expectations that never ran (no row) run
    once on `empty`."""
    if never := [i for i, c in counts.items() if not c.runs]:
        counts = {**counts, **gx_counts([empty], specs, built, never, names)}
    return {i: _combined(specs[i], c, names) for i, c in counts.items()}


@contextlib.contextmanager
def _no_fingerprint() -> Iterator[None]:
    """GX without its batch fingerprint, for the time of one validation (under `_GX_LOCK`).

    GX 1.24.1 labels every in-memory batch under 1 GB with an md5 over pandas' hash of every
    cell (`pandas_data_fingerprint`, a batch marker), which took 40 % of a validation's time
    (measured: 2.1 of 4.9 s on 5M rows). Nothing here reads that label: the threshold is set
    to zero while we validate and put back after.
    """
    saved = getattr(_gx_pandas_engine, "HASH_THRESHOLD", None)
    if saved is None:  # another GX version: nothing to switch off
        yield
        return
    _gx_pandas_engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        _gx_pandas_engine.HASH_THRESHOLD = saved


def _as_table(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    return batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])


def _gx_runner(built: list[gxe.Expectation]) -> Callable[[Any], list[Any]]:
    """One ephemeral GX context and validation definition, run once per DataFrame."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("databourse")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    # copies: an expectation belongs to one suite, and one may run in several (a part's
    # counts, then once on an empty table when no part had a row)
    copies = [copy.copy(b) for b in built]
    suite = context.suites.add(gx.ExpectationSuite(name="suite", expectations=copies))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="validation", data=batch, suite=suite)
    )

    def run(df: Any) -> list[Any]:
        # SUMMARY gives the counts; no partial lists of unexpected values are even collected.
        result = definition.run(
            batch_parameters={"dataframe": df},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
        )
        return list(result.results)

    return run


def _accumulate(gx_results: list[Any], counts: dict[int, Counts], last: dict[int, Any]) -> None:
    from databourse.quality.gx_inputs import INDEX_KEY

    for res in gx_results:
        i = int(res.expectation_config.meta[INDEX_KEY])
        c = counts[i]
        c.runs += 1
        last[i] = res
        if res.exception_info.get("raised_exception"):
            c.raised = True
            continue
        raw = dict(res.result or {})
        c.element += int(raw.get("element_count") or 0)
        c.missing += int(raw.get("missing_count") or 0)
        c.unexpected += int(raw.get("unexpected_count") or 0)
        c.failed_batches += not res.success


def _combined(spec: ExpectationSpec, c: Counts, names: set[str]) -> ExpectationResult:
    """One result from the per-batch counts; a single batch keeps GX's own result."""
    single = c.last or to_result(spec, None, names)  # None: GX gave no result for it
    if c.runs <= 1 or c.raised or single.unexpected_count is None:
        # one run (or an exception) is GX's own result; a result without counts failed if any
        # batch failed (per-batch expectations always have counts in practice)
        return single if c.runs <= 1 or c.raised else _replace(single, success=not c.failed_batches)
    return counted_result(spec, c.element, c.missing, c.unexpected)


def _replace(result: ExpectationResult, **changes: Any) -> ExpectationResult:
    return ExpectationResult(**{**result.to_json(), **changes})

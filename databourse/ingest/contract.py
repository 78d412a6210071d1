"""A dataset's contract applied to the columns of a drop: names, drift, types, layouts, nulls.

`plan_columns` compares the columns a file has with the contract and applies the dataset's
schema-drift policy:

    reject     any new, missing or retyped column rejects the drop (the default)
    additive   new columns are accepted (kept as text after the contract's columns)
    all        new columns are kept, missing nullable columns are filled with nulls, retyped
               columns are converted when every value converts

Column names match exactly, else ignoring case and surrounding spaces (recorded as renamed).
Text is what most drops carry: `coerce_batch` turns it into the contract's types, with the
column's date layouts (`%d/%m/%Y`, `%Y年%m月%d日`, ...), bool words and the dataset's null
texts. A value that does not convert names its column and data row, never the value.

Header names outside the contract are the provider's data (a file without a header row puts its
first record there: an ID, a name, a phone number), so no message, drift record or audit detail
holds them: they are counted and named by their place in the header (`#3`). Names the contract
declares are named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ColumnSpec, DatasetSpec
from databourse.errors import IngestRejected
from databourse.readers.decompress import column_label

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")
# Found kinds a contract type takes without calling it drift (text is always coerced).
_COMPATIBLE = {
    "string": {"string"},
    "int64": {"string", "int"},
    "float64": {"string", "int", "float"},
    "bool": {"string", "bool"},
    "date": {"string", "date"},
    "timestamp": {"string", "date", "timestamp"},
}
_GROUPS = {"%Y": ("Y", r"\d{4}"), "%m": ("m", r"\d{1,2}"), "%d": ("d", r"\d{1,2}")}
_GROUPS |= {"%H": ("H", r"\d{1,2}"), "%M": ("M", r"\d{1,2}"), "%S": ("S", r"\d{1,2}")}


def contract_schema(dataset: DatasetSpec) -> pa.Schema:
    """The Arrow schema a dataset's contract asks for."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], c.nullable) for c in dataset.columns])


@dataclass(frozen=True)
class Drift:
    """How a drop's columns differ from its contract."""

    added: tuple[str, ...] = ()  # places in the header (`#3`) of columns outside the contract
    missing: tuple[str, ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()  # (column, found kind, contract type)
    renamed: tuple[tuple[str, str], ...] = ()  # (found name, contract name)

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.retyped)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "missing": list(self.missing),
            "retyped": [{"column": c, "found": f, "contract": t} for c, f, t in self.retyped],
            "renamed": [{"found": f, "contract": c} for f, c in self.renamed],
        }

    def describe(self) -> str:
        parts = (
            [f"{len(self.added)} new column(s) at {', '.join(self.added)}"] if self.added else []
        )
        parts += [f"missing column(s) {list(self.missing)}"] if self.missing else []
        parts += [f"{c!r} is {f}, the contract says {t}" for c, f, t in self.retyped]
        return "; ".join(parts)


@dataclass(frozen=True)
class ContractPlan:
    """Where each output column comes from, and what the drift policy accepted."""

    dataset: DatasetSpec
    sources: dict[str, str | None]  # contract column -> found column (None: filled with nulls)
    extras: tuple[str, ...]  # found columns outside the contract, kept as text
    drift: Drift
    schema: pa.Schema = field(repr=False)


def plan_columns(found: pa.Schema, dataset: DatasetSpec, name: str) -> ContractPlan:
    """Match a file's columns to the contract under its drift policy (IngestRejected if not)."""
    declared = [c.name for c in dataset.columns]
    dupes = [n for n in found.names if found.names.count(n) > 1]
    if dupes:
        column = column_label(found.names, dupes[0], declared)
        raise IngestRejected(
            f"{name}: column {column} appears more than once in the header",
            file=name,
            column=column,
        )
    sources, renamed = _match_names(found.names, declared)
    used = {s for s in sources.values() if s is not None}
    extras = tuple(n for n in found.names if n not in used)
    drift = Drift(
        added=tuple(column_label(found.names, n) for n in extras),
        missing=tuple(c for c, s in sources.items() if s is None),
        retyped=tuple(_retyped(found, dataset, sources)),
        renamed=tuple(renamed),
    )
    _apply_policy(drift, dataset, name)
    # Staged data may hold nulls where the contract forbids them: completeness is the quality
    # suite's to measure and judge (ExpectColumnValuesToNotBeNull), not a parse error.
    schema = pa.schema([f.with_nullable(True) for f in contract_schema(dataset)])
    for extra in extras:
        schema = schema.append(pa.field(extra, pa.string()))
    return ContractPlan(dataset, sources, extras, drift, schema)


def _match_names(found: Sequence[str], wanted: Sequence[str]) -> tuple[dict[str, str | None], list]:
    exact = set(found)
    folded: dict[str, str] = {}
    for n in found:
        folded.setdefault(n.strip().casefold(), n)
    sources: dict[str, str | None] = {}
    renamed = []
    for w in wanted:
        if w in exact:
            sources[w] = w
        elif (alt := folded.get(w.strip().casefold())) is not None and alt not in wanted:
            sources[w] = alt
            renamed.append((alt, w))
        else:
            sources[w] = None
    return sources, renamed


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_null(dtype):
        return "string"
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "float"
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    return str(dtype)


def _retyped(found: pa.Schema, dataset: DatasetSpec, sources: dict[str, str | None]) -> list:
    out = []
    for col in dataset.columns:
        src = sources[col.name]
        if src is not None:
            kind = _kind(found.field(src).type)
            if kind != "string" and kind not in _COMPATIBLE[col.type]:
                out.append((col.name, kind, col.type))
    return out


def _apply_policy(drift: Drift, dataset: DatasetSpec, name: str) -> None:
    policy = dataset.schema_drift
    refused = Drift(
        added=drift.added if policy == "reject" else (),
        missing=tuple(
            m for m in drift.missing if policy != "all" or not dataset.column(m).nullable
        ),
        retyped=drift.retyped if policy != "all" else (),
    )
    if refused:
        column = (refused.missing or refused.added or tuple(r[0] for r in refused.retyped))[0]
        raise IngestRejected(
            f"{name}: schema drift not accepted by policy {policy!r}: {refused.describe()}",
            file=name,
            column=column,
            drift=drift.to_json(),
        )


def coerce_batch(
    batch: pa.RecordBatch, plan: ContractPlan, name: str, offset: int
) -> pa.RecordBatch:
    """One batch in the contract's types; `offset` is the number of data rows before it."""
    nulls = plan.dataset.null_values
    arrays = []
    for col in plan.dataset.columns:
        src = plan.sources[col.name]
        if src is None:
            arrays.append(pa.nulls(batch.num_rows, ARROW_TYPES[col.type]))
            continue
        arrays.append(coerce_column(_nulled(batch.column(src), nulls), col, name, offset))
    for extra in plan.extras:
        try:
            arrays.append(_as_text(_nulled(batch.column(extra), nulls)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            column = column_label(batch.schema.names, extra)
            raise IngestRejected(
                f"{name}: new column {column} cannot be kept as text ({batch.column(extra).type})",
                file=name,
                column=column,
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=plan.schema)


def _nulled(values: pa.Array, null_values: list[str]) -> pa.Array:
    if not null_values or not pa.types.is_string(values.type):
        return values
    hit = pc.is_in(pc.utf8_trim_whitespace(values), value_set=pa.array(null_values))
    return pc.if_else(hit, pa.scalar(None, values.type), values)


def _as_text(values: pa.Array) -> pa.Array:
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def coerce_column(values: pa.Array, col: ColumnSpec, name: str, offset: int) -> pa.Array:
    """A column in its contract type, or IngestRejected naming the first bad data row."""
    if values.type == ARROW_TYPES[col.type]:
        return values
    try:
        return _convert(values, col)
    except _FAILURES:
        row = _first_bad_row(values, col)
        where = f"data row {offset + row + 1}" if row is not None else "some row"
        layouts = f" in layout(s) {col.formats}" if col.formats else ""
        raise IngestRejected(
            f"{name}: column {col.name!r}, {where}: value does not convert to {col.type}{layouts}",
            file=name,
            column=col.name,
            row=None if row is None else offset + row + 1,
        ) from None


class _BadValue(Exception):
    """A value matched none of a column's words or layouts (internal: becomes IngestRejected)."""


_FAILURES = (pa.ArrowInvalid, pa.ArrowNotImplementedError, _BadValue)


def _convert(values: pa.Array, col: ColumnSpec) -> pa.Array:
    target = ARROW_TYPES[col.type]
    text = pa.types.is_string(values.type)
    source = pc.utf8_trim_whitespace(values) if text and col.type != "string" else values
    if text and col.type == "bool":
        return _parse_bool(source, col)
    if text and col.formats:
        return pc.cast(_iso_text(source, col), target)
    return pc.cast(source, target)


def _parse_bool(values: pa.Array, col: ColumnSpec) -> pa.Array:
    lower = pc.utf8_lower(values)
    trues = pa.array([w.casefold() for w in col.true_values] or list(TRUE_WORDS))
    falses = pa.array([w.casefold() for w in col.false_values] or list(FALSE_WORDS))
    result = pc.if_else(
        pc.is_in(lower, value_set=trues),
        True,
        pc.if_else(pc.is_in(lower, value_set=falses), False, pa.scalar(None, pa.bool_())),
    )
    if result.null_count != values.null_count:
        raise _BadValue
    return result


def _iso_text(values: pa.Array, col: ColumnSpec) -> pa.Array:
    """Rewrite values in any of the column's layouts as ISO 8601 text (strict parse follows)."""
    candidates = [_layout_to_iso(values, layout, col.type) for layout in col.formats]
    iso = candidates[0] if len(candidates) == 1 else pc.coalesce(*candidates)
    if iso.null_count != values.null_count:
        raise _BadValue
    return iso


def _layout_to_iso(values: pa.Array, layout: str, column_type: str) -> pa.Array:
    parts = pc.extract_regex(values, _layout_regex(layout))
    fields = {f: pc.struct_field(parts, f) for f in _layout_fields(layout)}

    def two(f: str) -> pa.Array:
        return pc.utf8_lpad(fields[f], 2, "0") if f in fields else pa.scalar("00")

    date = pc.binary_join_element_wise(fields["Y"], two("m"), two("d"), "-")
    if column_type == "date":
        return date
    clock = pc.binary_join_element_wise(two("H"), two("M"), two("S"), ":")
    return pc.binary_join_element_wise(date, clock, "T")


def _layout_fields(layout: str) -> list[str]:
    return [_GROUPS[d][0] for d in re.findall(r"%.", layout) if d in _GROUPS]


def _layout_regex(layout: str) -> str:
    out = []
    for piece in re.split(r"(%.)", layout):
        if piece in _GROUPS:
            group, pattern = _GROUPS[piece]
            out.append(f"(?P<{group}>{pattern})")
        else:
            out.append(re.escape(piece.replace("%%", "%")))
    return "^" + "".join(out) + "$"


def _first_bad_row(values: pa.Array, col: ColumnSpec) -> int | None:
    """Index of the first value that does not convert (only on the error path)."""
    for i in range(len(values)):
        one = values.slice(i, 1)
        if one.null_count:
            continue
        try:
            _convert(one, col)
        except _FAILURES:
            return i
    return None

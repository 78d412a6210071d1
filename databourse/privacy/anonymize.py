"""Per-column anonymization of a table by a product's rules: keep, drop, pseudonymize, generalize.

Each rule's transform has its own module: pseudonyms and noise in `databourse.privacy.pseudonyms`;
bands, dates, prefixes, rounding, top/bottom coding, masks in `databourse.privacy.generalization`.
Here, the whole table: `hierarchy` with a `level` maps values to that level of an ARX hierarchy
(without a level the column is left for the privacy-model search, see `databourse.privacy.lattice`);
a top/bottom coded output field is labelled with the bounds in its Arrow metadata
(`databourse.top`, `databourse.bottom`), which Parquet keeps; `embedded: redact` on a text column
replaces the identifiers inside its (kept, masked or generalized) text by typed placeholders such as
`<CN_RESIDENT_ID>` (`databourse.pii.text_spans`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

import pyarrow as pa

from databourse.config import ColumnRule, ProductSpec
from databourse.errors import ConfigError, IngestRejected
from databourse.pii.text_spans import redact_embedded
from databourse.privacy.generalization import generalize, mask
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.pseudonyms import Keys, add_noise, key_for, pseudonymize

log = logging.getLogger(__name__)


def source_columns(product: ProductSpec, outputs: Collection[str] | None = None) -> list[str]:
    """The source columns the rules read to make `outputs` (all output columns when None)."""
    return [
        name
        for name, rule in product.columns.items()
        if rule.action != "drop" and (outputs is None or (rule.rename or name) in outputs)
    ]


def apply_rules(
    table: pa.Table | pa.RecordBatch,
    product: ProductSpec,
    key: Keys | None,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    *,
    only: Collection[str] | None = None,
    offset: int = 0,
) -> pa.Table:
    """The product's columns in config order: dropped and unlisted ones removed, renames applied.

    `hierarchies` (by output column, see `hierarchy.product_hierarchies`) is needed by rules with
    a hierarchy and a level; `key` by pseudonymize and noise rules. `only` restricts the output
    to these output columns (their source columns are all the table needs); `offset` is the
    dataset position of the table's first row (noise is drawn by position)."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    rules = {
        name: rule
        for name, rule in product.columns.items()
        if only is None or (rule.action != "drop" and (rule.rename or name) in only)
    }
    missing = [name for name in rules if name not in table.column_names]
    if missing:
        raise IngestRejected(
            f"product {product.id!r}: column(s) {missing} listed in its rules are missing from "
            "the table; check the source dataset's schema",
            product=product.id,
            column=missing[0],
            columns=missing,
        )
    if key is None and any(r.action in ("pseudonymize", "noise") for r in rules.values()):
        raise ValueError(
            f"product {product.id!r} pseudonymizes or noises columns but no key was given"
        )
    outputs = product.output_columns
    if len(set(outputs)) != len(outputs):
        dupes = sorted({n for n in outputs if outputs.count(n) > 1})
        raise ConfigError([f"product {product.id}: columns: duplicate output column names {dupes}"])
    arrays: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for name, rule in rules.items():
        if rule.action == "drop":
            continue
        array = _apply_rule(table.column(name), name, rule, key, hierarchies or {}, offset)
        if rule.embedded == "redact":
            array = _redacted(array, name)
        arrays.append(array)
        fields.append(pa.field(rule.rename or name, array.type, metadata=_labels(rule)))
    log.debug(
        "product %s: anonymized %d rows, %d of %d listed columns kept, %d unlisted dropped",
        product.id,
        table.num_rows,
        len(fields),
        len(product.columns),
        len(set(table.column_names) - set(product.columns)),
    )
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _redacted(array: pa.Array | pa.ChunkedArray, name: str) -> pa.Array:
    """The rule's output with the identifiers inside its text replaced (`embedded: redact`)."""
    try:
        return redact_embedded(array)
    except TypeError as exc:
        raise IngestRejected(
            f"column {name!r} has type {array.type}, which `embedded: redact` cannot handle",
            column=name,
            type=str(array.type),
        ) from exc


def _labels(rule: ColumnRule) -> dict[bytes, bytes] | None:
    """Field metadata saying a column is top/bottom coded, and at which bounds."""
    labels = {
        f"databourse.{n}".encode(): repr(getattr(rule, n)).encode()
        for n in ("top", "bottom")
        if getattr(rule, n) is not None
    }
    return labels or None


def _apply_rule(
    column: pa.ChunkedArray,
    name: str,
    rule: ColumnRule,
    key: Keys | None,
    hierarchies: Mapping[str, Hierarchy],
    offset: int = 0,
) -> pa.Array | pa.ChunkedArray:
    """One column through its rule; a column of the wrong type is a broken contract."""
    if rule.action == "keep" or (rule.hierarchy is not None and rule.level is None):
        return column  # a hierarchy without level is generalized by the search
    if rule.action == "pseudonymize":
        return pseudonymize(column, key_for(key, rule.key_version))
    out = rule.rename or name
    if rule.hierarchy is not None and rule.level is not None:
        if out not in hierarchies:
            raise ValueError(f"column {out!r} has a hierarchy rule but no hierarchy was loaded")
        return hierarchies[out].generalize(column, rule.level)
    try:
        if rule.mask is not None:
            return mask(column, rule.mask.keep_last)
        if rule.noise is not None:
            return add_noise(column, rule.noise.scale, key_for(key, None), out, offset)
        return generalize(column, rule)
    except TypeError as exc:
        raise IngestRejected(
            f"column {name!r} has type {column.type}, which its {rule.action} rule cannot handle",
            column=name,
            type=str(column.type),
        ) from exc

"""Per-column anonymization of a table by a product's rules: keep, drop, pseudonymize, generalize.

Pseudonyms are keyed (HMAC-SHA256 with a secret key, hex digest), never plain hashes: identity
numbers and phone numbers have so little entropy that a plain hash is reversed by enumeration.
Before hashing, a value is normalized: its text (integers are cast to string first) is stripped of
surrounding whitespace and its ASCII letters are upper-cased, so `'g1234567x'` and `'G1234567X '`
give one pseudonym. Non-ASCII letters are left as they are. A blank value is hashed like any other
text; a null stays null.

Generalization works on Arrow arrays with `pyarrow.compute`: numeric bands become interval labels
(`"[20,30)"`), dates are truncated (`day` keeps a date, the others become labels such as
`"2026-03"`, `"2026-Q1"`, `"2026"`, `"1980s"`), strings keep a prefix and mask the rest with `*`.
Zoned timestamps are truncated in their own time zone (a reading at 20:00 UTC on 31 March in
Asia/Shanghai belongs to 1 April). NaN and infinite numbers have no band and become null.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ColumnRule, ProductSpec
from databourse.errors import ConfigError, IngestRejected

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 32
_FINGERPRINT_MESSAGE = b"databourse/pseudonym-key-fingerprint/v1"

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray


# ---------------------------------------------------------------- keys and pseudonyms
def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"a pseudonym key must be bytes, not {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"pseudonym key too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}; "
            "a keyed pseudonym with a weak key is as reversible as a plain hash"
        )


def key_fingerprint(key: bytes) -> str:
    """Short public id of a key (sha256 of an HMAC of a constant), safe to record in manifests."""
    _check_key(key)
    mac = hmac.new(bytes(key), _FINGERPRINT_MESSAGE, hashlib.sha256).digest()
    return hashlib.sha256(mac).hexdigest()[:16]


def _as_array(values: ArrayLike) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values


def _normalize_text(values: pa.Array) -> pa.Array:
    """Text of each value, stripped and with ASCII letters upper-cased (see module docstring)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return pc.ascii_upper(pc.utf8_trim_whitespace(values))


def pseudonymize(values: ArrayLike, key: bytes) -> pa.Array:
    """Keyed HMAC-SHA256 hex digest of each normalized value; deterministic per key, nulls kept."""
    _check_key(key)
    text = _normalize_text(_as_array(values))
    # Hash each distinct value once, then spread the digests back with a take.
    encoded = pc.dictionary_encode(text)
    distinct = encoded.dictionary.to_pylist()
    keyed = hmac.new(bytes(key), digestmod=hashlib.sha256)  # copying skips re-keying per value
    digests = pa.array([_digest(keyed.copy(), s) for s in distinct], type=pa.string())
    log.debug("pseudonymized %d values (%d distinct)", len(text), len(distinct))
    return digests.take(encoded.indices)


def _digest(keyed: hmac.HMAC, text: str) -> str:
    keyed.update(text.encode("utf-8"))
    return keyed.hexdigest()


# ---------------------------------------------------------------- generalization
def generalize(values: ArrayLike, rule: ColumnRule) -> pa.Array:
    """Generalize values by the rule's one method: numeric `band`, `date` truncation or `prefix`."""
    array = _as_array(values)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if rule.band is not None:
        return _band(array, rule.band)
    if rule.date is not None:
        return _truncate_date(array, rule.date)
    if rule.prefix is not None:
        return _mask_prefix(array, rule.prefix)
    raise ValueError("generalize needs a rule with one of band, date, prefix")


def _floor_multiple(values: pa.Array, width: int) -> pa.Array:
    """floor(v / width) * width on integers, exact (no float round trip), negatives included."""
    truncated = pc.multiply_checked(pc.divide(values, width), width)  # int divide truncates to 0
    return pc.if_else(
        pc.greater(truncated, values), pc.subtract_checked(truncated, width), truncated
    )


def _band(values: pa.Array, width: float) -> pa.Array:
    """Label of the half-open interval `[lower,upper)` of the given width holding each value."""
    if pa.types.is_integer(values.type) and float(width).is_integer():
        step = int(width)
        lower = _floor_multiple(pc.cast(values, pa.int64()), step)
        upper = pc.add_checked(lower, step)
    elif pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        floats = pc.cast(values, pa.float64())
        floats = pc.if_else(pc.is_finite(floats), floats, pa.scalar(None, pa.float64()))
        # Round off float noise (3 * 0.1 = 0.30000000000000004) at a precision below the width.
        digits = max(0, -math.floor(math.log10(width))) + 6
        lower = pc.round(pc.multiply(pc.floor(pc.divide(floats, width)), width), ndigits=digits)
        # v / w may land just below an integer (0.3 / 0.1 = 2.9999999999999996): move up a band.
        upper = pc.round(pc.add(lower, width), ndigits=digits)
        lower = pc.if_else(pc.greater_equal(floats, upper), upper, lower)
        upper = pc.round(pc.add(lower, width), ndigits=digits)
    else:
        raise TypeError(f"band needs a numeric column, not {values.type}")
    # A float 20.0 is printed "20" by Arrow's cast, so integral bounds never show ".0".
    return pc.binary_join_element_wise(
        "[", pc.cast(lower, pa.string()), ",", pc.cast(upper, pa.string()), ")", ""
    )


def _as_local_date(values: pa.Array) -> pa.Array:
    """A date32 array: dates as they are, timestamps truncated to the day in their own zone."""
    if pa.types.is_date32(values.type):
        return values
    if pa.types.is_date64(values.type):
        return pc.cast(values, pa.date32())
    if pa.types.is_timestamp(values.type):
        if values.type.tz is not None:
            values = pc.local_timestamp(values)
        return pc.cast(values, pa.date32())
    raise TypeError(f"date truncation needs a date or timestamp column, not {values.type}")


def _truncate_date(values: pa.Array, unit: str) -> pa.Array:
    """Truncate to day (date32) or label by month, quarter, year or decade (strings)."""
    days = _as_local_date(values)
    if unit == "day":
        return days
    year = pc.cast(pc.year(days), pa.string())
    if unit == "month":
        month = pc.utf8_lpad(pc.cast(pc.month(days), pa.string()), width=2, padding="0")
        return pc.binary_join_element_wise(year, month, "-")
    if unit == "quarter":
        quarter = pc.cast(pc.quarter(days), pa.string())
        return pc.binary_join_element_wise(year, quarter, "-Q")
    if unit == "year":
        return year
    if unit == "decade":
        decade = _floor_multiple(pc.year(days), 10)
        return pc.binary_join_element_wise(pc.cast(decade, pa.string()), "s", "")
    raise ValueError(f"unknown date truncation {unit!r}")


def _mask_prefix(values: pa.Array, keep: int) -> pa.Array:
    """First `keep` characters, then one '*' per remaining character."""
    if pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    if not pa.types.is_string(values.type):
        raise TypeError(f"prefix needs a string column, not {values.type}")
    head = pc.utf8_slice_codeunits(values, start=0, stop=keep)
    hidden = pc.max_element_wise(pc.subtract(pc.utf8_length(values), keep), 0)
    stars = pc.binary_repeat(pa.scalar("*", pa.string()), hidden)
    return pc.binary_join_element_wise(head, stars, "")


# ---------------------------------------------------------------- whole table
def apply_rules(
    table: pa.Table | pa.RecordBatch, product: ProductSpec, key: bytes | None
) -> pa.Table:
    """The product's columns in config order: dropped and unlisted ones removed, renames applied."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    missing = [name for name in product.columns if name not in table.column_names]
    if missing:
        raise IngestRejected(
            f"product {product.id!r}: column(s) {missing} listed in its rules are missing from "
            "the table; check the source dataset's schema",
            product=product.id,
            column=missing[0],
            columns=missing,
        )
    if key is None and any(r.action == "pseudonymize" for r in product.columns.values()):
        raise ValueError(f"product {product.id!r} pseudonymizes columns but no key was given")
    outputs = product.output_columns
    if len(set(outputs)) != len(outputs):
        dupes = sorted({n for n in outputs if outputs.count(n) > 1})
        raise ConfigError([f"product {product.id}: columns: duplicate output column names {dupes}"])
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for name, rule in product.columns.items():
        if rule.action == "drop":
            continue
        arrays.append(_apply_rule(table.column(name), name, rule, key))
    log.info(
        "product %s: anonymized %d rows, %d of %d listed columns kept, %d unlisted dropped",
        product.id,
        table.num_rows,
        len(outputs),
        len(product.columns),
        len(set(table.column_names) - set(product.columns)),
    )
    return pa.Table.from_arrays(arrays, names=outputs)


def _apply_rule(
    column: pa.ChunkedArray, name: str, rule: ColumnRule, key: bytes | None
) -> pa.Array | pa.ChunkedArray:
    """One column through its rule; a column of the wrong type is a broken contract."""
    if rule.action == "keep":
        return column
    if rule.action == "pseudonymize":
        assert key is not None  # checked by apply_rules before any work
        return pseudonymize(column, key)
    try:
        return generalize(column, rule)
    except TypeError as exc:
        raise IngestRejected(
            f"column {name!r} has type {column.type}, which its generalize rule cannot handle",
            column=name,
            type=str(column.type),
        ) from exc

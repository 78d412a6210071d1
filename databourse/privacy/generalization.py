"""Generalization of Arrow arrays: numeric bands, date truncation, prefixes, rounding, masks.

Generalization works on Arrow arrays with `pyarrow.compute`: numeric bands become interval labels
(`"[20,30)"`), dates are truncated (`day` keeps a date, the others become labels such as
`"2026-03"`, `"2026-Q1"`, `"2026"`, `"1980s"`), strings keep a prefix and mask the rest with `*`.
Zoned timestamps are truncated in their own time zone (a reading at 20:00 UTC on 31 March in
Asia/Shanghai belongs to 1 April). NaN and infinite numbers have no band and become null.

`round` keeps n decimals of a float; `top`/`bottom` code values beyond a bound to the bound;
`mask` replaces every letter and digit but the last n by `*`, separators kept.
"""

from __future__ import annotations

import math
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ColumnRule

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray


def as_array(values: ArrayLike) -> pa.Array:
    """One Arrow array: a chunked array's chunks combined."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values


def generalize(values: ArrayLike, rule: ColumnRule) -> pa.Array:
    """Generalize values by the rule's one method: numeric `band`, `date` truncation or `prefix`."""
    array = as_array(values)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if rule.band is not None:
        return _band(array, rule.band)
    if rule.date is not None:
        return _truncate_date(array, rule.date)
    if rule.prefix is not None:
        return _mask_prefix(array, rule.prefix)
    if rule.round is not None:
        if not pa.types.is_floating(array.type):
            raise TypeError(f"round needs a float column, not {array.type}")
        return pc.round(array, ndigits=rule.round)
    if rule.top is not None or rule.bottom is not None:
        return _code_extremes(array, rule.top, rule.bottom)
    raise ValueError("generalize needs a rule with one of band, date, prefix, round, top/bottom")


def _code_extremes(values: pa.Array, top: float | None, bottom: float | None) -> pa.Array:
    """Top and bottom coding: values beyond a bound become the bound (type kept)."""
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise TypeError(f"top/bottom coding needs a numeric column, not {values.type}")
    if top is not None:
        values = pc.min_element_wise(values, pa.scalar(top).cast(values.type), skip_nulls=False)
    if bottom is not None:
        values = pc.max_element_wise(values, pa.scalar(bottom).cast(values.type), skip_nulls=False)
    return values


def mask(values: ArrayLike, keep_last: int) -> pa.Array:
    """Each letter and digit but the last `keep_last` becomes '*'; separators stay."""
    array = as_array(values)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise TypeError(f"mask needs a string column, not {array.type}")
    encoded = pc.dictionary_encode(array)
    masked = [_mask_one(v, keep_last) for v in encoded.dictionary.to_pylist()]
    return pa.array(masked, pa.string()).take(encoded.indices)


def _mask_one(text: str, keep_last: int) -> str:
    hide = sum(ch.isalnum() for ch in text) - keep_last
    out = []
    for ch in text:
        if ch.isalnum() and hide > 0:
            out.append("*")
            hide -= 1
        else:
            out.append(ch)
    return "".join(out)


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

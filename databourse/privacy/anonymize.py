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

Further rules: `hierarchy` with a `level` maps values to that level of an ARX hierarchy (without a
level the column is left for the privacy-model search, see `databourse.privacy.lattice`); `round`
keeps n decimals of a float; `top`/`bottom` code values beyond a bound to the bound, and the output
field is labelled with the bounds in its Arrow metadata (`databourse.top`, `databourse.bottom`),
which Parquet keeps; `mask` replaces every letter and digit but the last n by `*`, separators kept.
`embedded: redact` on a text column replaces the identifiers inside its (kept, masked or
generalized) text by typed placeholders such as `<CN_RESIDENT_ID>` (`databourse.pii.text_spans`).

Key rotation: `key` may be one key (bytes) or a mapping of key versions to keys; a pseudonymize
rule naming `key_version` uses that entry, the others use the entry "default" (or the single
key). `key_fingerprints` gives the public id of the key each column used, for the manifest, so a
consumer knows which pseudonyms are comparable across versions.

Noise: `noise: {scale: b}` adds Laplace(0, b) noise to a numeric column (output float64). The
generator is seeded by HMAC-SHA256(default key, "databourse/noise/v1/" + column name) and the
n-th draw goes to the record at position n of the staged dataset (its stable row key: a staged
Parquet is immutable), so a rebuild adds the same noise however the rows are partitioned
(`offset` = position of a partition's first row; the generator is advanced, not replayed), and
nobody without the key can regenerate (and subtract) it. Noise therefore needs the key like
pseudonyms do.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Collection, Mapping
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ColumnRule, ProductSpec
from databourse.errors import ConfigError, IngestRejected
from databourse.pii.text_spans import redact_embedded
from databourse.privacy.hierarchy import Hierarchy

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 32
_FINGERPRINT_MESSAGE = b"databourse/pseudonym-key-fingerprint/v1"

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray
Keys: TypeAlias = bytes | Mapping[str, bytes]
DEFAULT_KEY = "default"
_NOISE_MESSAGE = b"databourse/noise/v1/"


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
    array = _as_array(values)
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


def add_noise(
    values: ArrayLike, scale: float, key: bytes, column: str, offset: int = 0
) -> pa.Array:
    """Laplace(0, scale) noise added to each value, seeded by the key and column (floats out).

    `offset` is the dataset position of the first value: draw n goes to position n."""
    _check_key(key)
    array = _as_array(values)
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        raise TypeError(f"noise needs a numeric column, not {array.type}")
    seed = hmac.new(bytes(key), _NOISE_MESSAGE + column.encode("utf-8"), hashlib.sha256).digest()
    # default_rng(seed) is Generator(PCG64(seed)); one Laplace draw takes one 64-bit step, so
    # advancing by `offset` gives exactly the draws a whole-table call makes from that row on.
    bits = np.random.PCG64(int.from_bytes(seed[:16], "big"))
    if offset:
        bits.advance(offset)
    noise = pa.array(np.random.Generator(bits).laplace(0.0, scale, len(array)))
    return pc.add(pc.cast(array, pa.float64()), noise)


def key_for(key: Keys | None, version: str | None) -> bytes:
    """The key of a rule: its key_version's entry, else the default (or only) key."""
    if key is None:
        raise ValueError("no pseudonym key was given")
    if isinstance(key, bytes | bytearray):
        if version is not None:
            raise ValueError(f"key_version {version!r} needs a mapping of key versions to keys")
        return bytes(key)
    name = version or DEFAULT_KEY
    if name not in key:
        raise ValueError(f"no key for key version {name!r}; known: {sorted(key)}")
    return key[name]


def key_fingerprints(product: ProductSpec, key: Keys | None) -> dict[str, dict[str, str]]:
    """For each keyed output column: its key version and that key's public fingerprint."""
    out = {}
    for name, rule in product.columns.items():
        if rule.action in ("pseudonymize", "noise"):
            version = rule.key_version or DEFAULT_KEY
            out[rule.rename or name] = {
                "key_version": version,
                "key_id": key_fingerprint(key_for(key, rule.key_version)),
            }
    return out


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

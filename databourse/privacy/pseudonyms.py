"""Keyed pseudonyms and noise: HMAC-SHA256 of normalized values, key versions, fingerprints.

Pseudonyms are keyed (HMAC-SHA256 with a secret key, hex digest), never plain hashes: identity
numbers and phone numbers have so little entropy that a plain hash is reversed by enumeration.
Before hashing, a value is normalized: its text (integers are cast to string first) is stripped of
surrounding whitespace and its ASCII letters are upper-cased, so `'g1234567x'` and `'G1234567X '`
give one pseudonym. Non-ASCII letters are left as they are. A blank value is hashed like any other
text; a null stays null.

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
from collections.abc import Mapping
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ProductSpec
from databourse.privacy.generalization import ArrayLike, as_array

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 32
_FINGERPRINT_MESSAGE = b"databourse/pseudonym-key-fingerprint/v1"

Keys: TypeAlias = bytes | Mapping[str, bytes]
DEFAULT_KEY = "default"
_NOISE_MESSAGE = b"databourse/noise/v1/"


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
    text = _normalize_text(as_array(values))
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


def add_noise(
    values: ArrayLike, scale: float, key: bytes, column: str, offset: int = 0
) -> pa.Array:
    """Laplace(0, scale) noise added to each value, seeded by the key and column (floats out).

    `offset` is the dataset position of the first value: draw n goes to position n."""
    _check_key(key)
    array = as_array(values)
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


def needs_key(product: ProductSpec) -> bool:
    """Whether building the product needs the pseudonym key: a keyed rule, or noise."""
    keyed = any(r.action in ("pseudonymize", "noise") for r in product.columns.values())
    return keyed or bool(product.aggregate and product.aggregate.epsilon is not None)

"""Payment card numbers: the issuers' ranges and lengths (ISO/IEC 7812) and the Luhn check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.digits import Mask, luhn, matrix

# Card issuer identification number ranges (ISO/IEC 7812 as the networks publish them): (first
# and last prefix, inclusive, of equal width; allowed lengths). A number is a card when a range
# holds its prefix, its length is allowed and its Luhn check holds.
# 18 digits is a CN resident id's length: of the ranges issued at 16-19 digits, only UnionPay 62
# is read at 18 (a wrong-check id of province 36, 50, 63 or 64 must not become a Diners,
# Maestro, InterPayment or Discover card).
_UP_TO_19 = frozenset({16, 17, 19})
_CARD_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa (Electron, Dankort co-brand inside)
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (300, 305, frozenset({14}) | _UP_TO_19),  # Diners Club International
    (3095, 3095, frozenset({14}) | _UP_TO_19),
    (36, 36, frozenset({14}) | _UP_TO_19),
    (38, 39, frozenset({14}) | _UP_TO_19),
    (6011, 6011, _UP_TO_19),  # Discover
    (644, 649, _UP_TO_19),
    (65, 65, _UP_TO_19),
    (35, 35, _UP_TO_19),  # JCB: 3528-3589 assigned, 353 and 356 RuPay co-brands; its block
    (2131, 2131, frozenset({15})),  # JCB's 15-digit cards (its 1800 ones are UATP's range)
    (62, 62, frozenset(range(16, 20))),  # UnionPay (often 19 digits)
    (81, 81, frozenset({16, 19})),  # UnionPay 81
    (5019, 5019, frozenset({16})),  # Dankort
    (2200, 2204, _UP_TO_19),  # Mir
    # Maestro, 12-19 digits: Mastercard's blocks for it, 50 and 56-58 (5018, 5020, 5038, 5893
    # today), and its 6 ranges (6x holds other networks and Indonesia's NIK provinces 61-65)
    (50, 50, frozenset(range(12, 18)) | {19}),
    (56, 58, frozenset(range(12, 18)) | {19}),
    (6304, 6304, frozenset(range(12, 18)) | {19}),
    (6759, 6759, frozenset(range(12, 18)) | {19}),
    (6761, 6763, frozenset(range(12, 18)) | {19}),
    (60, 60, frozenset({16})),  # RuPay
    (508, 508, frozenset({16})),
    (636, 636, _UP_TO_19),  # InterPayment
    (506099, 506198, frozenset({16, 19})),  # Verve
    (507865, 507964, frozenset({16, 19})),
    (650002, 650027, frozenset({16, 19})),
    (9792, 9792, frozenset({16})),  # Troy
    (1, 1, frozenset({15})),  # UATP
)


def card_mask(arr: pa.Array) -> Mask:
    """Which card-shaped candidates are card numbers: an issuer's range, its lengths, Luhn."""
    norm = pc.replace_substring_regex(arr, r"[ -]", "")
    lengths = pc.utf8_length(norm).to_numpy()
    head = pc.utf8_slice_codeunits(norm, 0, 6)
    prefix = pc.cast(pc.if_else(pc.equal(head, ""), "0", head), pa.int64()).to_numpy(False)
    head_len = np.minimum(lengths, 6)
    out = np.zeros(len(norm), dtype=bool)
    for low, high, allowed in _CARD_RANGES:
        width = len(str(low))
        lead = prefix // 10 ** np.maximum(head_len - width, 0)
        out |= (lead >= low) & (lead <= high) & np.isin(lengths, list(allowed))
    for width in np.unique(lengths[out]):
        rows = np.flatnonzero(out & (lengths == width))
        out[rows] = luhn(matrix(norm.take(pa.array(rows)), int(width)).astype(np.int64) - 48)
    return out

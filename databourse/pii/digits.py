"""Digit matrices and check-digit schemes, vectorized over many equal-length candidates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Mask = np.ndarray  # one bool per candidate


def matrix(arr: pa.Array, width: int) -> np.ndarray:
    """View equal-length ASCII strings as an (n, width) uint8 matrix."""
    fixed = pc.cast(arr.cast(pa.large_binary()), pa.binary(width))
    buf = np.frombuffer(fixed.buffers()[1], np.uint8)
    return buf[fixed.offset * width : (fixed.offset + len(fixed)) * width].reshape(-1, width)


def number(digits: np.ndarray) -> np.ndarray:
    """Decimal value of each row of a digit matrix."""
    weights = 10 ** np.arange(digits.shape[1] - 1, -1, -1)
    return digits.astype(np.int64) @ weights


def real_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> Mask:
    """Which (year, month, day) triples are calendar dates between 1900-01-01 and today."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    in_month = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    today = dt.date.today()
    not_future = (
        year * 10000 + month * 100 + day <= today.year * 10000 + today.month * 100 + today.day
    )
    return (
        (year >= 1900) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= in_month) & not_future
    )


def luhn(digits: np.ndarray) -> Mask:
    """Luhn check of each row of a digit matrix (check digit last)."""
    rev = digits[:, ::-1].astype(np.int64)
    doubled = rev[:, 1::2] * 2
    doubled -= 9 * (doubled > 9)
    return (rev[:, 0::2].sum(axis=1) + doubled.sum(axis=1)) % 10 == 0


# Verhoeff's dihedral group D5: the multiplication table and the position permutation.
_D5 = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]
)
_PERM = np.zeros((8, 10), dtype=np.int64)
_PERM[0] = np.arange(10)
_PERM[1] = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]
for _i in range(2, 8):
    _PERM[_i] = _PERM[1][_PERM[_i - 1]]


def verhoeff(digits: np.ndarray) -> Mask:
    """Verhoeff check of each row of a digit matrix (check digit last)."""
    rev = digits[:, ::-1].astype(np.int64)
    check = np.zeros(len(rev), dtype=np.int64)
    for i in range(rev.shape[1]):
        check = _D5[check, _PERM[i % 8][rev[:, i]]]
    return check == 0

"""Columns of serial numbers (order, invoice, tracking numbers) whose digits pass as phones.

Eleven digits from 13x-19x are valid CN mobile numbers three times in four at random, and a
counter started at a valid prefix stays valid: an order-number column then reads as phones.
Two signs say a column is not phones, each enough alone:
- a sequence: in row order, the numbers mostly rise (`RISING_SHARE` of the steps) and they are
  dense (`MAX_MEAN_STEP` or less between neighbours on average), or, in any order, they fill
  their range (`MAX_MEAN_GAP`: a counter's numbers shuffled). Real phone numbers are spread
  over billions of numbers: even a sorted list of a million customers' mobiles steps by
  thousands, and a hundred million of them would not fill their range;
- the column's name says order, invoice, SKU, tracking... (and nothing about a phone), and its
  phone-shaped values are valid no more often than random digits are
  (`dirty_columns.PHONE_LOOKALIKE_FLOOR`): a phone column that is named oddly keeps its phones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.dirty_columns import PHONE_LOOKALIKE_FLOOR

RISING_SHARE = 0.95
MAX_MEAN_STEP = 100
MAX_MEAN_GAP = 10
MIN_NUMBERS = 20  # fewer numbers say nothing about a sequence
NUMBER = r"^\d{6,18}$"  # a plain run of digits that fits an int64
ORDER_CUES = re.compile(
    r"(?i)order|invoice|inv_?no|txn|transaction|trx|receipt|ticket|sku|serial|tracking|waybill"
    r"|awb|shipment|consignment|barcode|(?<![a-z])ean(?![a-z])|upc|isbn|voucher|coupon|booking"
    r"|ref(?:erence)?_?(?:no|num|number|id|code)"
    r"|订单|訂單|单号|單號|流水号|流水號|发票|發票|编号|編號|条码|條碼|运单|運單"
    r"|pesanan|invois|resit|주문|송장|注文|伝票|đơn hàng|hóa đơn|mã đơn|ใบสั่ง"
)
PHONE_CUES = re.compile(
    r"(?i)phone|tel|mobile|cell|hp|fax|contact|whatsapp|wechat|msisdn|dial"
    r"|电话|電話|手机|手機|联系|聯絡|聯繫|telefon|nombor|携帯|전화|휴대|연락처|โทร"
    r"|điện thoại|sđt|sdt"
)


@dataclass
class Sequence:
    """Plain numbers of a column in row order: how many, their range, the steps that rise."""

    numbers: int = 0
    low: int = 0
    high: int = 0
    rising: int = 0  # steps from one number to the next that do not fall
    first: int = 0
    last: int = 0

    def add(self, other: Sequence) -> None:
        """`other`, the numbers that come after these in row order, added."""
        if not other.numbers:
            return
        if not self.numbers:
            self.numbers, self.low, self.high = other.numbers, other.low, other.high
            self.rising, self.first, self.last = other.rising, other.first, other.last
            return
        self.rising += other.rising + int(other.first >= self.last)
        self.numbers += other.numbers
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        self.last = other.last

    def is_sequence(self, values: int) -> bool:
        """Whether the numbers are a counter: most of the `values` (non-empty), rising, dense."""
        n = self.numbers
        if n < MIN_NUMBERS or n < 0.6 * values:
            return False
        span = self.high - self.low
        if span <= MAX_MEAN_GAP * (n - 1):
            return True
        return span <= MAX_MEAN_STEP * (n - 1) and self.rising >= RISING_SHARE * (n - 1)


def sequence_of(text: pa.Array) -> Sequence:
    """The plain numbers of a column's values (decimal text, in row order)."""
    plain = pc.fill_null(pc.match_substring_regex(text, NUMBER), False)
    numbers = pc.cast(text.filter(plain), pa.int64()).to_numpy(zero_copy_only=False)
    if len(numbers) == 0:
        return Sequence()
    rising = int(np.count_nonzero(np.diff(numbers) >= 0))
    return Sequence(
        len(numbers), int(numbers.min()), int(numbers.max()), rising, int(numbers[0]),
        int(numbers[-1]),
    )  # fmt: skip


def serial_phones(column: str, phones: tuple[int, int, int], seq: Sequence, values: int) -> bool:
    """Whether a column's phone matches are serial numbers. `phones`: whole matches, bare-digit
    look-alikes valid, look-alikes; `seq`: its plain numbers; `values`: its non-empty values.
    A counter holds no phones, nor a column named for orders whose look-alikes pass no more
    often than random codes do."""
    whole, valid, shaped = phones
    if not whole:
        return False
    if seq.is_sequence(values):
        return True
    return valid < PHONE_LOOKALIKE_FLOOR * shaped and named_serial(column)


def phone_named(column: str) -> bool:
    """Whether a column's name says phone numbers (tel, mobile, 电话, โทร...)."""
    return PHONE_CUES.search(column) is not None


def order_named(column: str) -> bool:
    """Whether a column's name says order, invoice or other serial numbers (phone or not)."""
    return ORDER_CUES.search(column) is not None


def named_serial(column: str) -> bool:
    """Whether a column's name says serial numbers and nothing about a phone."""
    return ORDER_CUES.search(column) is not None and PHONE_CUES.search(column) is None

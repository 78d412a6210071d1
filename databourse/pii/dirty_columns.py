"""Messy columns: a category most non-empty values hold, beside typos, placeholders and strays.

A column is classified when `threshold` (settings.pii_threshold, 0.8) of its values are whole
values of one category. A messy column (a quarter of its values mistyped, cut short, `N/A` or
`000`, numbers of another country) misses that, yet it holds personal data. It is classified too
when its category is above `dirty_threshold` (settings.pii_dirty_threshold, 0.5) of its
non-empty values, in the sample and over all values, and its matches are not chance:
- a category that random look-alikes often pass (a check digit in ten or eleven, a birth date,
  a phone plan: `identifiers.CHANCE_LEVEL`; for phones the look-alikes are bare digit codes)
  counts its look-alike matches only when `lookalike_floor` of its look-alikes are valid, in a
  clean column as in a messy one. Measured on Faker tables (`benchmarks/pii_dirty.py`): random
  digit codes pass an id's checks at 0.08-0.13 of their look-alikes, order numbers 13x-19x pass
  as CN mobiles at 0.69-0.82; real columns with 30% of their values corrupted stay at 0.92 or
  more (ids and phones) because a typo mostly changes a value's shape, and a replaced digit of
  a phone number is still a phone number. Phones in a column named as phones (and not as
  orders) count all the same: Faker's Indian numbers written 0 and 10 digits are 0.82-0.88
  valid, and a phone column of invalid numbers is still one;
- the other rules of a clean column hold (`pii_findings._factor`: names need enough strong
  evidence);
- categories any code of the right shape passes, decided by the column's name or a pattern
  alone (`NOT_MESSY`: bank accounts, birth dates, passports, plates), are classified at
  `threshold` only: 10-19 random digits are a bank account's shape three times in four.
"""

from __future__ import annotations

from collections import Counter

from databourse.pii.identifiers import CHANCE_FLOOR, CHANCE_LEVEL
from databourse.pii.patterns import COLUMN_LEVEL

DIRTY_THRESHOLD = 0.5  # settings.pii_dirty_threshold
# Random digits after a mobile prefix pass as phone numbers far more often than random digits
# pass a check digit: phones need most of their look-alikes valid (0.82 the most seen at random).
PHONE_LOOKALIKE_FLOOR = 0.88
NOT_MESSY = COLUMN_LEVEL | {"LICENSE_PLATE"}


def lookalike_floor(category: str) -> float:
    """Share of a chance-level category's look-alikes that must be valid to count them."""
    return PHONE_LOOKALIKE_FLOOR if category == "PHONE_NUMBER" else CHANCE_FLOOR


def counted(
    category: str, hits: int, alike: Counter[str], shaped: Counter[str], named: bool = False
) -> int:
    """`hits` of `category`, less those among its look-alikes when the look-alikes (`shaped`
    of them, `alike` valid) pass no more often than random values do (`lookalike_floor`).
    Phones in a column `named` as phones all count: a phone column with many invalid numbers
    (a generator's, a careless form's) is still a phone column, and missing it leaks them."""
    if (
        (named and category == "PHONE_NUMBER")
        or category not in CHANCE_LEVEL
        or alike[category] >= lookalike_floor(category) * shaped[category]
    ):
        return hits
    return max(0, hits - alike[category])


def holds(
    category: str, sample: tuple[int, int], total: tuple[int, int], dirty_threshold: float
) -> bool:
    """Whether a messy column holds `category`: (matches `counted`, non-empty values) of the
    sample and of all values are each above `dirty_threshold`."""
    (sample_hits, sample_values), (hits, values) = sample, total
    if category in NOT_MESSY or values == 0 or hits <= dirty_threshold * values:
        return False
    return sample_values == 0 or sample_hits > dirty_threshold * sample_values

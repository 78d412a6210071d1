"""Shared pieces of the demo generators: the k floor, a person record and seeded draws."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

from databourse.errors import DataBourseError

K = 5  # both products ask for k=5; the generators keep every class at least this large


def pool(text: str) -> tuple[str, ...]:
    """The comma-separated items of `text`, stripped."""
    return tuple(part.strip() for part in text.split(","))


@dataclass(frozen=True)
class Person:
    """One generated occupant or customer."""

    name: str
    male: bool
    birth: dt.date
    id_number: str
    phone: str
    email: str = ""  # CN customers only


def random_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    """A uniformly drawn day from 1 January `first_year` to 31 December `last_year`."""
    start = dt.date(first_year, 1, 1)
    return start + dt.timedelta(days=rng.randrange((dt.date(last_year, 12, 31) - start).days + 1))


def unique(used: set[str], draw: Callable[[], str], attempts: int = 1000) -> str:
    """Draw until a value is non-empty and new (draw returns "" for a rejected candidate)."""
    for _ in range(attempts):
        value = draw()
        if value and value not in used:
            used.add(value)
            return value
    raise DataBourseError("could not draw a unique sample value", attempts=attempts)


def valid_phone(text: str, region: str) -> bool:
    """Whether phonenumbers parses `text` (read in `region`) as a valid number."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(text, region)))
    except phonenumbers.NumberParseException:
        return False

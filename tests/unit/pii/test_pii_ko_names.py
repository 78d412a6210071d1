"""Korean names in Hangul (issue 16, part 3): Faker's ko_KR people, read with the surname and
given-name lists of the `name-variants` package (never Faker's), against Korean places,
companies and words that start with a surname syllable."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from faker import Faker

from databourse.pii.categories import classify_array
from databourse.pii.detect import scan_table
from databourse.pii.name_lists import hangul_names
from databourse.pii.screening import check_declarations

ROWS = 400


def korean(seed: int) -> Faker:
    fake = Faker("ko_KR")
    fake.seed_instance(seed)
    return fake


def category(values: list[str], name: str = "col") -> str | None:
    (found,) = scan_table(pa.table({name: pa.array(values, pa.string())}))
    return found.category


def test_the_lists_come_from_the_package_not_from_faker() -> None:
    names = hangul_names()
    assert {"김", "이", "박", "최", "정"} <= names.surnames and len(names.surnames) >= 100
    assert len(names.given) >= 50
    from faker.providers.person.ko_KR import Provider

    assert names.surnames != set(Provider.last_names)  # the census-ranked list, not Faker's


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_faker_korean_name_columns_are_name_columns(seed: int) -> None:
    fake = korean(seed)
    values = [fake.name() for _ in range(ROWS)]
    (found,) = scan_table(pa.table({"c": pa.array(values)}))
    assert (found.category, found.share >= 0.98) == ("PERSON_NAME", True)
    # alone, most names are strong evidence (a known surname and a known given syllable)
    strong = classify_array(pa.array(values, pa.large_string()))
    assert sum(c == "PERSON_NAME" for c in strong) >= 0.9 * ROWS


def test_surname_and_given_name_apart() -> None:
    fake = korean(3)
    values = [f"{fake.last_name()} {fake.first_name()}" for _ in range(ROWS)]
    assert category(values) == "PERSON_NAME"


def test_a_messy_korean_name_column_is_classified_and_stops_the_gate() -> None:
    fake, rng = korean(4), random.Random(4)
    values = [
        rng.choice(["N/A", "-", "미상", "없음", "", "unknown"])
        if rng.random() < 0.3
        else fake.name()
        for _ in range(ROWS)
    ]
    (found,) = scan_table(pa.table({"c": pa.array(values)}))
    assert found.category == "PERSON_NAME"
    assert {u["found"] for u in check_declarations([found], {}).undeclared} == {"PERSON_NAME"}


@pytest.mark.parametrize(
    "decoy",
    ["city", "company", "catch_phrase", "street_name", "job", "address"],
)
def test_korean_places_companies_and_phrases_are_no_names(decoy: str) -> None:
    fake = korean(5)
    values = [str(getattr(fake, decoy)()) for _ in range(ROWS)]
    assert category(values) != "PERSON_NAME"


def test_words_that_start_with_a_surname_syllable_are_no_names() -> None:
    """Places and institutions: 3 syllables from a surname, ending as places do (시, 역, 회)."""
    words = [
        "용인시",
        "이천시",
        "김포시",
        "서울역",
        "부산역",
        "이사회",
        "정부청",
        "강남구",
        "한강로",
    ]
    assert classify_array(pa.array(words)) == [None] * len(words)
    assert category(words * 40) is None

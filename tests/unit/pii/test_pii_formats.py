"""Identifiers as people write them: card IIN ranges, phone notations, IBAN groupings (issue 16)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from stdnum import luhn

from databourse.pii.categories import classify_value
from databourse.pii.detect import scan_table
from databourse.pii.identifiers import valid_mask


def card(prefix: str, length: int) -> str:
    body = prefix + "0" * (length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


@pytest.mark.parametrize(
    ("prefix", "length", "is_card"),
    [
        ("36", 14, True),  # Diners Club International, 14 digits
        ("300", 14, True),
        ("3095", 16, True),
        ("5019", 16, True),  # Dankort
        ("6759", 12, True),  # Maestro from 12 digits
        ("6304", 19, True),
        ("3528", 16, True),  # JCB's cards are 3528-3589, in its block 35
        ("3589", 19, True),
        ("3500", 16, True),
        ("3599", 16, True),
        ("3500", 15, False),
        ("34", 16, False),  # American Express is 15 digits
        ("5612", 12, True),  # Maestro's blocks 50 and 56-69, 12-19 digits
        ("5000", 13, True),
        ("6390", 12, False),  # not one of Maestro's 6 ranges
        ("5100", 12, False),  # Mastercard is 16
        ("0604", 12, False),  # no payment network's: 0 is not a card industry's digit
        ("6304", 18, False),  # 18 digits: a CN resident id's length
        ("2720", 16, True),  # Mastercard 2-series ends at 2720
        ("2721", 16, False),
        ("2200", 16, True),  # Mir
        ("62", 19, True),  # UnionPay
        ("62", 18, True),
        ("36", 18, False),  # 18 digits: only UnionPay (a CN resident id's length)
        ("4", 14, False),  # Visa is 13, 16 or 19
        ("1", 15, True),  # UATP
        ("9", 16, False),
    ],
)
def test_card_iin_ranges_and_lengths(prefix: str, length: int, is_card: bool) -> None:
    number = card(prefix, length)
    assert valid_mask("CREDIT_CARD", pa.array([number])).tolist() == [is_card]
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert valid_mask("CREDIT_CARD", pa.array([wrong])).tolist() == [False]


def test_short_and_uatp_runs_in_text_are_not_cards() -> None:
    notes = [f"order {card('6759', 12)} shipped", f"ticket {card('1', 15)} issued"] * 20
    (finding,) = scan_table(pa.table({"note": notes}))
    assert "CREDIT_CARD" not in finding.embedded
    (finding,) = scan_table(pa.table({"note": [f"paid {card('36', 14)} ok"] * 20}))
    assert finding.embedded == {"CREDIT_CARD": 20}


@pytest.mark.parametrize(
    "text",
    [
        "+60 12-345 6789",
        "0060 12 345 6789",
        "00 86 138 1234 5678",
        "+86.138.1234.5678",
        "(+65) 9123 4567",
        "+852 2345-6789",
        "+44 (0)20 7946 0958",
        "+1 (415) 555-0132 ext. 12",
        "+60 3-2345 6789 x12",
        "(415) 555-0132",
        "415.555.0132",
        "(03) 2345 6789",
        "03.2345.6789",
        "9123-4567",
        "138.1234.5678",
        "011-2345 6789",  # a MY mobile, not NANP's 011 exit code
    ],
)
def test_phones_as_people_write_them(text: str) -> None:
    assert classify_value(text) == "PHONE_NUMBER"


@pytest.mark.parametrize(
    "text", ["2019-1234", "+00 1234 5678", "12.34.56.78", "415-555-01322", "+60 12-345 6789 ext"]
)
def test_not_phones(text: str) -> None:
    assert classify_value(text) != "PHONE_NUMBER"


@pytest.mark.parametrize(
    "text",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82-WEST-1234-5698-7654-32",
        "GB82west12345698765432",
        "DE89.3704.0044.0532.0130.00",
    ],
)
def test_ibans_as_written(text: str) -> None:
    assert classify_value(text) == "IBAN"


def test_uscc_spaced_as_printed() -> None:
    assert classify_value("91 110000 600037341L") == "CN_USCC"
    assert classify_value("91 110000 600037341N") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fe80::1%eth0", "IP_ADDRESS"),
        ("fe80::1%25", "IP_ADDRESS"),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", "IP_ADDRESS"),
        ("0:0:0:0:0:ffff:192.0.2.1", "IP_ADDRESS"),
        ("::ffff:256.0.0.1", None),
        ("1:2:3:4:5:6:7:8:9", None),
        ("fe80::1%", None),
    ],
)
def test_ipv6_forms(text: str, expected: str | None) -> None:
    assert classify_value(text) == expected


def test_redaction_reads_card_runs_as_the_scan_does() -> None:
    from databourse.pii.text_spans import find_spans

    short, diners = card("6759", 12), card("36", 14)
    spans = find_spans([f"order {short} shipped", f"paid {diners} ok"])
    assert "CREDIT_CARD" not in [category for _, _, category in spans[0]]
    assert [category for _, _, category in spans[1]] == ["CREDIT_CARD"]

"""Identifiers written to look the same but match no ASCII pattern (adversary pass 2, rows 3-4).

A provider wrote each customer's resident ID into a kept column in full-width digits; the version
published with the pseudonym beside the real ID. Every obfuscation the reviewer tried is replayed
on the scan (whole values and inside text) and on a product's embedded-identifier gate.
"""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pytest

from databourse.pii.detect import scan_table
from databourse.pii.scan_text import folded
from databourse_samples.demo_orders import cn_check_char

BASE = "11010119900307451"  # Dongcheng, Beijing, 1990-03-07
CN_ID = BASE + cn_check_char(BASE)
PHONE = "13957318264"
EMAIL = "li.wei@example.cn"


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def script_digits(text: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


CHINESE = dict(zip("0123456789", "〇一二三四五六七八九", strict=True))
DISGUISES = {
    "full-width": lambda v: full_width(v),
    "zero-width spaces": lambda v: "\u200b".join(v),
    "soft hyphens": lambda v: v[:6] + "\u00ad" + v[6:14] + "\u00ad" + v[14:],
    "word joiners": lambda v: "\u2060".join(v),
    "arabic-indic digits": lambda v: script_digits(v, 0x0660),
    "devanagari digits": lambda v: script_digits(v, 0x0966),
    "chinese numerals": lambda v: "".join(CHINESE.get(c, c) for c in v),
}


@pytest.mark.parametrize("how", sorted(DISGUISES))
def test_a_disguised_resident_id_is_folded_back(how: str) -> None:
    disguised = DISGUISES[how](CN_ID)
    assert disguised != CN_ID
    assert folded(pa.array([disguised])).to_pylist() == [CN_ID]


@pytest.mark.parametrize("how", sorted(DISGUISES))
def test_a_disguised_resident_id_is_found_whole_and_inside_text(how: str) -> None:
    ids = [DISGUISES[how](CN_ID)] * 40
    notes = [f"会员证件{DISGUISES[how](CN_ID)}已核验" for _ in range(40)]
    findings = {f.column: f for f in scan_table(pa.table({"id": ids, "notes": notes}))}
    assert findings["id"].category == "CN_RESIDENT_ID", (how, findings["id"])
    assert findings["notes"].embedded.get("CN_RESIDENT_ID", 0) == 40, (how, findings["notes"])


def test_full_width_phones_and_spelt_out_emails_are_found() -> None:
    table = pa.table(
        {
            "mobile": [full_width(PHONE)] * 30,
            "email": [full_width(EMAIL)] * 15 + ["li.wei(at)example[dot]cn"] * 15,
        }
    )
    findings = {f.column: f for f in scan_table(table)}
    assert findings["mobile"].category == "PHONE_NUMBER"
    assert findings["email"].category == "EMAIL_ADDRESS"


def test_folding_keeps_length_nulls_and_plain_text() -> None:
    values = pa.array(["三月一个", "plain text", None, "普通文本", "meet (at) noon"])
    out = folded(values)
    assert len(out) == len(values) and out.null_count == 1
    assert out.to_pylist()[:4] == ["三月一个", "plain text", None, "普通文本"]


def test_every_unicode_decimal_digit_is_read_as_its_value() -> None:
    """The oracle is Python's own Unicode database: all 700-odd decimal digits outside ASCII."""
    codes = [c for c in range(0x80, 0x110000) if unicodedata.decimal(chr(c), None) is not None]
    assert len(codes) > 600
    values = pa.array([chr(c) for c in codes])
    expected = [str(unicodedata.decimal(chr(c))) for c in codes]
    assert folded(values).to_pylist() == expected


@pytest.mark.parametrize("how", sorted(DISGUISES))
def test_redaction_removes_a_disguised_id_and_leaves_other_text_as_written(how: str) -> None:
    from databourse.pii.text_spans import redact_embedded

    values = pa.array([f"会员证件{DISGUISES[how](CN_ID)}已核验", "备注：无，谢谢", None])
    out = redact_embedded(values).to_pylist()
    assert out[0] == "会员证件<CN_RESIDENT_ID>已核验", (how, out[0])
    assert out[1:] == ["备注：无，谢谢", None]  # full-width punctuation untouched

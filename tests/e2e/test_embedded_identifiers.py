"""Identifiers inside a product's kept text (issue 15, attack 7): stopped by default, or redacted.

Unit tests on tiny Arrow tables (IDs glued to Chinese text, in Malay and English sentences,
phones in several formats), the gate over the re-scan of the written files, the config, and one
end to end run of the real CLI: the product is refused, then published with `embedded: redact`
and nothing left, as python-stdnum and phonenumbers (independent of our detectors) see it.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import REPO, bourse, cli_env, make_project, sample_manifest, stop_stack
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban, luhn
from stdnum.cn import ric
from stdnum.my import nric

from databourse.config import ColumnRule, ProductSpec, Settings, load_config
from databourse.errors import ConfigError, PersonalDataFound
from databourse.pii.detect import scan_table
from databourse.pii.screening import EMBEDDED_MAX_SHARE, check_embedded
from databourse.pii.text_spans import find_spans, redact_embedded
from databourse.product.assembly import build
from databourse_samples import pii_values as ev
from databourse_samples.pii_evalset import make_evalset

CN_ID = "110101199003074514"  # valid: province 11, born 1990-03-07, check digit 4
MYKAD = "900101-14-5678"
NOTES = [
    f"身份证号{CN_ID}",  # glued to Chinese: no word boundary
    f"客户{CN_ID}已核实，电话13800138000",
    f"Sila hubungi Encik Ali di 012-345 6789, No. KP {MYKAD} ya",
    "Customer called from +60 12-345 6789 about the refund",
    "tel 0755-8888 1234; 138-0013-8000; +86 138 0013 8000",
    "card 4111 1111 1111 1111, iban GB82WEST12345698765432, mail li.wei@mail.com",
    "13800138000",  # a note that is only a phone number
    "退款已处理 refund done 12345",
    None,
]
FREE_TEXT = ["Sila hubungi Encik Ali di", "about the refund", "退款已处理 refund done 12345"]
# A note that is only an identifier would already stop the drop at validation (undeclared
# PHONE_NUMBER in 1 of 7 values); the end-to-end drop holds identifiers inside text only.
E2E_NOTES = [n for n in NOTES if n is not None and n != "13800138000"]


def independent_leftovers(texts: list[str | None]) -> list[str]:
    """What python-stdnum and phonenumbers find in `texts` (no code of ours involved)."""
    found = []
    for text in filter(None, texts):
        digits = re.findall(r"\d{17}[\dXx]", text)
        found += [f"cn.ric in {text!r}" for d in digits if ric.is_valid(d)]
        found += [f"my.nric in {text!r}" for d in re.findall(r"\d{6}-\d{2}-\d{4}", text)
                  if nric.is_valid(d)]  # fmt: skip
        cards = [re.sub(r"\D", "", c) for c in re.findall(r"\d(?:[ -]?\d){12,18}", text)]
        found += [f"card in {text!r}" for c in cards if luhn.is_valid(c)]
        found += [f"iban in {text!r}" for c in re.findall(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", text)
                  if iban.is_valid(c)]  # fmt: skip
        found += [f"email in {text!r}" for _ in re.findall(r"\w@\w", text)]
        for region in ("CN", "MY", "SG"):
            found += [f"phone in {text!r}" for _ in phonenumbers.PhoneNumberMatcher(text, region)]
    return found


# --- redaction -----------------------------------------------------------------------------


def test_identifiers_glued_to_chinese_in_malay_and_english_are_redacted() -> None:
    out = redact_embedded(pa.array(NOTES)).to_pylist()
    assert out[0] == "身份证号<CN_RESIDENT_ID>"
    assert out[1] == "客户<CN_RESIDENT_ID>已核实，电话<PHONE_NUMBER>"
    assert out[2] == "Sila hubungi Encik Ali di <PHONE_NUMBER>, No. KP <MY_NRIC> ya"
    assert out[3] == "Customer called from <PHONE_NUMBER> about the refund"
    assert out[4] == "tel <PHONE_NUMBER>; <PHONE_NUMBER>; <PHONE_NUMBER>"
    assert out[5] == "card <CREDIT_CARD>, iban <IBAN>, mail <EMAIL_ADDRESS>"
    assert out[6] == "<PHONE_NUMBER>"
    assert out[7:] == NOTES[7:]  # text without identifiers and nulls are left alone
    assert independent_leftovers(NOTES) and not independent_leftovers(out)


def test_an_id_glued_to_latin_letters_is_counted_and_redacted() -> None:
    # "ID110101199003074514" is one alphanumeric token, which the digit-run search skips (codes
    # and SKUs); a CN id's check digit, province and birth date make it safe to look inside.
    texts = [f"Customer ID{CN_ID} verified", f"NRIC:{CN_ID}", "SKU AB1234567890123456789"]
    found = scan_table(pa.table({"notes": texts}))[0]
    assert found.embedded == {"CN_RESIDENT_ID": 2}
    assert not check_embedded([found]).ok
    redacted = redact_embedded(pa.array(texts)).to_pylist()
    assert redacted == ["Customer ID<CN_RESIDENT_ID> verified", "NRIC:<CN_RESIDENT_ID>", texts[2]]


def test_redaction_keeps_the_arrow_type_and_dictionary_columns() -> None:
    for typ in (pa.string(), pa.large_string()):
        assert redact_embedded(pa.array(NOTES, typ)).type == typ
    encoded = pa.chunked_array([pa.array(NOTES).dictionary_encode()])
    assert redact_embedded(encoded).to_pylist()[0] == "身份证号<CN_RESIDENT_ID>"
    with pytest.raises(TypeError, match="needs a text column"):
        redact_embedded(pa.array([1, 2]))


def test_company_codes_are_not_personal_and_stay() -> None:
    # A unified social credit code names a company, never a person.
    spans = find_spans(["公司代码91350100M000100Y43 已备案"])
    assert all(category != "CN_USCC" for _, _, category in spans[0])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_redaction_the_scan_finds_no_identifier_left(seed: int) -> None:
    remarks = make_evalset(rows=400, seed=seed).table.select(["remarks"])
    before = scan_table(remarks)[0]
    assert before.embedded.get("CN_RESIDENT_ID")  # the attack's input really holds some
    after = scan_table(pa.table({"remarks": redact_embedded(remarks["remarks"])}))[0]
    assert check_embedded([after], redacted=["remarks"]).ok, after.to_json()
    assert after.embedded.keys() <= {"CN_USCC"}  # company codes only


GENERATORS = (
    ev.cn_id,
    ev.hk_id,
    ev.sg_nric,
    ev.my_nric,
    ev.phone,
    ev.email,
    ev.ip,
    ev.iban,
    ev.card,
)
GLUE = ["", " ", "，", ":", "号", "电话", " no. ", "(", ")", "/", "-", "IC", "tel"]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), parts=st.lists(st.integers(0, 60), min_size=1, max_size=6))
def test_whatever_the_scan_counts_redaction_removes(seed: int, parts: list[int]) -> None:
    """Identifiers glued to any text: the scan of the redacted values counts none of them."""
    r = random.Random(seed)
    pieces = []
    for part in parts:  # an identifier, glue or filler text, in any order
        if part < len(GENERATORS) * 2:
            pieces.append(GENERATORS[part % len(GENERATORS)](r))
        else:
            pieces.append(r.choice([*GLUE, "客户要求退款", "sudah dibayar", "ref 12345"]))
    text = "".join(pieces)
    after = scan_table(pa.table({"t": redact_embedded(pa.array([text]))}))[0]
    assert check_embedded([after], redacted=["t"]).ok, (text, after.to_json())


# --- the gate over a product's findings -----------------------------------------------------


def test_one_checksum_identifier_in_text_stops_at_any_share() -> None:
    texts = [f"note {i}" for i in range(5000)] + [NOTES[0]]
    check = check_embedded(scan_table(pa.table({"notes": texts})))
    assert not check.ok
    assert check.refused == [
        {
            "column": "notes",
            "category": "CN_RESIDENT_ID",
            "values": 1,
            "checked": 5001,
            "rule": "checksum category: must be 0",
        }
    ]
    assert CN_ID not in check.reason()


def test_weak_identifiers_stop_above_the_share_and_are_counted_below_it() -> None:
    phones = ["call 13800138000 please"]
    few = scan_table(pa.table({"notes": [f"note {i}" for i in range(2000)] + phones}))
    check = check_embedded(few, max_share=EMBEDDED_MAX_SHARE)
    assert check.ok and check.left == {"notes": {"PHONE_NUMBER": 1}}
    many = scan_table(pa.table({"notes": [f"note {i}" for i in range(50)] + phones * 5}))
    refused = check_embedded(many, max_share=EMBEDDED_MAX_SHARE).refused
    assert [(r["category"], r["values"], r["checked"]) for r in refused] == [
        ("PHONE_NUMBER", 5, 55)
    ]


def test_a_redacted_column_may_hold_none_and_whole_values_below_threshold_count() -> None:
    # 30% of the values are a bare CN id: under the 0.8 classification threshold, so the
    # direct-identifier gate alone let them through.
    values = [CN_ID] * 3 + ["ok"] * 7
    findings = scan_table(pa.table({"ref": values}))
    assert findings[0].category is None
    assert [r["category"] for r in check_embedded(findings).refused] == ["CN_RESIDENT_ID"]
    phone = scan_table(pa.table({"notes": ["call 13800138000"] + ["x"] * 5000}))
    assert check_embedded(phone).ok
    assert not check_embedded(phone, redacted=["notes"]).ok


# --- the build: refused, or redacted and re-scanned ----------------------------------------


def notes_product(notes_rule: Any = "keep", **extra: Any) -> ProductSpec:
    return ProductSpec.model_validate({
        "id": "care-notes", "name": "Care notes", "source": {"provider": "p", "dataset": "d"},
        "columns": {"ticket": "keep", "district": "keep", "notes": notes_rule},
        "terms": {"purposes": ["research"]}, "markets": ["CN"], **extra,
    })  # fmt: skip


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    rows = len(NOTES) * 20
    table = pa.table(
        {
            "ticket": [f"T{i:05d}" for i in range(rows)],
            "district": [["南山区", "罗湖区"][i % 2] for i in range(rows)],
            "notes": NOTES * 20,
        }
    )
    pq.write_table(table, tmp_path / "staged.parquet")
    return tmp_path / "staged.parquet"


def built_product(staged: Path, spec: ProductSpec, tmp: Path) -> Any:
    return build(staged, spec, {}, None, {}, tmp / "work", tmp / "out", origin="CN")


def test_kept_notes_with_identifiers_refuse_the_version(staged: Path, tmp_path: Path) -> None:
    with pytest.raises(PersonalDataFound) as caught:
        built_product(staged, notes_product(), tmp_path)
    message = str(caught.value)
    assert "care-notes" in message and "'notes'" in message
    assert "CN_RESIDENT_ID in 40 of 160 values" in message
    assert "PHONE_NUMBER" in message and "embedded: redact" in message
    assert CN_ID not in message and "13800138000" not in message
    context = caught.value.context
    assert (context["column"], context["category"], context["values"]) == (
        "notes",
        "CN_RESIDENT_ID",
        40,
    )


def test_redacted_notes_are_published_with_nothing_left(staged: Path, tmp_path: Path) -> None:
    spec = notes_product({"action": "keep", "embedded": "redact"})
    made = built_product(staged, spec, tmp_path)
    embedded = made.personal_data["embedded"]
    assert embedded["left"] == {} and embedded["left_in_redacted"] == 0
    assert embedded["redacted"]["notes"] == {
        "CN_RESIDENT_ID": 40,
        "CREDIT_CARD": 20,
        "EMAIL_ADDRESS": 20,
        "IBAN": 20,
        "MY_NRIC": 20,
        "PHONE_NUMBER": 100,
    }
    written = pq.read_table(tmp_path / "out")
    assert written.num_rows == 180
    notes = written["notes"].to_pylist()
    assert not independent_leftovers(notes)
    assert any(FREE_TEXT[0] in (n or "") for n in notes)  # the free text itself is kept


def test_verify_flags_a_published_version_with_identifiers_in_its_text(tmp_path: Path) -> None:
    """A version written straight to the store (not through the build) is caught by verify."""
    from bourse.datatools import verify_version
    from databourse.product.package import publish_files, write_parquet
    from databourse.storage.opening import open_store

    store = open_store(str(tmp_path / "store"))
    table = pa.table({"id": ["a", "b", "c"], "notes": [NOTES[0], "ok", "fine"]})
    files = write_parquet(table, tmp_path / "out")
    publish_files(store, "p1", "1.0.0", tmp_path / "out", files, sample_manifest(table, files))
    cfg = load_config(REPO / "configs")
    problems = verify_version(cfg, store, "p1", "1.0.0")
    assert [p for p in problems if p.startswith("identifiers inside text")] == [
        "identifiers inside text: column 'notes' holds CN_RESIDENT_ID in 1 of 3 values "
        "(checksum category: must be 0)"
    ]
    assert CN_ID not in " ".join(problems)


# --- config ----------------------------------------------------------------------------------


def test_redact_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ValueError, match="embedded: redact applies to kept text"):
        ColumnRule.model_validate({"action": "pseudonymize", "embedded": "redact"})
    assert ColumnRule.model_validate("keep").embedded == "stop"  # the safe default
    assert ColumnRule.model_validate({"embedded": "redact"}).action == "keep"
    assert Settings().pii_embedded_max_share == EMBEDDED_MAX_SHARE


def test_default_stop_leaves_every_existing_product_fingerprint_alone() -> None:
    plain = notes_product("keep")
    explicit = notes_product({"action": "keep", "embedded": "stop"})
    redacting = notes_product({"action": "keep", "embedded": "redact"})
    assert plain.fingerprint() == explicit.fingerprint() != redacting.fingerprint()


def test_redact_on_a_numeric_column_is_a_config_problem(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    path = project / "configs" / "products" / "kl-building-environment.yaml"
    path.write_text(path.read_text().replace("co2_ppm: keep", "co2_ppm: {embedded: redact}"))
    with pytest.raises(ConfigError, match=r"co2_ppm\.embedded: redact needs a string column"):
        load_config(project / "configs")


# --- end to end through the real CLI ---------------------------------------------------------

PROVIDER = {
    "id": "sz-care",
    "name": "Shenzhen customer care",
    "jurisdiction": "CN",
    "datasets": {
        "tickets": {
            "primary_key": ["ticket"],
            "columns": [
                {"name": "ticket", "type": "string", "nullable": False, "unique": True},
                {"name": "district", "type": "string", "nullable": False},
                {"name": "notes", "type": "string"},
            ],
        }
    },
}


def product_yaml(notes_rule: Any) -> str:
    return yaml.safe_dump({
        "id": "care-notes", "name": "Care notes", "source": {"provider": "sz-care",
        "dataset": "tickets"}, "columns": {"ticket": "keep", "district": "keep",
        "notes": notes_rule}, "terms": {"purposes": ["research"]}, "markets": ["CN"],
    }, allow_unicode=True)  # fmt: skip


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    project = make_project(tmp_path_factory.mktemp("embedded") / "project")
    (project / "configs" / "providers" / "sz-care.yaml").write_text(yaml.safe_dump(PROVIDER))
    (project / "configs" / "products" / "care-notes.yaml").write_text(product_yaml("keep"))
    lines = ["ticket,district,notes"] + [
        f'T{i:05d},{["南山区", "罗湖区"][i % 2]},"{E2E_NOTES[i % 7]}"' for i in range(70)
    ]
    (project / "tickets.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = cli_env(project, DATABOURSE_STORE_ROOT=str(project / "state" / "store"))
    yield project, env
    stop_stack(env)


@pytest.mark.e2e
def test_cli_refuses_then_publishes_redacted_notes(care: tuple[Path, dict[str, str]]) -> None:
    project, env = care
    csv = str(project / "tickets.csv")
    refused = bourse(env, "run", "sz-care", "tickets", csv, "--wait", "120", check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said
    assert "care-notes" in said and "'notes'" in said and "CN_RESIDENT_ID in 20 of 70" in said
    assert CN_ID not in said and "13800138000" not in said
    assert json.loads(bourse(env, "catalog", "list", "--json").stdout) == []
    assert not (project / "state" / "store" / "products").exists()
    events = json.loads(bourse(env, "audit", "show", "--json").stdout)
    quarantined = [e for e in events if e["kind"] == "quarantine"]
    assert [e["detail"]["product"] for e in quarantined] == ["care-notes"]
    assert quarantined[0]["detail"]["column"] == "notes" and CN_ID not in json.dumps(events)

    rule = {"action": "keep", "embedded": "redact"}
    (project / "configs" / "products" / "care-notes.yaml").write_text(product_yaml(rule))
    published = bourse(env, "run", "sz-care", "tickets", csv, "--wait", "120")
    assert "care-notes@1.0.0 (new)" in published.stdout, published.stdout
    folder = project / "state" / "store" / "products" / "care-notes" / "1.0.0"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["personal_data"]["embedded"]["left_in_redacted"] == 0
    assert manifest["personal_data"]["embedded"]["redacted"]["notes"]["CN_RESIDENT_ID"] == 20
    files = sorted(folder.glob("*.parquet"))
    notes = [n for f in files for n in pq.read_table(f, columns=["notes"])["notes"].to_pylist()]
    assert len(notes) == 70 and not independent_leftovers(notes)
    assert "身份证号<CN_RESIDENT_ID>" in notes
    shown = json.loads(bourse(env, "catalog", "show", "care-notes@1.0.0", "--json").stdout)
    [version] = shown["versions"]
    assert {a["market"]: a["status"] for a in version["availability"]} == {"CN": "available"}

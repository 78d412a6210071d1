"""Operator views hold against hostile names (issue 15, attack 11).

An insider who can write the catalog (SQL), or anyone who may name a buyer or an approver, puts
rich markup (`[/]`), ANSI escapes (clear screen, OSC 8 links), C1 controls and bidi overrides in
names. The CLI's views must still run (rc 0) and show each such character as a visible escape,
never the raw byte; names are refused where they enter; `--expires` never ends in a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
import yaml
from helpers import (
    api_post,
    bourse,
    cli_env,
    make_project,
    publish_sample_version,
    with_sample_product,
)
from hypothesis import given, settings
from pydantic import BaseModel, Field, ValidationError
from rich.table import Table
from sqlalchemy import create_engine, text

from bourse.display import PlainConsole, cells, escape_controls, json_text, safe, yaml_text
from databourse.catalog.database import Catalog
from databourse.errors import InvalidName
from databourse.names import (
    INVISIBLE_CATEGORIES,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    check_name,
    name_problems,
)

CLEAR = "\x1b[2J\x1b[H"
LINK = "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"
BUYER = f"[/]{CLEAR}Mallory"
APPROVER = f"[/]\u202eecilA{LINK}"
REFERENCE = "REF\x9b31m-1"  # C1 CSI: some terminals read it as ESC [
CONDITIONS = "[bold]none[/bold] :smile: \u2066\u200b"
PRODUCT_NAME = f"Orders [/] {CLEAR}\u202e"
PURPOSE = ("--purpose", "research")  # permitted by p1's terms (helpers.SAMPLE_PRODUCT)
# Any of these raw in the output repaints, re-links or reorders what the operator reads.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (never raises: the test reads rc, stdout and stderr)."""
    return bourse(env, *args, check=False)


def shown_safely(proc: subprocess.CompletedProcess[str]) -> str:
    """The command ran (rc 0, no traceback) and printed no raw control: its stdout."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not RAW.search(proc.stdout), repr(proc.stdout)
    assert not RAW.search(proc.stderr), repr(proc.stderr)
    return proc.stdout


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command was refused with rc 1 and a clear error (no traceback) naming `words`."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert re.search("^error: ", proc.stderr, re.MULTILINE), proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert not RAW.search(proc.stderr), repr(proc.stderr)
    return proc.stderr


@pytest.fixture(scope="module")
def insider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A published p1 whose names an insider rewrote with SQL; the env of a CLI reading it."""
    root = tmp_path_factory.mktemp("hostile")
    catalog, _store = publish_sample_version(root, name=PRODUCT_NAME)
    catalog.record_approval(
        "p1", "1.0.0", "MY", "approved", "Li Wei", "standard_contract_or_certification", "R-1"
    )
    catalog.record_grant("p1", "1.0.0", "KL Mart", "MY", dt.datetime.now(dt.UTC) + dt.timedelta(1))
    engine = create_engine(f"sqlite:///{root / 'catalog.db'}")
    with engine.begin() as db:  # the insider: straight into the tables, past every check
        db.execute(text("UPDATE grants SET buyer = :b"), {"b": BUYER})
        db.execute(
            text("UPDATE approvals SET approver = :a, reference = :r, conditions = :c"),
            {"a": APPROVER, "r": REFERENCE, "c": CONDITIONS},
        )
        db.execute(text("UPDATE audit_events SET actor = :b WHERE kind = 'grant'"), {"b": BUYER})
        db.execute(
            text("UPDATE audit_events SET actor = :a WHERE kind = 'approval'"), {"a": APPROVER}
        )
    engine.dispose()
    project = with_sample_product(make_project(root / "project"))
    (project / "state" / "prefect").mkdir(parents=True, exist_ok=True)
    yield cli_env(
        project,
        DATABOURSE_CATALOG_URL=f"sqlite:///{root / 'catalog.db'}",
        DATABOURSE_STORE_ROOT=str(root / "store"),
        COLUMNS="400",  # tables unfolded: an escape is not cut across lines
    )


# --- the views an operator reads ------------------------------------------------------------


def test_audit_show_survives_markup_and_escapes_in_actors(insider: dict[str, str]) -> None:
    """`[/]` used to crash `audit show` (MarkupError); ESC and U+202E reached the terminal."""
    out = shown_safely(run(insider, "audit", "show"))
    assert f"by {escape_controls(BUYER)}" in out
    assert "by [/]\\x1b[2J\\x1b[HMallory" in out  # what the operator sees, literally
    assert f"by {escape_controls(APPROVER)}" in out and "\\u202eecilA\\x1b]8;;" in out
    events = json.loads(run(insider, "audit", "show", "--json").stdout)
    assert {e["actor"] for e in events} >= {BUYER, APPROVER}  # JSON stays exact


def test_catalog_show_and_list_survive_hostile_names(insider: dict[str, str]) -> None:
    """Product name, approver, reference: shown escaped, the command finishes."""
    out = shown_safely(run(insider, "catalog", "show", "p1"))
    assert escape_controls(PRODUCT_NAME) in out
    assert f"by {escape_controls(APPROVER)}" in out
    assert f"ref {escape_controls(REFERENCE)}" in out and "REF\\x9b31m-1" in out
    listed = shown_safely(run(insider, "catalog", "list"))
    assert "│ p1 " in listed and "sz-retail/" in listed
    shown = json.loads(run(insider, "catalog", "show", "p1", "--json").stdout)
    assert shown["product"]["name"] == PRODUCT_NAME


def test_approvals_list_all_survives_hostile_names(
    prefect_api: str, insider: dict[str, str]
) -> None:
    """The decisions table (approver, reference, conditions) renders escaped, as Text cells."""
    env = {**insider, "PREFECT_API_URL": prefect_api}
    out = shown_safely(run(env, "approvals", "list", "--all"))
    assert escape_controls(APPROVER) in out
    assert escape_controls(REFERENCE) in out
    assert "[bold]none[/bold] :smile: \\u2066\\u200b" in out  # no markup, no emoji, escaped
    decided = json.loads(run(env, "approvals", "list", "--all", "--json").stdout)["decided"]
    assert [d["approver"] for d in decided] == [APPROVER]


def test_approvals_list_survives_a_hostile_run_made_through_the_prefect_api(
    prefect_api: str, insider: dict[str, str]
) -> None:
    """Someone with the Prefect API makes a 'suspended publish run' whose names are hostile."""
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    flow = api_post(f"{prefect_api}/flows/", {"name": "publish-product"}).json()
    made = api_post(
        f"{prefect_api}/flow_runs/",
        {
            "flow_id": flow["id"],
            "name": f"evil{CLEAR}",
            "parameters": {"product": BUYER, "version": f"1.0.0{LINK}"},
            "state": {
                "type": "PAUSED",
                "name": "Suspended",
                "state_details": {"pause_key": "approval-my\u202e-x", "pause_timeout": until},
            },
        },
    )
    assert made.status_code == 201, made.text
    try:
        env = {**insider, "PREFECT_API_URL": prefect_api}
        out = shown_safely(run(env, "approvals", "list"))
        # The listing reads what was asked from the catalog's pending rows (issue 15, R4): a run
        # made through the API, for which the pipeline opened no question, is not listed at all.
        assert "Mallory" not in out and "evil.example" not in out
        listed = json.loads(run(env, "approvals", "list", "--json").stdout)
        # The server is the session's: other tests' runs may wait too.
        assert [w for w in listed if w["run_id"] == made.json()["id"]] == []
    finally:  # the server is the session's: leave no waiting run for other tests
        httpx.delete(f"{prefect_api}/flow_runs/{made.json()['id']}")


# --- names refused where they enter -----------------------------------------------------------


@pytest.mark.parametrize(
    ("buyer", "words"),
    [
        ("", ("--buyer", "empty")),
        ("   ", ("--buyer", "empty")),
        (f"Mallory{CLEAR}", ("--buyer", "U+001B")),
        ("Mallory\u202e", ("--buyer", "U+202E")),
        ("M" * (NAME_MAX_LENGTH + 1), ("--buyer", f"{NAME_MAX_LENGTH + 1} characters")),
    ],
    ids=["empty", "blank", "ansi", "bidi", "overlong"],
)
def test_grant_refuses_a_bad_buyer_name(
    insider: dict[str, str], buyer: str, words: tuple[str, ...]
) -> None:
    """`bourse grant --buyer ""` used to record a grant to nobody."""
    catalog = Catalog(insider["DATABOURSE_CATALOG_URL"])
    before = catalog.grants("p1")
    refused(run(insider, "grant", "p1@1.0.0", "--buyer", buyer, "--market", "CN"), *words)
    assert catalog.grants("p1") == before


@pytest.mark.parametrize(
    "expires",
    ["99999999999d", "999999999999h", "9" * 5000 + "d", "0d", "-1d", "2026-02-30"],
)
def test_grant_expires_gives_a_clear_error(insider: dict[str, str], expires: str) -> None:
    """`--expires 99999999999d` used to end in an OverflowError traceback."""
    refused(
        run(
            insider,
            "grant",
            "p1@1.0.0",
            "--buyer",
            "KL Mart",
            "--market",
            "CN",
            "--expires",
            expires,
        ),
        "--expires",
    )


def test_a_good_grant_still_works_and_prints_plainly(
    insider: dict[str, str], tmp_path: Path
) -> None:
    """A buyer named with brackets and CJK is fine: printed as text, not markup.

    On a catalog of its own: the insider's catalog above has rewritten audit events, and a
    broken trail backs no grant (tests/attacks/test_trail_gate_attacks.py)."""
    publish_sample_version(tmp_path, name=PRODUCT_NAME)
    project = with_sample_product(make_project(tmp_path / "project"))
    env = cli_env(
        project,
        DATABOURSE_CATALOG_URL=f"sqlite:///{tmp_path / 'catalog.db'}",
        DATABOURSE_STORE_ROOT=str(tmp_path / "store"),
        COLUMNS="400",
    )
    out = shown_safely(
        run(env, "grant", "p1@1.0.0", "--buyer", "深圳 [Robotics]", "--market", "CN", *PURPOSE)
    )
    assert "深圳 [Robotics] may read p1@1.0.0 in CN" in out
    assert run(env, "audit", "verify").returncode == 0  # this trail is whole
    args = ["grant", "p1@1.0.0", "--buyer", "深圳 [Robotics]", "--market", "CN", *PURPOSE]
    refused(run(insider, *args), "audit trail is broken")  # the rewritten one backs nothing


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_approve_and_reject_refuse_a_bad_approver(insider: dict[str, str], command: str) -> None:
    """Refused before any answer reaches Prefect (the run id need not even exist)."""
    extra = ["--reference", "R-1"] if command == "approve" else ["--reason", "no"]
    for approver, word in (("  ", "empty"), (f"Alice{LINK}", "U+001B")):
        args = [command, "00000000-0000-0000-0000-000000000000", "--approver", approver, *extra]
        refused(run(insider, *args), "--approver", word)


def test_domain_refuses_bad_names_whoever_calls(tmp_path: Path) -> None:
    """The catalog refuses what the CLI refuses: a caller of the domain cannot skip it."""
    catalog, _store = publish_sample_version(tmp_path)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    for bad in ("", " \t ", "x\x1b[2J", "\u202eabc", "x" * 201, "a\u2028b"):
        with pytest.raises(InvalidName) as caught:
            catalog.record_grant("p1", "1.0.0", bad, "CN", until)
        assert caught.value.field == "buyer" and (not bad.strip() or bad not in str(caught.value))
        with pytest.raises(InvalidName):
            catalog.record_approval(
                "p1", "1.0.0", "MY", "approved", bad, "standard_contract_or_certification", "R"
            )
    assert catalog.grants("p1") == []
    assert catalog.transfer_decisions() == []


# --- other printed data: files a provider names, YAML --------------------------------------


def test_scan_escapes_hostile_column_names(insider: dict[str, str], tmp_path: Path) -> None:
    """Column names come from the provider's file: escaped in the table, exact in JSON."""
    hostile = f"name{CLEAR}\u202e[/]"
    csv = tmp_path / "drop.csv"
    csv.write_text(f'id,"{hostile}"\n1,Ann\n2,Bob\n', encoding="utf-8")
    out = shown_safely(run(insider, "scan", str(csv)))
    assert escape_controls(hostile) in out
    as_json = run(insider, "scan", str(csv), "--json")
    assert not RAW.search(as_json.stdout)
    assert [c["name"] for c in json.loads(as_json.stdout)["columns"]] == ["id", hostile]


def test_quality_profile_yaml_escapes_hostile_values(
    insider: dict[str, str], tmp_path: Path
) -> None:
    """A value set proposed from the provider's data: YAML escapes, the same data read back."""
    sites = ["KL\u202e01", f"KL[/]{CLEAR}02", "KL\x9b03"]
    header = "reading_id,site_id,floor,reading_time,temperature_c,humidity_pct,co2_ppm,"
    lines = [header + "occupant_name,occupant_mykad,occupant_phone"]
    lines += [
        f"r{i},{sites[i % 3]},{i % 5},2026-01-01T00:00:{i:02d},21.5,40.0,{400 + i},,,"
        for i in range(30)
    ]
    drop = tmp_path / "readings.csv"
    drop.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ("quality", "profile", "my-buildops", "sensor_readings", "--file", str(drop))
    proposed = yaml.safe_load(shown_safely(run(insider, *args)))
    [value_set] = [
        p["kwargs"]["value_set"]
        for p in proposed
        if p["kwargs"]["column"] == "site_id" and "value_set" in p["kwargs"]
    ]
    assert sorted(value_set) == sorted(sites)


# --- the escaper and the name rule ------------------------------------------------------------

INVISIBLE = st.characters(categories=tuple(INVISIBLE_CATEGORIES))
ANY_TEXT = st.text(st.one_of(st.characters(), INVISIBLE), max_size=60)


def invisible_in(value: str, keep: str = "") -> list[str]:
    return [c for c in value if unicodedata.category(c) in INVISIBLE_CATEGORIES and c not in keep]


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_escaped_text_never_holds_a_control(value: str) -> None:
    """No C0/C1 control, DEL, bidi override or separator survives escaping, in a line or a table."""
    assert invisible_in(escape_controls(value)) == []
    assert invisible_in(escape_controls(value, keep="\n"), keep="\n") == []
    console = PlainConsole(record=True, width=400, soft_wrap=True, color_system=None)
    table = Table("a", "b")
    table.add_row(*cells(value, None))
    table.add_row(value, value)  # a plain str cell: the console's net escapes it too
    with console.capture() as captured:
        console.print(safe(value))
        console.print(value)
        console.print(table)
    assert invisible_in(captured.get(), keep="\n") == []


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        ANY_TEXT | st.integers(), lambda kids: st.lists(kids) | st.dictionaries(ANY_TEXT, kids)
    )
)
def test_json_text_is_exact_and_safe(data: Any) -> None:
    """JSON output parses back to the same data and never holds a raw control."""
    text_ = json_text(data, indent=2)
    assert json.loads(text_) == data
    assert invisible_in(text_, keep="\n") == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(ANY_TEXT, ANY_TEXT | st.integers(), max_size=3), max_size=3))
def test_yaml_text_is_the_same_data_and_safe(data: Any) -> None:
    """A profile's YAML keeps its data (as any YAML reader reads it) and holds no raw control."""
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    shown = yaml_text("# Proposed for \x1b[2Jorders\n" + body)
    assert invisible_in(shown, keep="\n") == []
    assert shown.startswith("# Proposed for \\x1b[2Jorders\n")
    assert yaml.safe_load(shown) == yaml.safe_load(body)


@settings(max_examples=300, deadline=None)
@given(st.text(st.one_of(st.characters(exclude_categories=("Cs",)), INVISIBLE), max_size=40))
def test_the_form_pattern_is_the_same_rule(value: str) -> None:
    """NAME_PATTERN (for a form's JSON schema, Rust regex in pydantic) agrees with name_problems.

    Python's `$` also matches before one last newline: that one case the pattern lets by under
    Python's `re`, and name_problems still refuses. Astral format characters and lone
    surrogates (no JSON text decodes to one for a browser) are left to name_problems.
    """
    outside = [c for c in value if unicodedata.category(c) in ("Cf", "Cs")]
    if any(ord(c) > 0xFFFF or unicodedata.category(c) == "Cs" for c in outside):
        return

    class Form(BaseModel):
        approver: str = Field(max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)

    try:
        Form(approver=value)
        by_form = True
    except ValidationError:
        by_form = False
    assert by_form == (name_problems(value, "approver") == [])
    if not value.endswith("\n"):
        assert bool(re.search(NAME_PATTERN, value)) == by_form


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"\A-?[0-9]{1,40}[hdw]?\Z"),
        st.from_regex(r"\A[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}\Z"),
    )
)
def test_the_expiry_parser_is_total(value: str) -> None:
    """Any `--expires` text is a moment in the future or a CatalogError: never anything else."""
    from databourse.delivery.grants import expiry
    from databourse.errors import CatalogError

    now = dt.datetime.now(dt.UTC)
    try:
        moment = expiry(value, now)
    except CatalogError:
        return
    assert moment > now


def test_check_name_messages_never_carry_the_name() -> None:
    """Refusals name the field, a length or code points: never the name itself."""
    assert check_name("Li Wei", "approver") == "Li Wei"
    for bad in ("", "Mallory\x1b[2J", "\u202eMallory", "Mallory" * 40):
        with pytest.raises(InvalidName) as caught:
            check_name(bad, "approver")
        assert "Mallory" not in str(caught.value) and "approver" in str(caught.value)
    with pytest.raises(InvalidName, match="must be text"):
        check_name(None, "buyer")

"""`bourse redact INPUT --out OUTPUT`: the real CLI in a subprocess on JSONL, Parquet and CSV.

Documents are `benchmarks/redact.py`'s (Faker's sentences, validated identifiers, decoys). The
output holds no planted identifier (of the written forms the scan reads in text), the other
fields are untouched, bad input is named by file and line and leaves nothing written, and
nothing a command prints holds a planted value of any category.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import bourse, cli_env

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from redact import IDENTIFIERS, Doc, evaluation_set, out_of_scope

DOCS = 12  # per locale


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return evaluation_set(DOCS, seed=31)


def _records(docs: list[Doc]) -> list[dict[str, Any]]:
    return [{"id": i, "text": d.text, "lang": d.locale, "score": i / 7} for i, d in enumerate(docs)]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    if path.suffix == ".jsonl":
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
        )
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path, row_group_size=50)
    else:
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _planted(docs: list[Doc]) -> list[str]:
    return [d.text[a:b] for d in docs for a, b, _ in d.planted]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".csv"])
def test_redacts_each_format(tmp_path: Path, docs: list[Doc], suffix: str) -> None:
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    records = _records(docs)
    _write(source, records)
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(target), "--json")
    report = json.loads(proc.stdout)
    out = _read(target)
    assert len(out) == len(records) == report["documents"]
    for before, after, doc in zip(records, out, docs, strict=True):
        assert str(after["id"]) == str(before["id"]) and after["lang"] == before["lang"]
        for a, b, category in doc.planted:
            value = doc.text[a:b]
            if category in IDENTIFIERS and not out_of_scope(category, value):
                assert value not in after["text"], category
    written = "".join(r["text"] for r in out)
    for category, n in report["redacted"].items():
        assert written.count(f"<{category}>") == n
    assert report["leftover_rate"] <= 0.005
    for value in _planted(docs):
        assert value not in proc.stdout and value not in proc.stderr


def test_table_output_prints_counts_only(tmp_path: Path, docs: list[Doc]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(source, _records(docs))
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(target))
    assert "PHONE_NUMBER" in proc.stdout and "leftover rate" in proc.stdout
    for value in _planted(docs):
        assert value not in proc.stdout and value not in proc.stderr


def test_bad_json_line_is_named_and_nothing_is_written(tmp_path: Path, docs: list[Doc]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in _records(docs)[:5]]
    lines[3] = lines[3][:-1]  # line 4 loses its closing brace
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(target), check=False)
    assert proc.returncode != 0
    assert str(source) in proc.stderr and "line 4" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["in.jsonl"]
    for value in _planted(docs[:5]):
        assert value not in proc.stdout and value not in proc.stderr


def test_failure_keeps_the_previous_output(tmp_path: Path, docs: list[Doc]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = _records(docs[:3])
    del records[2]["text"]
    _write(source, records)
    target.write_text("previous\n", encoding="utf-8")
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(target), check=False)
    assert proc.returncode != 0 and "line 3" in proc.stderr and "'text'" in proc.stderr
    assert target.read_text(encoding="utf-8") == "previous\n"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_missing_column_is_named(tmp_path: Path, docs: list[Doc], suffix: str) -> None:
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    _write(source, _records(docs[:3]))
    args = ("redact", str(source), "--out", str(target), "--text-field", "body")
    proc = bourse(cli_env(tmp_path), *args, check=False)
    assert proc.returncode != 0 and "'body'" in proc.stderr and str(source) in proc.stderr
    assert not target.exists()


def test_csv_row_with_wrong_field_count_is_named(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("id,text\n1,hello there\n2,a,b\n", encoding="utf-8")
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(target), check=False)
    assert proc.returncode != 0 and "line 3" in proc.stderr
    assert not target.exists()


def test_refuses_to_overwrite_its_input(tmp_path: Path, docs: list[Doc]) -> None:
    source = tmp_path / "in.jsonl"
    _write(source, _records(docs[:3]))
    before = source.read_bytes()
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(source), check=False)
    assert proc.returncode != 0 and "overwrite" in proc.stderr
    assert source.read_bytes() == before


def test_unwritable_target_is_one_error_line(tmp_path: Path, docs: list[Doc]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "missing" / "out.jsonl"
    _write(source, _records(docs[:3]))
    proc = bourse(cli_env(tmp_path), "redact", str(source), "--out", str(target), check=False)
    assert proc.returncode != 0 and proc.stderr.splitlines()[-1].startswith("error:")
    assert "Traceback" not in proc.stderr and "missing" in proc.stderr


def test_pseudonyms_link_one_person_across_runs_and_need_the_key(
    tmp_path: Path, docs: list[Doc]
) -> None:
    """`--pseudonyms`: each planted identifier becomes a `<CATEGORY:letters>` token, the same one
    in a second run over another file that holds it (the key, not the run, decides it); no
    value and no key is printed; without the key version asked for, one error line naming
    where it was looked for, and nothing written."""
    import re
    import secrets

    from helpers import make_project

    project = make_project(tmp_path / "project")
    key = secrets.token_hex(32)
    env = cli_env(project, DATABOURSE_PSEUDONYM_KEY=key, DATABOURSE_KEY_DIR=str(tmp_path / "k"))
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(first, _records(docs))
    _write(second, _records(docs)[:20][::-1])
    outs = []
    for source in (first, second):
        target = source.with_suffix(".out.jsonl")
        proc = bourse(env, "redact", str(source), "--out", str(target), "--pseudonyms", "--json")
        assert key not in proc.stdout + proc.stderr
        assert not any(v in proc.stdout + proc.stderr for v in _planted(docs) if len(v) > 5)
        assert json.loads(proc.stdout)["redacted"]
        outs.append({r["id"]: r["text"] for r in _read(target)})
    token = re.compile(r"<[A-Z_]+:[g-z]{10}>")
    for i, doc in enumerate(docs[:20]):
        assert token.findall(outs[0][i]) == token.findall(outs[1][i]) != []
        for a, b, category in doc.planted:
            value = doc.text[a:b]
            if category in IDENTIFIERS and not out_of_scope(category, value):
                assert value not in outs[0][i]

    target = tmp_path / "never.jsonl"
    args = ("redact", str(first), "--out", str(target), "--pseudonyms", "--key-version", "v9")
    missing = bourse(env, *args, check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "DATABOURSE_PSEUDONYM_KEY__V9" in missing.stderr and not target.exists()

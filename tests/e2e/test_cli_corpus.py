"""`bourse corpus stats` and `bourse corpus build`: the real CLI in subprocesses.

Documents are nobody's here: Faker paragraphs around `benchmarks/redact.py`'s documents
(identifiers validated by python-stdnum and phonenumbers). Checked: counts add up, `stats`
writes nothing, a version built `--against` the earlier one drops its near-duplicates, opt-outs
and licences outside the allow-list are gone, bad input is one named error line, and nothing
printed holds a planted value.
"""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
import sys
import zipfile
from hashlib import sha256
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker
from helpers import bourse, cli_env, make_project
from standards_checks import croissant_issues, refuse_network

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from redact import LOCALES, Doc, evaluation_set

RULES = """\
licences: [CC-BY-4.0, CC0-1.0]
quality: {min_stop_words: null, c4_min_sentences: null, min_doc_words: 20}
opt_out:
  ids: [IDS]
  domains: [blog.example.org]
"""


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict[str, Any]], list[Doc]]:
    planted = evaluation_set(4, seed=53)
    fakers = {loc: Faker("id_ID" if loc == "ms" else loc) for loc in LOCALES}
    for f in fakers.values():
        f.seed_instance(53)
    rng = random.Random(53)
    records = [
        {
            "id": f"doc-{i}",
            "text": fakers[d.locale].paragraph(nb_sentences=5) + "\n\n" + d.text,
            "source": f"https://{rng.choice(['news', 'chat', 'blog'])}.example.org/{i}",
            "licence": rng.choice(["CC-BY-4.0", "CC0-1.0", "proprietary"]),
            "author": fakers[d.locale].name(),
        }
        for i, d in enumerate(planted)
    ]
    return records, planted


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def _values(records: list[dict[str, Any]], planted: list[Doc]) -> list[str]:
    """Every planted value, and each author's name (personal data read for the opt-out)."""
    return [d.text[a:b] for d in planted for a, b, _ in d.planted] + [r["author"] for r in records]


def _silent(proc: Any, values: list[str]) -> None:
    for value in values:
        assert value not in proc.stdout and value not in proc.stderr


def test_stats_counts_and_writes_nothing(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    records, planted = corpus
    data = tmp_path / "data"  # the CLI's own state goes to the project folder, tmp_path
    data.mkdir()
    source = _jsonl(data / "in.jsonl", records)
    proc = bourse(cli_env(tmp_path), "corpus", "stats", str(source), "--json")
    stats = json.loads(proc.stdout)
    assert stats["documents_in"] == len(records)
    assert stats["kept"] + sum(stats["removed"].values()) == len(records)
    assert sum(stats["languages_identified"].values()) == len(records)
    assert stats["redacted"] and stats["shards"] == [] and stats["bytes_written"] == 0
    assert [p.name for p in data.iterdir()] == ["in.jsonl"]
    _silent(proc, _values(records, planted))
    table = bourse(cli_env(tmp_path), "corpus", "stats", str(source))
    assert "leftover rate" in table.stdout and "PHONE_NUMBER" in table.stdout
    assert "duplicate clusters" in table.stdout
    _silent(table, _values(records, planted))


def test_build_then_a_next_version_against_it(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    records, planted = corpus
    opted = [r["id"] for r in records[::5]]
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("IDS", ", ".join(opted)), encoding="utf-8")
    env = cli_env(tmp_path)
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    first = bourse(env, "corpus", "build", str(_jsonl(tmp_path / "a.jsonl", records)),
                   "--out", str(v1), "--rules", str(rules), "--json")  # fmt: skip
    stats = json.loads(first.stdout)
    assert stats["kept"] + sum(stats["removed"].values()) == len(records)
    out = pq.read_table(sorted(v1.glob("part-*.parquet"))).to_pylist()
    assert len(out) == stats["kept"] > 0 and stats["removed"]["opt_out"] >= len(opted)
    for row in out:
        assert row["id"] not in opted and row["licence"] != "proprietary"
        assert "blog.example.org" not in row["source"]
    kept = {row["id"] for row in out}
    rng = random.Random(1)
    again = []
    for r in records:
        if r["id"] in kept:
            chars = list(r["text"])
            at = rng.choice([i for i, c in enumerate(chars) if c.isalpha()])
            chars[at] = "ж"
            again.append({**r, "id": r["id"] + "-v2", "text": "".join(chars)})
    second = bourse(env, "corpus", "build", str(_jsonl(tmp_path / "b.jsonl", again)),
                    "--out", str(v2), "--rules", str(rules), "--against", str(v1))  # fmt: skip
    assert "near_duplicate" in second.stdout
    result = json.loads((v2 / "stats.json").read_text())
    assert result["removed"] == {"near_duplicate": len(again)} and result["kept"] == 0
    _silent(first, _values(records, planted))
    _silent(second, _values(records, planted))


@pytest.mark.filterwarnings(  # mlcroissant's own call, deprecated by pandas 3.1
    "ignore:The inplace keyword in DataFrame.reset_index:pandas.errors.Pandas4Warning"
)
def test_a_built_version_carries_a_croissant_card_mlcroissant_reads(
    tmp_path: Path,
    corpus: tuple[list[dict[str, Any]], list[Doc]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24 item 6: the version's Croissant 1.1 card, with the RAI fields from what the build
    measured, passes mlcroissant offline, and its records are the shards' documents."""
    records, planted = corpus
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("IDS", records[0]["id"]), encoding="utf-8")
    version = tmp_path / "v1"
    built = bourse(cli_env(tmp_path), "corpus", "build", str(_jsonl(tmp_path / "a.jsonl", records)),
                   "--out", str(version), "--rules", str(rules), "--name", "MY support chats",
                   "--version", "2.1.0", "--creator", "Layan Pelanggan Sdn Bhd",
                   "--json")  # fmt: skip
    stats = json.loads(built.stdout)
    path = version / "croissant.json"
    text = path.read_text(encoding="utf-8")
    for value in _values(records, planted):
        assert value not in text  # counts and category names only
    attempts = refuse_network(monkeypatch, "a card must be read offline")
    errors, warnings, report = croissant_issues(path)
    assert errors == [] and warnings == [], report
    read = list(mlc.Dataset(jsonld=path).records("records"))
    assert attempts == []
    shards = pq.read_table(sorted(version.glob("part-*.parquet")))
    assert sorted(r["records/id"].decode() for r in read) == sorted(shards.column("id").to_pylist())
    card = json.loads(text)
    assert card["name"] == {"en": "MY support chats"} or card["name"] == "MY support chats"
    assert card["license"] == "CC-BY-4.0, CC0-1.0"
    assert card["version"] == "2.1.0" and card["creator"]["name"] == "Layan Pelanggan Sdn Bhd"
    shards_sha = sha256(
        "".join(d["sha256"] for d in card["distribution"] if "sha256" in d).encode()
    )
    assert shards_sha.hexdigest() in card["citeAs"] and "version = {2.1.0}" in card["citeAs"]
    steps = card["rai:dataPreprocessingProtocol"]
    assert f"{stats['removed']['opt_out']} removed" in steps[0]
    assert f"{stats['removed'].get('licence', 0)} removed" in steps[1]
    personal = card["rai:personalSensitiveInformation"]
    for category, count in stats["redacted"].items():
        assert f"{category} {count}" in personal
    assert f"{stats['leftover_rate']:.4%}" in personal
    shares = card["rai:dataBiases"][0]
    for language in stats["languages"]:
        assert f"{language} " in shares
    sizes = {f["name"]: f["contentSize"] for f in card["distribution"] if "contentSize" in f}
    assert sizes == {p.name: f"{p.stat().st_size} B" for p in version.glob("part-*.parquet")}


def test_folder_and_zip_inputs(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    records, planted = corpus
    folder = tmp_path / "drop"
    folder.mkdir()
    for r in records[:6]:
        (folder / f"{r['id']}.txt").write_text(r["text"], encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(records[6:12]), folder / "more.parquet")
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.iterdir()):
            z.write(path, path.name)
    for source in (folder, archive):
        proc = bourse(cli_env(tmp_path), "corpus", "stats", str(source), "--json")
        assert json.loads(proc.stdout)["documents_in"] == 12
        _silent(proc, _values(records, planted))


def test_bad_json_line_is_named_and_no_version_is_left(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    records, planted = corpus
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines[-2] = lines[-2][:-1]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "v"
    for command in ("stats", "build"):
        args = ["corpus", command, str(source)] + (
            ["--out", str(out)] if command == "build" else []
        )
        proc = bourse(cli_env(tmp_path), *args, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"{source}: line {len(lines) - 1}" in proc.stderr
        _silent(proc, _values(records, planted))
    assert not out.exists() or list(out.iterdir()) == []


def test_a_version_not_named_major_minor_patch_is_refused_before_anything_is_built(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    records, _ = corpus
    out = tmp_path / "v"
    proc = bourse(cli_env(tmp_path), "corpus", "build", str(_jsonl(tmp_path / "a.jsonl", records)),
                  "--out", str(out), "--version", "v2", check=False)  # fmt: skip
    assert proc.returncode == 1 and "--version 'v2'" in proc.stderr and "1.0.0" in proc.stderr
    assert not out.exists()


def test_bad_rules_are_listed(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    records, _ = corpus
    rules = tmp_path / "rules.yaml"
    rules.write_text("languages: [ms]\nquality: {min_words: 3}\nlicenses: [MIT]\n", "utf-8")
    source = _jsonl(tmp_path / "in.jsonl", records[:3])
    args = ("corpus", "stats", str(source), "--rules", str(rules))
    proc = bourse(cli_env(tmp_path), *args, check=False)
    assert proc.returncode == 1 and "quality.min_words" in proc.stderr and "licenses" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_over_the_leftover_limit_exits_1(tmp_path: Path) -> None:
    """Documents whose re-scan still finds an address the redaction missed, limit 0."""
    from databourse.pii.text_redact import leftover, redact_batch

    docs = evaluation_set(100, seed=24)
    redacted, _ = redact_batch(pa.array([d.text for d in docs], pa.large_string()))
    missed = [i for i, t in enumerate(redacted.to_pylist()) if leftover(pa.array([t]))]
    assert missed, "the redaction now misses nothing here: pick other documents"
    source = _jsonl(tmp_path / "in.jsonl", [{"text": docs[i].text} for i in missed])
    rules = tmp_path / "rules.yaml"
    rules.write_text("leftover_limit: 0\nquality: {min_doc_words: 1, c4_min_sentences: null,"
                     " min_stop_words: null, min_alpha_words_ratio: null}\n", "utf-8")  # fmt: skip
    proc = bourse(cli_env(tmp_path), "corpus", "build", str(source), "--out",
                  str(tmp_path / "v"), "--rules", str(rules), check=False)  # fmt: skip
    assert proc.returncode == 1 and "over the limit" in proc.stderr
    assert json.loads((tmp_path / "v" / "stats.json").read_text())["passed"] is False
    _silent(proc, [docs[i].text[a:b] for i in missed for a, b, _ in docs[i].planted])


def test_an_opt_out_request_is_kept_by_the_trail_and_applied_by_the_next_build(
    tmp_path: Path, corpus: tuple[list[dict[str, Any]], list[Doc]]
) -> None:
    """Issue 24 item 5: `bourse corpus opt-out` records a request (a document id, an author in
    another case and spacing, a domain) in the audit trail, authors only as keyed digests;
    `opt-outs` lists it; a build with --product leaves those documents out, one without does
    not; an insider who edits the request in the database stops the build instead of quietly
    putting the documents back."""
    records, planted = corpus
    project = make_project(tmp_path / "project")
    env = cli_env(project, DATABOURSE_AUDIT_KEY=secrets.token_hex(32))
    source = _jsonl(tmp_path / "in.jsonl", records)
    author = records[1]["author"]
    names = tmp_path / "authors.txt"
    names.write_text(f"  {author.upper()}  \n\n", encoding="utf-8")
    asked = bourse(env, "corpus", "opt-out", "my-chats", "--reason", "REQ-2026-117",
                   "--id", records[0]["id"], "--domain", "Chat.Example.ORG.",
                   "--authors-file", str(names), "--json")  # fmt: skip
    summary = json.loads(asked.stdout)
    assert (summary["ids"], summary["authors"], summary["domains"]) == (1, 1, 1)
    listed = bourse(env, "corpus", "opt-outs", "my-chats")
    assert "REQ-2026-117" in listed.stdout and "chat.example.org" in listed.stdout
    assert "1 author(s)" in listed.stdout
    out = {r["id"] for r in records if r["id"] == records[0]["id"] or r["author"] == author}
    out |= {r["id"] for r in records if r["source"].startswith("https://chat.example.org/")}
    assert len(out) >= 3
    built = bourse(env, "corpus", "build", str(source), "--out", str(tmp_path / "v1"),
                   "--product", "my-chats", "--json")  # fmt: skip
    stats = json.loads(built.stdout)
    assert stats["removed"]["opt_out"] == len(out)
    shards = pq.read_table(sorted((tmp_path / "v1").glob("part-*.parquet")))
    assert not out & set(shards.column("id").to_pylist())
    plain = json.loads(bourse(env, "corpus", "stats", str(source), "--json").stdout)
    assert "opt_out" not in plain["removed"]
    for proc in (asked, listed, built):
        _silent(proc, _values(records, planted))
    for path in (project / "state").glob("catalog.db*"):
        assert author.encode() not in path.read_bytes() and author.upper().encode() not in (
            path.read_bytes()
        )
    with sqlite3.connect(project / "state" / "catalog.db") as db:  # the insider's edit
        db.execute("UPDATE audit_events SET detail = replace(detail, ?, 'doc-none')",
                   (records[0]["id"],))  # fmt: skip
    again = bourse(env, "corpus", "build", str(source), "--out", str(tmp_path / "v2"),
                   "--product", "my-chats", check=False)  # fmt: skip
    assert again.returncode == 1 and "do not verify" in again.stderr
    assert not (tmp_path / "v2").exists() or list((tmp_path / "v2").iterdir()) == []


def test_a_bad_opt_out_request_is_one_clear_error_and_records_nothing(tmp_path: Path) -> None:
    """No file, a file not in UTF-8, a request naming nothing, a product name that is no name:
    each exits 1 with one line saying what, and the trail holds no request."""
    env = cli_env(make_project(tmp_path / "project"), DATABOURSE_AUDIT_KEY=secrets.token_hex(32))
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Muñoz\n".encode("latin-1"))
    cases = [
        (["my-chats", "--authors-file", str(tmp_path / "none.txt")], "not a readable UTF-8 file"),
        (["my-chats", "--authors-file", str(latin)], "not a readable UTF-8 file"),
        (["my-chats"], "names documents, authors or domains"),
        (["../chats", "--id", "d1"], "a product id is lowercase letters"),
        (["my-chats", "--id", "d1", "--by", "\u200b"], "the recorder"),
    ]
    for args, says in cases:
        proc = bourse(env, "corpus", "opt-out", *args, "--reason", "R", check=False)
        assert proc.returncode == 1 and says in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "Muñoz" not in proc.stderr
    listed = bourse(env, "corpus", "opt-outs", "my-chats", "--json")
    assert json.loads(listed.stdout) == []

"""A corpus version as a Croissant 1.1 card with Responsible-AI (RAI 1.0) fields.

`write_card` writes it beside a version `corpus.build.build_version` wrote (CARD_NAME, renamed
into place), its shards hashed. `corpus_card` is pure: the version's stats (counts only), its
shards (path, bytes, sha256) and the rules that built it. The distribution and record set are
those of a table version (`croissant.distribution`, `croissant.record_set`); the `rai:` fields
state what the build measured, step by step, and the rules it applied: counts, rates, category
names and thresholds, never a document's text. The context is inline: nothing is fetched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from databourse.corpus.build import OUTPUT, CorpusRules, CorpusStats, write_atomically
from databourse.ingest.staged_integrity import file_digest
from databourse.product.package import schema_of
from databourse.standards.croissant import CONFORMS_TO, CONTEXT, distribution, record_set

CARD_NAME = "croissant.json"

DOCUMENT_FIELDS = {  # the shards' columns (corpus.build.OUTPUT) and what each holds
    "id": "the document's id, as the provider gave it",
    "text": "the document's text, personal data replaced by typed placeholders or pseudonyms",
    "language": "the language identified (py3langid code; zh-Hans, zh-Hant; mixed)",
    "source": "where the provider had the document from (a URL or a system)",
    "licence": "the document's licence, as the provider gave it",
    "date": "the document's date, as the provider gave it",
    "consent": "whether the author consented, as the provider gave it",
}


def write_card(
    out_dir: Path,
    stats: CorpusStats,
    rules: CorpusRules,
    name: str,
    version: str = "1.0.0",
    creator: str | None = None,
) -> Path:
    """The card of the version in `out_dir` (its shards hashed), written under a temporary
    name and renamed into place; its path."""
    card = corpus_card(
        stats.to_dict(),
        [_shard_entry(out_dir / shard) for shard in stats.shards],
        rules.as_json(),
        schema_of(OUTPUT.empty_table()),
        name=name,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        version=version,
        creator=creator,
    )
    text = json.dumps(card, indent=2, ensure_ascii=False)
    target = out_dir / CARD_NAME
    write_atomically(target, lambda path: path.write_text(text, encoding="utf-8"))
    return target


def _shard_entry(path: Path) -> dict[str, Any]:
    sha256, size = file_digest(path)
    return {"path": path.name, "bytes": size, "sha256": sha256}


def corpus_card(
    stats: dict[str, Any],
    shards: list[dict[str, Any]],
    rules: dict[str, Any],
    schema: list[dict[str, str]],
    *,
    name: str,
    created: str,
    version: str = "1.0.0",
    creator: str | None = None,
    urls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Croissant card of a corpus version.

    `shards`: {"path", "bytes", "sha256"} of each Parquet shard, relative to the version's
    folder; `rules`: `CorpusRules.model_dump(mode="json")`; `schema`: the shards' columns as
    {"name", "type"} (Arrow type names); `version`: the version's name (Croissant wants
    MAJOR.MINOR.PATCH); `creator`: who built it (the provider or the exchange), if known. The
    citation names the version by the sha256 of its shards, which is what it is; `urls`: a
    shard's path -> its URI in the store (the catalog's cards), else paths relative to the card."""
    kept = stats["kept"]
    languages = ", ".join(f"{k} {v}" for k, v in stats["languages"].items()) or "none"
    allowed = rules.get("licences")
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": f"A text corpus of {kept} documents (by language: {languages}) in "
        f"{len(shards)} Parquet shard(s), built from {stats['documents_in']} documents: "
        "opted-out, unlicensed, unlisted-language, low-quality and duplicate documents removed, "
        f"personal data in the text replaced by {replacement(rules)}.",
        "version": version,
        "dateCreated": created,
        "datePublished": created,
        "citeAs": cite_as(name, version, created, shards, creator),
        "license": ", ".join(sorted(allowed))
        if allowed
        else "per document: its licence field (no allow-list was applied)",
        "distribution": distribution(shards, urls or {}) if shards else [],
        "rai:dataCollection": "Documents handed in by the provider (JSON Lines, Parquet, text "
        f"files or zip archives of them), each with its source and licence: "
        f"{stats['documents_in']} read, {stats['bytes_in']} bytes of text.",
        "rai:dataPreprocessingProtocol": preprocessing(stats, rules),
        "rai:personalSensitiveInformation": personal(stats, rules),
        "rai:dataLimitations": limitations(stats, rules),
        "rai:dataBiases": [
            "Share of the kept documents by identified language: "
            + (
                ", ".join(f"{k} {v / kept:.1%}" for k, v in stats["languages"].items())
                if kept
                else "no document kept"
            )
            + "."
        ],
    }
    if creator:
        doc["creator"] = {"@type": "sc:Organization", "name": creator}
    if shards:
        records = record_set({"files": shards, "schema": schema, "row_count": kept})
        for column in records["field"]:  # what each holds, then its type
            about = DOCUMENT_FIELDS.get(column["name"], column["name"])
            column["description"] = f"{about}: {column['description']}"
        doc["recordSet"] = [records]
    return doc


def published_card(
    manifest: dict[str, Any],
    rules: CorpusRules,
    urls: Mapping[str, str],
    *,
    name: str,
    creator: str | None,
) -> dict[str, Any]:
    """The card of a published corpus version, from its manifest (its `corpus` measurements and
    files) and the rules that built it (the catalog's card of the version)."""
    stats = dict(manifest["corpus"])
    stats["passed"] = stats["leftover_rate"] <= stats["leftover_limit"]
    return corpus_card(
        stats,
        manifest["files"],
        rules.as_json(),
        manifest["schema"],
        name=name,
        created=manifest["created_at"],
        version=manifest["version"],
        creator=creator,
        urls=urls,
    )


def cite_as(
    name: str, version: str, created: str, shards: list[dict[str, Any]], creator: str | None
) -> str:
    """A BibTeX entry naming the version by the sha256 of its shards' hashes in order."""
    key = "".join(c if c.isalnum() else "_" for c in f"{name}_{version}").strip("_").lower()
    content = hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest()
    author = f"author = {{{creator}}}, " if creator else ""
    return (
        f"@misc{{{key or 'corpus'}, title = {{{name} {version}}}, {author}year = "
        f"{{{created[:4]}}}, version = {{{version}}}, note = {{text corpus, shards sha256 "
        f"{content}}}}}"
    )


def preprocessing(stats: dict[str, Any], rules: dict[str, Any]) -> list[str]:
    """Each step in its order, with what it removed (a document counts at the first step)."""
    removed = stats["removed"]
    opt_out = rules.get("opt_out") or {}
    listed = rules.get("languages")
    dedup = rules.get("dedup") or {}
    filters = {k.removeprefix("filter:"): v for k, v in removed.items() if k.startswith("filter:")}
    return [
        f"Opt-out ({len(opt_out.get('ids') or [])} document ids, "
        f"{len(opt_out.get('authors') or [])} authors, {len(opt_out.get('domains') or [])} "
        f"source domains): {removed.get('opt_out', 0)} removed.",
        "Licence allow-list ("
        + (", ".join(sorted(rules["licences"])) if rules.get("licences") else "none applied")
        + f"): {removed.get('licence', 0)} removed.",
        "Language identification per document (py3langid, its model shipped in the package); "
        + (f"languages kept: {', '.join(sorted(listed))}" if listed else "every language kept")
        + f"; code-switched documents {'kept' if rules.get('keep_mixed', True) else 'removed'}: "
        f"{removed.get('language', 0)} removed.",
        "Quality filters (the Gopher and C4 rules, thresholds as configured): "
        + (", ".join(f"{k} {v}" for k, v in sorted(filters.items())) or "none")
        + " removed.",
        f"Exact duplicates (normalized text hash): {removed.get('exact_duplicate', 0)} removed; "
        f"near duplicates (MinHash LSH, {dedup.get('num_perm')} permutations, "
        f"{dedup.get('shingle_size')}-shingles, Jaccard threshold {dedup.get('threshold')}): "
        f"{removed.get('near_duplicate', 0)} removed; within this version and against the "
        "earlier versions' index. Clusters by size: "
        + (", ".join(f"{k}: {v}" for k, v in stats["duplicate_clusters"].items()) or "none")
        + ".",
        f"Personal data in the text replaced by {replacement(rules)}, then the output "
        "scanned again for what is left.",
    ]


def replacement(rules: dict[str, Any]) -> str:
    """What stands where personal data was, as the rules say."""
    if rules.get("redaction") == "pseudonym":
        return (
            "keyed pseudonyms (such as <PERSON_NAME:kqzbtrmhcw>: one token per person or "
            "number under a key the exchange keeps, so mentions of one person stay linked)"
        )
    return "typed placeholders (such as <CN_RESIDENT_ID>)"


def personal(stats: dict[str, Any], rules: dict[str, Any]) -> str:
    """What the redaction replaced and what its second scan still found, by category; the
    pseudonyms it holds (personal data still, de-identified and not anonymous)."""
    replaced = ", ".join(f"{k} {v}" for k, v in stats["redacted"].items()) or "none"
    tokens = stats.get("pseudonyms") or {}
    held = ", ".join(f"{k} {v}" for k, v in tokens.items())
    left = ", ".join(f"{k} {v}" for k, v in stats["leftover"].items()) or "none"
    verdict = "within" if stats["passed"] else "over"
    per_million = stats["leftover_per_million_characters"]
    return (
        f"Identifiers found in the text and replaced by {replacement(rules)}: {replaced}. "
        + (
            f"Distinct pseudonyms the text holds: {held}; pseudonymized text is still personal "
            "data (de-identified, not anonymized). "
            if tokens
            else ""
        )
        + "Found "
        f"again by a second scan of the output: {left}; a leftover rate of "
        f"{stats['leftover_rate']:.4%} of those found ({per_million:.2f} per million "
        f"characters), {verdict} the limit of {stats['leftover_limit']:.4%}. The "
        "scan finds identifiers by their formats and checksums, and names and addresses only as "
        "far as its rules recognize them."
    )


def limitations(stats: dict[str, Any], rules: dict[str, Any]) -> list[str]:
    """What a user of the corpus should know of what the build could not ensure."""
    threshold = (rules.get("dedup") or {}).get("threshold")
    out = [
        f"Near duplicates are judged by estimated Jaccard similarity at {threshold}: documents "
        "less alike than that are kept, and MinHash may miss a pair above it.",
        "Language labels come from a statistical model: short or code-switched documents may "
        "carry the wrong label.",
    ]
    if stats["leftover"]:
        out.append(
            f"{sum(stats['leftover'].values())} identifier(s) were still found after "
            "redaction (see the personal information statement)."
        )
    return out

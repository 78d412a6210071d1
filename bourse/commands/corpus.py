"""`bourse corpus`: measure a text corpus, and build a corpus version into Parquet shards."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bourse.commands.shared import JsonOpt, fail, out, print_json
from bourse.display import safe
from databourse.errors import DataBourseError

if TYPE_CHECKING:
    from databourse.corpus.build import CorpusRules

corpus_app = typer.Typer(
    help="Text corpora for AI training: measure one, build a version.", no_args_is_help=True
)
InputArg = Annotated[
    Path, typer.Argument(help="A JSONL, Parquet or .txt file, a folder of them, or a .zip.")
]
TextField = Annotated[str, typer.Option(help="The field or column that holds the text.")]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="A YAML file of corpus rules (default rules).")
]


@corpus_app.command("stats")
def stats(
    path: InputArg, text_field: TextField = "text", rules: RulesOpt = None, as_json: JsonOpt = False
) -> None:
    """Print languages, duplicates, filter counts, redaction counts and the leftover rate of
    a corpus, writing nothing (counts only, never a value)."""
    from databourse.corpus.build import measure
    from databourse.corpus.documents import read_documents

    try:
        result = measure(read_documents(path, text_field), _rules(rules)).to_dict()
    except DataBourseError as exc:
        fail(str(exc))
    _show(path.name, result, as_json)


@corpus_app.command("build")
def build(
    path: InputArg,
    out_dir: Annotated[
        Path, typer.Option("--out", help="The new version's folder (new or empty).")
    ],
    text_field: TextField = "text",
    rules: RulesOpt = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against", help="The earlier version's folder: its documents count as seen."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The corpus's name in its card (the folder's).")
    ] = None,
    version: Annotated[
        str, typer.Option("--version", help="The version's name in its card (MAJOR.MINOR.PATCH).")
    ] = "1.0.0",
    creator: Annotated[
        str | None, typer.Option("--creator", help="Who built it, named in its card.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a corpus version: opt-out, licence, language, quality filters, de-duplication,
    redaction, leftover scan, Parquet shards with the dedup index, stats.json and croissant.json
    (its Croissant 1.1 card with the RAI fields) beside them. Exits 1 when the leftover rate is
    over the rules' limit."""
    from databourse.corpus.build import build_version, leftover_gate
    from databourse.corpus.documents import read_documents
    from databourse.standards.corpus_card import write_card

    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        fail(f"--version {version!r}: a version is named MAJOR.MINOR.PATCH, e.g. 1.0.0")
    try:
        chosen = _rules(rules)
        built = build_version(read_documents(path, text_field), chosen, out_dir, against)
        write_card(out_dir, built, chosen, name or out_dir.name, version, creator)
    except DataBourseError as exc:
        fail(str(exc))
    result = built.to_dict()
    _show(path.name, result, as_json)
    if not as_json:
        out.print(
            safe(f"{len(result['shards'])} shards, {result['bytes_written']} bytes -> {out_dir}")
        )
    try:
        leftover_gate(built)
    except DataBourseError as exc:
        fail(str(exc))


def _rules(path: Path | None) -> CorpusRules:
    from databourse.corpus.build import CorpusRules, load_rules

    return CorpusRules() if path is None else load_rules(path)


def _show(name: str, result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    out.print(safe(f"{name}: {result['documents_in']} documents in, {result['kept']} kept"))
    for title, key in (
        ("languages identified", "languages_identified"),
        ("languages kept", "languages"),
        ("removed", "removed"),
        ("redacted", "redacted"),
        ("leftover", "leftover"),
    ):
        out.print(safe(f"{title}:"))
        for label, n in result[key].items():
            out.print(safe(f"  {label:<40} {n:>10}"))
    clusters = ", ".join(f"{n} of {size}" for size, n in result["duplicate_clusters"].items())
    out.print(safe(f"duplicate clusters (size): {clusters or 'none'}"))
    out.print(
        safe(
            f"leftover rate: {result['leftover_rate']:.4%} of identifiers found"
            f" ({result['leftover_per_million_characters']:.2f} per million characters),"
            f" limit {result['leftover_limit']:.4%}"
        )
    )

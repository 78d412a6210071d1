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
    from databourse.config.corpus import CorpusRules
    from databourse.corpus.pseudonyms import TextPseudonyms

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


ProductOpt = Annotated[
    str | None,
    typer.Option(
        "--product",
        help="Also apply the opt-out requests the catalog holds for this corpus product.",
    ),
]


@corpus_app.command("stats")
def stats(
    path: InputArg,
    text_field: TextField = "text",
    rules: RulesOpt = None,
    product: ProductOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print languages, duplicates, filter counts, redaction counts and the leftover rate of
    a corpus, writing nothing (counts only, never a value)."""
    from databourse.corpus.build import measure
    from databourse.corpus.documents import read_documents

    try:
        chosen, keys = _requested(_rules(rules), product)
        documents = read_documents(path, text_field)
        result = measure(documents, chosen, None, keys, _pseudonyms(chosen)).to_dict()
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
    product: ProductOpt = None,
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
        chosen, keys = _requested(_rules(rules), product)
        documents, pseudonyms = read_documents(path, text_field), _pseudonyms(chosen)
        built = build_version(documents, chosen, out_dir, against, keys, pseudonyms)
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


@corpus_app.command("opt-out")
def opt_out(
    product: Annotated[str, typer.Argument(help="The corpus product the request is for.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (the request's reference).")],
    ids: Annotated[list[str] | None, typer.Option("--id", help="A document id.")] = None,
    domains: Annotated[
        list[str] | None, typer.Option("--domain", help="A source domain (and its subdomains).")
    ] = None,
    authors_file: Annotated[
        Path | None,
        typer.Option(
            "--authors-file",
            help="A UTF-8 file of author names, one per line (names are never arguments: a "
            "command line is seen by every user of the machine and kept in shell history).",
        ),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who records it (default: $USER).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an opt-out request: the product's next versions leave out those documents, the
    audit trail keeps the request (authors only as keyed digests), `opt-outs` lists it."""
    import getpass

    from tasks import resources

    try:
        authors = _authors(authors_file) if authors_file else []
        event = resources.catalog().record_opt_out(
            product, ids=ids or [], authors=authors, domains=domains or [], reason=reason,
            actor=by or getpass.getuser(),
        )  # fmt: skip
    except (DataBourseError, ValueError) as exc:
        fail(str(exc))
    detail = event["detail"]
    summary = {
        "seq": event["seq"],
        "product": product,
        "ids": len(detail["ids"]),
        "authors": len(detail["author_digests"]),
        "domains": len(detail["domains"]),
    }
    if as_json:
        print_json(summary)
        return
    out.print(
        safe(
            f"opt-out request {summary['seq']} for {product}: {summary['ids']} document id(s), "
            f"{summary['authors']} author(s) (kept as keyed digests), {summary['domains']} "
            "domain(s); the next version built with --product leaves them out"
        )
    )


@corpus_app.command("opt-outs")
def opt_outs(
    product: Annotated[str, typer.Argument(help="The corpus product.")], as_json: JsonOpt = False
) -> None:
    """List the product's opt-out requests the audit trail authenticates (authors as counts)."""
    from tasks import resources

    try:
        events, _ = resources.catalog().opt_out_requests(product)
    except DataBourseError as exc:
        fail(str(exc))
    rows = [
        {
            "seq": e["seq"],
            "ids": e["detail"]["ids"],
            "domains": e["detail"]["domains"],
            "authors": len(e["detail"]["author_digests"]),
            "reason": e["detail"]["reason"],
        }
        for e in events
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(
            safe(
                f"{row['seq']:>5} ids {', '.join(row['ids']) or '-'}; domains "
                f"{', '.join(row['domains']) or '-'}; {row['authors']} author(s); {row['reason']}"
            )
        )
    out.print(safe(f"{len(rows)} request(s) for {product}"))


def _authors(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable UTF-8 file ({type(exc).__name__})") from None
    return [line.strip() for line in lines if line.strip()]


def _requested(
    rules: CorpusRules, product: str | None
) -> tuple[CorpusRules, dict[str, bytes] | None]:
    """The rules with the catalog's opt-out requests of `product` added, and the keys their
    author digests were made under (the rules as they are without a product)."""
    if product is None:
        return rules, None
    from databourse.corpus.opt_out import with_requests
    from tasks import resources

    events, keys = resources.catalog().opt_out_requests(product)
    return rules.model_copy(update={"opt_out": with_requests(rules.opt_out, events)}), keys


def _pseudonyms(rules: CorpusRules) -> TextPseudonyms | None:
    """Under the pseudonym key (`$DATABOURSE_PSEUDONYM_KEY`, the key file) of the rules'
    `key_version`, when they say `redaction: pseudonym`."""
    if rules.redaction != "pseudonym":
        return None
    from tasks import resources

    return resources.text_pseudonymizer(rules.key_version)


def _rules(path: Path | None) -> CorpusRules:
    from databourse.config.corpus import CorpusRules
    from databourse.corpus.build import load_rules

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
        ("distinct pseudonyms", "pseudonyms"),
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

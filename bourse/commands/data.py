"""Tools on files and the store: scan a file for personal data, redact the personal data in a
text field, profile a dataset, anonymize a file by a product's rules, verify a published version
or the whole store."""

from __future__ import annotations

import csv
import itertools
import json
import os
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bourse.commands.shared import JsonOpt, fail, out, print_json
from bourse.display import safe, yaml_text
from databourse.errors import DataBourseError

if TYPE_CHECKING:
    from databourse.corpus.pseudonyms import TextPseudonyms

quality_app = typer.Typer(help="Data quality suites.", no_args_is_help=True)


def scan(
    path: Annotated[Path, typer.Argument(help="A CSV, Parquet or JSONL file.")],
    as_json: JsonOpt = False,
    threshold: Annotated[float, typer.Option(help="Share of values that must match.")] = 0.8,
    sample_rows: Annotated[int, typer.Option(help="Rows used to pick a column's category.")] = 2000,
    dirty_threshold: Annotated[
        float, typer.Option(help="Share of non-empty values that classifies a messy column.")
    ] = 0.5,
) -> None:
    """Classify every column of any file by content; prints categories and shares, never values."""
    from bourse.scan import scan_file

    code, text = scan_file(
        path,
        as_json=as_json,
        threshold=threshold,
        sample_rows=sample_rows,
        dirty_threshold=dirty_threshold,
    )
    if code:
        fail(text, code)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@quality_app.command("profile")
def quality_profile(
    provider: Annotated[str, typer.Argument(help="The provider's id (configs/providers/).")],
    dataset: Annotated[str, typer.Argument(help="One of the provider's datasets.")],
    file: Annotated[
        Path | None,
        typer.Option(help="Profile this CSV/Parquet file instead of the latest ingest."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Sample size.")] = 100_000,
) -> None:
    """Propose a starting expectation suite (YAML) from a sample, for review and commit."""
    from bourse.datatools import profile
    from tasks import resources

    try:
        text = profile(resources.config(), resources.store(), provider, dataset, file, rows)
    except DataBourseError as exc:
        fail(str(exc))
    sys.stdout.write(yaml_text(text))


def anonymize(
    path: Annotated[Path, typer.Argument(help="A CSV or Parquet file of the product's source.")],
    product: Annotated[str, typer.Option(help="The product whose rules apply.")],
    out: Annotated[Path, typer.Option(help="Where to write the anonymized Parquet.")],
    as_json: JsonOpt = False,
) -> None:
    """Apply a product's rules and privacy model to any file; print what it did (--json: the
    whole privacy report)."""
    from bourse.datatools import anonymize_file
    from databourse.privacy.pseudonyms import needs_key
    from tasks import resources

    cfg = resources.config()
    spec = cfg.product(product)
    try:
        key = resources.pseudonym_keys(spec) if needs_key(spec) else None
        report = anonymize_file(cfg, product, path, out, key)
    except DataBourseError as exc:
        fail(str(exc))
    if as_json:
        print_json(report)
        return
    from bourse.commands.shared import out as console  # `out` is the file given here
    from bourse.datatools import privacy_lines

    for line in privacy_lines(report):
        console.print(safe(line))


def verify(
    ref: Annotated[str | None, typer.Argument(help="PRODUCT@VERSION (or --all)")] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Check the whole store against the catalog: raw sha256 against _ingest.json, "
            "manifests and their files, published versions, markets, the audit chain.",
        ),
    ] = False,
    grace_hours: Annotated[
        float,
        typer.Option(help="With --all: younger objects without their record are a live run."),
    ] = 6.0,  # the ingest task's timeout
    quick: Annotated[
        bool, typer.Option("--quick", help="With --all: compare sizes, skip re-hashing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-check a published version from its files, or with --all the whole store and catalog.

    Exits 1 on any failure (--all: on any error finding; warnings and info do not fail).
    """
    from bourse.datatools import verify_all, verify_version
    from tasks import resources

    if everything:
        try:
            report, lines = verify_all(
                resources.store(), resources.catalog(), grace_hours, not quick, resources.config()
            )
        except DataBourseError as exc:
            fail(str(exc))
        if as_json:
            print_json(report.to_json())
        else:
            for text in lines:
                out.print(safe(text))
        if not report.ok:
            raise typer.Exit(1)
        return
    product, _, version = (ref or "").partition("@")
    if not version:
        fail("give the exact version (PRODUCT@VERSION) or --all")
    try:
        problems = verify_version(
            resources.config(), resources.store(), product, version, resources.catalog()
        )
    except DataBourseError as exc:
        problems = [str(exc)]
    if as_json:
        print_json(
            {"product": product, "version": version, "ok": not problems, "problems": problems}
        )
        if problems:
            raise typer.Exit(1)
    if problems:
        fail(f"{ref} fails verification:", details=problems)
    out.print(safe(f"{ref}: files, content hash, privacy model and identifier scan all verified"))


def redact(
    path: Annotated[Path, typer.Argument(help="A JSONL, Parquet or CSV file.")],
    out_path: Annotated[
        Path, typer.Option("--out", help="Where to write the redacted file (same format).")
    ],
    text_field: Annotated[str, typer.Option(help="The field or column that holds the text.")] = (
        "text"
    ),
    pseudonyms: Annotated[
        bool,
        typer.Option(
            "--pseudonyms",
            help="Keyed pseudonyms (<PERSON_NAME:kqzbtrmhcw>, one per person) under the "
            "pseudonym key instead of placeholders.",
        ),
    ] = False,
    key_version: Annotated[
        str, typer.Option("--key-version", help="The pseudonym key's version (with --pseudonyms).")
    ] = "default",
    as_json: JsonOpt = False,
) -> None:
    """Replace personal data inside a text field by typed placeholders (<PHONE_NUMBER>), or
    keyed pseudonyms, and write the file again; prints counts per category and the leftover
    rate, never a value."""
    try:
        report = _redact_file(path, out_path, text_field, _replacement(pseudonyms, key_version))
    except DataBourseError as exc:
        fail(str(exc))
    if as_json:
        print_json(report)
        return
    out.print(safe(f"{path.name}: {report['documents']} documents, {report['texts']} texts"))
    for category, n in report["redacted"].items():
        left = report["leftover"].get(category, 0)
        out.print(safe(f"  {category:<16} redacted {n:>8}  leftover {left:>6}"))
    for category, n in report["leftover"].items():
        if category not in report["redacted"]:
            out.print(safe(f"  {category:<16} redacted {0:>8}  leftover {n:>6}"))
    out.print(safe(f"leftover rate: {report['leftover_rate']:.4%} -> {out_path}"))


REDACT_BATCH = 8192  # texts redacted at once: memory stays flat in the file's size


def _replacement(pseudonyms: bool, key_version: str) -> TextPseudonyms | None:
    if not pseudonyms:
        return None
    from tasks import resources

    return resources.text_pseudonymizer(key_version)


class _Tally:
    """Counts over a file's batches: texts, categories replaced and still found."""

    def __init__(self, replace: TextPseudonyms | None = None) -> None:
        self.replace = replace
        self.documents = self.texts = 0
        self.redacted: Counter[str] = Counter()
        self.left: Counter[str] = Counter()

    def redact(self, texts: list[str | None]) -> list[str | None]:
        import pyarrow as pa

        from databourse.pii.text_redact import leftover, redact_batch

        self.documents += len(texts)
        self.texts += sum(t is not None for t in texts)
        array, counts = redact_batch(pa.array(texts, pa.large_string()), self.replace)
        self.redacted.update(counts)
        self.left.update(leftover(array))
        result: list[str | None] = array.to_pylist()
        return result

    def report(self) -> dict[str, Any]:
        found = sum(self.redacted.values()) + sum(self.left.values())
        return {
            "documents": self.documents,
            "texts": self.texts,
            "redacted": dict(sorted(self.redacted.items())),
            "leftover": dict(sorted(self.left.items())),
            "leftover_rate": sum(self.left.values()) / found if found else 0.0,
        }


def _redact_file(
    path: Path, target: Path, field: str, replace: TextPseudonyms | None = None
) -> dict[str, Any]:
    """Redact `field` of every record of `path` into `target` (written whole or not at all)."""
    if not path.is_file():
        raise DataBourseError(f"{path}: no such file", path=str(path))
    if target.resolve() == path.resolve() or (target.exists() and target.samefile(path)):
        raise DataBourseError(f"{target}: refusing to overwrite the input", path=str(path))
    suffix = path.suffix.lower()
    writer = {".jsonl": _redact_jsonl, ".ndjson": _redact_jsonl, ".json": _redact_jsonl}.get(
        suffix,
        {".parquet": _redact_parquet, ".pq": _redact_parquet, ".csv": _redact_csv}.get(suffix),
    )
    if writer is None:
        raise DataBourseError(f"{path}: not a .jsonl, .parquet or .csv file", path=str(path))
    # a name of our own beside the target (same file system: the rename is atomic), created
    # with the umask's mode, unlike mkstemp's 0600
    temp = target.resolve().parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    tally = _Tally(replace)
    try:
        temp.open("x").close()
        writer(path, temp, field, tally)
        os.replace(temp, target)
    except OSError as exc:  # a folder missing, no permission, a disk full: named, no traceback
        temp.unlink(missing_ok=True)
        where = exc.filename if exc.filename and exc.filename != str(temp) else target
        raise DataBourseError(f"{where}: {exc.strerror or type(exc).__name__}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return tally.report()


def _redact_jsonl(path: Path, temp: Path, field: str, tally: _Tally) -> None:
    """One JSON object per line; blank lines kept; a bad line is named by its number."""
    from databourse.corpus.documents import json_records

    with path.open("rb") as src, temp.open("w", encoding="utf-8", newline="\n") as dst:
        for records in json_records(src, str(path), field, REDACT_BATCH):
            kept = [r for _, r in records if r is not None]  # blank lines are no documents
            redacted = iter(tally.redact([r[field] for r in kept]))
            for _, record in records:
                if record is not None:
                    record[field] = next(redacted)
                    dst.write(json.dumps(record, ensure_ascii=False))
                dst.write("\n")


def _redact_parquet(path: Path, temp: Path, field: str, tally: _Tally) -> None:
    """Row groups read in batches; the schema (and its metadata) written as it was."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from databourse.corpus.documents import open_parquet, text_column

    source = open_parquet(path, str(path))
    at = text_column(source, str(path), field)
    schema = source.schema_arrow
    kind = schema.field(at).type
    value = kind.value_type if pa.types.is_dictionary(kind) else kind
    rows = 0
    with pq.ParquetWriter(temp, schema) as writer:
        try:
            for batch in source.iter_batches(batch_size=REDACT_BATCH):
                column = batch.column(at)
                texts = (
                    column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
                )
                redacted = pa.array(tally.redact(texts.to_pylist()), value)
                if pa.types.is_dictionary(kind):
                    redacted = redacted.dictionary_encode().cast(kind)
                writer.write_batch(batch.set_column(at, schema.field(at), redacted))
                rows += batch.num_rows
        except pa.ArrowException as exc:  # a corrupt page: named by the rows read before it
            raise DataBourseError(
                f"{path}: unreadable after row {rows} ({type(exc).__name__})", path=str(path)
            ) from None


def _redact_csv(path: Path, temp: Path, field: str, tally: _Tally) -> None:
    """A header row, then records of as many fields; every cell kept as written but the text."""
    with (
        path.open(encoding="utf-8-sig", newline="") as src,
        temp.open("w", encoding="utf-8", newline="") as dst,
    ):
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        try:
            header = next(reader, None)
            if header is None or field not in header:
                raise DataBourseError(
                    f"{path}: line 1: no column {field!r} in the header",
                    path=str(path),
                    line=1,
                    column=field,
                )
            writer.writerow(header)
            at = header.index(field)
            while True:
                rows = []
                for row in itertools.islice(reader, REDACT_BATCH):
                    if len(row) != len(header):
                        raise DataBourseError(
                            f"{path}: line {reader.line_num}: {len(row)} fields,"
                            f" the header has {len(header)}",
                            path=str(path),
                            line=reader.line_num,
                        )
                    rows.append(row)
                if not rows:
                    break
                for row, text in zip(rows, tally.redact([r[at] for r in rows]), strict=True):
                    row[at] = text or ""
                writer.writerows(rows)
        except csv.Error as exc:
            raise DataBourseError(
                f"{path}: line {reader.line_num}: not CSV ({exc})",
                path=str(path),
                line=reader.line_num,
            ) from None
        except UnicodeDecodeError as exc:
            raise DataBourseError(
                f"{path}: not UTF-8 (near line {reader.line_num + 1}, {exc.reason})", path=str(path)
            ) from None

"""PII detection accuracy and speed of databourse against Microsoft Presidio, in one run.

    python benchmarks/pii.py                        # default sizes, about 90 s
    python benchmarks/pii.py --rows 200000 --seeds 10 --presidio-rows 1000

Data: the project's own `databourse_samples.pii_evalset` (seeded; a column per category, decoy
columns, free text) and an independent set (`benchmarks/pii_independent.py`: other projects'
published test cases and Faker tables labelled by independent validators, with decoy and dirty
columns).
Figures, per category:
  column level  precision / recall of the column's classification over `--seeds` tables
  value level   precision / recall of each value's whole-value category
and rows per second of a full-table scan (every column), for each tool.

Presidio: presidio-analyzer with its predefined pattern recognizers only (NoOpNlpEngine: no
spaCy model), plus its SG NRIC recognizer (disabled by default), results with score >= 0.4.
Its column decision is given two ways: `per-value` (our rule: the most common category of whole
values must reach the threshold; generous to Presidio) and `structured` (presidio-structured's
own PandasAnalysisBuilder, most common entity among detections). Presidio is run in this process
when importable, else through `--presidio-python` (default /tmp/presidio-venv/bin/python), else
skipped with a message. Presidio is much slower, so it sees the first `--presidio-rows` rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENTITY_MAP = {  # Presidio entity -> our category
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "IBAN_CODE": "IBAN",
    "SG_NRIC_FIN": "SG_NRIC_FIN",
    "US_BANK_NUMBER": "BANK_ACCOUNT",
    "US_PASSPORT": "PASSPORT",
    "DATE_TIME": "DATE_OF_BIRTH",
    "PERSON": "PERSON_NAME",
    "LOCATION": "ADDRESS",
    # the next markets (issue 16, class 10): Presidio's URL is any URL, ours a person's page
    "US_SSN": "US_SSN",
    "UK_NINO": "UK_NINO",
    "IN_AADHAAR": "IN_AADHAAR",
    "IN_PAN": "IN_PAN",
    "KR_RRN": "KR_RRN",
    "KR_FRN": "KR_RRN",
    "TH_TNIN": "TH_ID",
    "PH_TIN": "PH_ID",
    "PH_UMID": "PH_ID",
    "MAC_ADDRESS": "MAC_ADDRESS",
    "URL": "PERSONAL_URL",
}
# Presidio's recognizers of those markets that its English registry leaves out (other languages
# or disabled by default), added for English text.
MARKET_RECOGNIZERS = ("KrRrnRecognizer", "KrFrnRecognizer", "ThTninRecognizer", "PhTinRecognizer")
MARKET_RECOGNIZERS += ("PhUmidRecognizer", "InAadhaarRecognizer", "InPanRecognizer")
MARKET_RECOGNIZERS += ("UkNinoRecognizer",)
MIN_SCORE = 0.4
DEFAULT_PRESIDIO_PYTHON = "/tmp/presidio-venv/bin/python"


# ---- Presidio side (imports only the standard library and presidio) ------------------------------


def _presidio_analyzer() -> Any:
    import logging

    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import SgFinRecognizer

    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # no network here
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    registry.add_recognizer(SgFinRecognizer())
    from presidio_analyzer import predefined_recognizers

    present = {type(r).__name__ for r in registry.recognizers}
    for name in MARKET_RECOGNIZERS:
        if name not in present and hasattr(predefined_recognizers, name):
            registry.add_recognizer(getattr(predefined_recognizers, name)(supported_language="en"))
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])


def presidio_run(columns: dict[str, list[str | None]]) -> dict[str, Any]:
    """Whole-value entity and entities anywhere, per value; seconds; presidio-structured map."""
    analyzer = _presidio_analyzer()
    whole: dict[str, list[str | None]] = {}
    anywhere: dict[str, list[list[str]]] = {}
    start = time.perf_counter()
    for name, values in columns.items():
        whole[name], anywhere[name] = [], []
        for value in values:
            text = (value or "").strip()
            found = analyzer.analyze(text=text, language="en") if text else []
            found = [f for f in found if f.score >= MIN_SCORE]
            covering = [f for f in found if f.end - f.start >= 0.9 * len(text)]
            best = max(covering, key=lambda f: f.score, default=None)
            whole[name].append(ENTITY_MAP.get(best.entity_type, "OTHER") if best else None)
            anywhere[name].append(sorted({ENTITY_MAP.get(f.entity_type, "OTHER") for f in found}))
    seconds = time.perf_counter() - start
    structured: dict[str, str] | str
    try:
        import pandas as pd
        from presidio_structured import PandasAnalysisBuilder

        frame = pd.DataFrame({k: [v or "" for v in vals] for k, vals in columns.items()})
        analysis = PandasAnalysisBuilder(analyzer=analyzer).generate_analysis(frame)
        structured = {k: ENTITY_MAP.get(v, "OTHER") for k, v in analysis.entity_mapping.items()}
    except ImportError as exc:
        structured = f"presidio-structured not importable ({exc.name})"
    return {"whole": whole, "anywhere": anywhere, "seconds": seconds, "structured": structured}


def presidio_available(python: str) -> str | None:
    """'inprocess', 'subprocess', or None when Presidio cannot be run."""
    try:
        import presidio_analyzer  # noqa: F401

        return "inprocess"
    except ImportError:
        pass
    if Path(python).exists():
        probe = subprocess.run([python, "-c", "import presidio_analyzer"], capture_output=True)
        if probe.returncode == 0:
            return "subprocess"
    return None


def presidio_remote(python: str, columns: dict[str, list[str | None]]) -> dict[str, Any]:
    """Run presidio_run in another interpreter (Presidio's own venv), through JSON on stdio."""
    done = subprocess.run(
        [python, __file__, "--worker"],
        input=json.dumps(columns).encode(),
        capture_output=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# ---- our side and the report ---------------------------------------------------------------


def own_sets(seeds: int, rows: int = 1000) -> list[Any]:
    """The project's own evaluation tables (`databourse_samples.pii_evalset`), one per seed."""
    from databourse_samples.pii_evalset import make_evalset

    return [make_evalset(rows, seed=seed) for seed in range(seeds)]


def independent_sets(seeds: int, rows: int = 500) -> list[Any]:
    """Published test cases and Faker tables (`benchmarks/pii_independent.py`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pii_independent import faker_sets, published_sets

    sets = published_sets()
    for seed in range(seeds):
        sets += faker_sets(rows, seed=seed)
    return sets


def _text(column: Any) -> Any:
    """A column as the text the scan reads (numbers as their decimal text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(column.combine_chunks(), pa.large_string())


def score_ours(sets: list[Any], threshold: float) -> dict[str, Any]:
    """Column- and value-level scores of our scan over labelled tables; decoys flagged."""
    from databourse.pii.categories import classify_array
    from databourse.pii.detect import scan_table
    from databourse.pii.screening import check_declarations
    from databourse_samples.pii_evalset import Score, column_scores

    labels: dict[str, str | None] = {}
    predicted: dict[str, str | None] = {}
    values: dict[str, Score] = {}
    stopped: dict[str, list[bool]] = {"dirty": [], "decoy": []}  # the gate, nothing declared
    for i, ev in enumerate(sets):
        for f in scan_table(ev.table, threshold=threshold):
            labels[f"{i}/{f.column}"] = ev.labels[f.column]
            predicted[f"{i}/{f.column}"] = f.category
            found = {u["found"] for u in check_declarations([f], {}).undeclared}
            if "_dirty_" in f.column:
                stopped["dirty"].append(ev.labels[f.column] in found)
            elif ev.labels[f.column] is None:
                stopped["decoy"].append(bool(found))
        # each column as the scan reads it (numbers as numbers: `as_text`, lost zeros)
        columns = {n: ev.table[n].combine_chunks() for n in ev.table.column_names}
        guesses = {n: classify_array(column, n) for n, column in columns.items()}
        _add_values(values, ev, guesses)
    return {
        "columns": column_scores(labels, predicted),
        "values": values,
        "decoys": _decoys_flagged(labels, predicted),
        "gate": {k: f"{sum(v)}/{len(v)}" for k, v in stopped.items()},
    }


def _add_values(total: dict[str, Any], ev: Any, guesses: dict[str, list[str | None]]) -> None:
    from databourse_samples.pii_evalset import Score, value_scores

    for category, score in value_scores(ev, guesses).items():
        into = total.setdefault(category, Score())
        into.tp, into.fp, into.fn = into.tp + score.tp, into.fp + score.fp, into.fn + score.fn


def _decoys_flagged(labels: dict[str, str | None], predicted: dict[str, str | None]) -> str:
    decoys = [k for k, label in labels.items() if label is None]
    flagged = sorted(k.split("/", 1)[1] for k in decoys if predicted.get(k))
    return f"{len(flagged)}/{len(decoys)}" + (f" ({', '.join(flagged)})" if flagged else "")


def speed_ours(rows: int, threshold: float) -> dict[str, Any]:
    """Rows per second of a full scan of the own set (every column), and its embedded counts."""
    from databourse.pii.detect import scan_table
    from databourse_samples.pii_evalset import make_evalset

    big = make_evalset(rows, seed=1000)
    scan_table(big.table.slice(0, 1000))  # warm caches (phone metadata) outside the timing
    start = time.perf_counter()
    findings = scan_table(big.table, threshold=threshold)
    seconds = time.perf_counter() - start
    return {
        "rows_per_s": rows / seconds,
        "seconds": seconds,
        "embedded": {f.column: f.embedded for f in findings if f.column in big.embedded},
        "embedded_truth": big.embedded,
    }


def score_presidio(
    python: str, mode: str, sets: list[Any], rows: int, threshold: float
) -> dict[str, Any]:
    """The same measures for Presidio, on the first `rows` rows of each table."""
    from collections import Counter

    from databourse_samples.pii_evalset import EvalSet, Score, column_scores

    labels: dict[str, str | None] = {}
    per_value: dict[str, str | None] = {}
    structured: dict[str, str | None] = {}
    values: dict[str, Score] = {}
    seconds, scanned = 0.0, 0
    note = ""
    for i, full in enumerate(sets):
        table = full.table.slice(0, rows)
        ev = EvalSet(table, full.labels, {k: v[:rows] for k, v in full.positives.items()}, {})
        cols = {n: _text(table[n]).to_pylist() for n in table.column_names}
        result = presidio_run(cols) if mode == "inprocess" else presidio_remote(python, cols)
        seconds += result["seconds"]
        scanned += table.num_rows
        for name, guesses in result["whole"].items():
            key = f"{i}/{name}"
            labels[key] = ev.labels[name]
            counts = Counter(g for g in guesses if g)
            top = counts.most_common(1)[0] if counts else (None, 0)
            checked = sum(1 for v in cols[name] if v is not None)
            per_value[key] = top[0] if checked and top[1] / checked >= threshold else None
            if isinstance(result["structured"], dict):
                guess = result["structured"].get(name)
                structured[key] = None if guess in (None, "OTHER") else guess
            else:
                note = result["structured"]
        _add_values(values, ev, result["whole"])
    return {
        "columns": column_scores(labels, per_value),
        "structured": column_scores(labels, structured) if structured else note,
        "values": values,
        "decoys": _decoys_flagged(labels, per_value),
        "rows_per_s": scanned / seconds,
        "seconds": seconds,
    }


def _cell(score: Any) -> str:
    """'precision recall'; precision is '-' when nothing was predicted as the category."""
    if score is None:
        return "    -     -"
    precision = f"{score.precision:5.3f}" if score.tp + score.fp else "    -"
    return f"{precision} {score.recall:5.3f}"


def report(title: str, us: dict[str, Any], them: dict[str, Any] | None) -> None:
    """Print one set's side-by-side table per category, and the decoy columns flagged."""
    cats = sorted({*us["columns"], *us["values"], *(them["columns"] if them else {})})
    print(f"== {title}")
    head = f"{'category':18} {'ours col P  R':>13} {'ours val P  R':>13}"
    if them:
        head += f" {'presidio col':>13} {'presidio val':>13}"
        if isinstance(them["structured"], dict):
            head += f" {'structured col':>14}"
    print(head)
    for cat in cats:
        line = f"{cat:18} {_cell(us['columns'].get(cat)):>13} {_cell(us['values'].get(cat)):>13}"
        if them:
            line += f" {_cell(them['columns'].get(cat)):>13} {_cell(them['values'].get(cat)):>13}"
            if isinstance(them["structured"], dict):
                line += f" {_cell(them['structured'].get(cat)):>14}"
        print(line)
    print(f"decoy columns flagged: databourse {us['decoys']}")
    if them:
        print(f"                       presidio {them['decoys']}")
        if not isinstance(them["structured"], dict):
            print(them["structured"])
    print(
        f"gate (nothing declared) stops: dirty columns {us['gate']['dirty']}, "
        f"decoy columns {us['gate']['decoy']}"
    )
    print()


def report_speed(speed: dict[str, Any], them: dict[str, Any] | None) -> None:
    """Embedded counts on the own set's free text, rows per second and the speed ratio."""
    print(f"embedded in free text, truth: {speed['embedded_truth']}")
    print(f"  databourse: {speed['embedded']}")
    print(f"databourse: {speed['rows_per_s']:,.0f} rows/s (all columns, {speed['seconds']:.2f} s)")
    if them:
        print(f"presidio:   {them['rows_per_s']:,.1f} rows/s ({them['seconds']:.2f} s)")
        print(f"speed ratio databourse/presidio: {speed['rows_per_s'] / them['rows_per_s']:,.0f}x")


def report_mentions() -> None:
    """Names and addresses inside sentences (`pii_names_addresses.mention_counts`), by value."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pii_names_addresses import mention_counts

    print("free text, values mentioning one (true/found):")
    for language, counts in mention_counts().items():
        cells = ", ".join(f"{k} {true}/{found}" for k, (true, found) in counts.items())
        print(f"  {language:22} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the speed table")
    parser.add_argument("--seeds", type=int, default=4, help="tables for column-level scores")
    parser.add_argument("--presidio-rows", type=int, default=200, help="rows per Presidio table")
    parser.add_argument("--presidio-seeds", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--presidio-python", default=DEFAULT_PRESIDIO_PYTHON)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        json.dump(presidio_run(json.load(sys.stdin)), sys.stdout)
        return
    own, independent = own_sets(args.seeds), independent_sets(args.seeds)
    mode = presidio_available(args.presidio_python)
    if mode is None:
        print(
            f"Presidio skipped: presidio_analyzer is not importable here nor in "
            f"{args.presidio_python} (create it: python3.11 -m venv /tmp/presidio-venv && "
            "/tmp/presidio-venv/bin/pip install presidio-analyzer presidio-structured)\n"
        )
    speed_of_theirs = None  # Presidio's rows/s on the own set, the table the speed is timed on
    for title, sets in (("own set (pii_evalset)", own), ("independent set", independent)):
        them = None
        if mode is not None:
            few = sets[: args.presidio_seeds] if sets is own else sets
            them = score_presidio(
                args.presidio_python, mode, few, args.presidio_rows, args.threshold
            )
            speed_of_theirs = speed_of_theirs or them
        report(title, score_ours(sets, args.threshold), them)
    report_speed(speed_ours(args.rows, args.threshold), speed_of_theirs)
    report_mentions()


if __name__ == "__main__":
    main()

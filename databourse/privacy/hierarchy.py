"""Generalization hierarchies in ARX's CSV format: one row per value, `value;level1;...;*`.

Level 0 is the value itself; each further column is a coarser label, the last usually `*`. A
hierarchy must be a function level by level (a label maps to one coarser label), so that a table
generalized to level l can be rolled up to level l+1 without going back to the raw values.
Values are matched as text (an integer 39 matches the row `39;...`). A null stays null at every
level (a class of its own); a value missing from the hierarchy is an error naming the column and
how many records hold such values, never the values themselves.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ProductSpec
from databourse.errors import PrivacyModelFailed

log = logging.getLogger(__name__)

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class Hierarchy:
    """A checked hierarchy: `rows[i][level]` is the label of value i at that level."""

    rows: tuple[tuple[str, ...], ...]
    name: str = "column"
    _codes: list[np.ndarray] = field(init=False, repr=False, compare=False)
    _labels: list[list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.rows or any(len(r) != len(self.rows[0]) for r in self.rows):
            raise ValueError(f"hierarchy of {self.name!r}: rows must be non-empty and equally long")
        values = [r[0] for r in self.rows]
        if len(set(values)) != len(values):
            raise ValueError(f"hierarchy of {self.name!r}: a level-0 value is listed twice")
        codes: list[np.ndarray] = []
        labels: list[list[str]] = []
        for level in range(len(self.rows[0])):
            seen: dict[str, int] = {}
            codes.append(np.array([seen.setdefault(r[level], len(seen)) for r in self.rows]))
            labels.append(list(seen))
        for level in range(1, len(codes)):
            pairs = set(zip(codes[level - 1].tolist(), codes[level].tolist(), strict=True))
            if len(pairs) != len(labels[level - 1]):
                raise ValueError(
                    f"hierarchy of {self.name!r}: a level-{level - 1} label has two parents at "
                    f"level {level}; each level must generalize the one below"
                )
        object.__setattr__(self, "_codes", codes)
        object.__setattr__(self, "_labels", labels)

    @classmethod
    def from_csv(cls, path: Path | str, name: str | None = None, delimiter: str = ";") -> Hierarchy:
        """Read an ARX hierarchy file (UTF-8, `;`-separated, no header)."""
        with open(path, encoding="utf-8", newline="") as fh:
            rows = tuple(tuple(r) for r in csv.reader(fh, delimiter=delimiter) if r)
        return cls(rows, name=name or Path(path).stem)

    @property
    def height(self) -> int:
        """Number of levels, level 0 (the values) included."""
        return len(self._codes)

    def size(self, level: int) -> int:
        """Number of distinct labels at a level (nulls not counted)."""
        return len(self._labels[level])

    def labels(self, level: int) -> list[str]:
        """The labels of a level, indexed by their code."""
        return list(self._labels[level])

    def codes(self, level: int) -> np.ndarray:
        """For each level-0 value (by index), its code at `level`."""
        return self._codes[level]

    def up(self, level: int) -> np.ndarray:
        """For each code at `level`, its code at `level + 1` (the roll-up map)."""
        out = np.zeros(self.size(level), dtype=np.int64)
        out[self._codes[level]] = self._codes[level + 1]
        return out

    def leaves(self, level: int) -> np.ndarray:
        """For each code at `level`, how many level-0 values it covers."""
        return np.bincount(self._codes[level], minlength=self.size(level))

    def encode(self, values: ArrayLike) -> np.ndarray:
        """Level-0 index of each value; nulls get the extra code `len(rows)`."""
        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        text = array if pa.types.is_string(array.type) else pc.cast(array, pa.string())
        index = pc.index_in(text, value_set=pa.array([r[0] for r in self.rows], pa.string()))
        unknown = int(pc.sum(pc.and_(pc.is_null(index), pc.is_valid(text))).as_py() or 0)
        if unknown:
            raise PrivacyModelFailed(
                f"column {self.name!r}: {unknown} record(s) hold values missing from its "
                "hierarchy; add them to the hierarchy file",
                column=self.name,
                unknown=unknown,
            )
        return np.asarray(index.fill_null(len(self.rows)), dtype=np.int64)

    def generalize(self, values: ArrayLike, level: int) -> pa.Array:
        """The labels of `level` for each value (strings); nulls stay null."""
        if not 0 <= level < self.height:
            raise ValueError(f"hierarchy of {self.name!r} has levels 0..{self.height - 1}")
        codes = self.encode(values)
        table = np.append(self._codes[level], -1)
        mapped = pa.array(table[codes])
        labels = pa.array(self._labels[level], pa.string())
        return labels.take(pc.if_else(pc.equal(mapped, -1), None, mapped))


def product_hierarchies(product: ProductSpec, config_dir: Path) -> dict[str, Hierarchy]:
    """The product's hierarchies by output column name, files resolved against `configs/`."""
    out = {
        rule.rename or name: Hierarchy.from_csv(
            config_dir / rule.hierarchy, name=rule.rename or name
        )
        for name, rule in product.columns.items()
        if rule.hierarchy is not None
    }
    log.info("product %s: loaded %d hierarchies", product.id, len(out))
    return out

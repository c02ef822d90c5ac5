"""Where each row of a source came from (file and line), kept beside its frame rather than
in it: two int64 columns copied through every filter of tens of millions of rows cost more
than the few error messages and rejects that ever read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class RowLines:
    """The lines of a file whose rows are consecutive lines from `first` on (Parquet and
    JSON arrays from 1, a well-formed CSV from the line after its header), computed only
    for the rows asked for: a file of 50 million rows needs no 400 MB array to say so."""

    def __init__(self, count: int, first: int = 1) -> None:
        self.count, self.first = count, first

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, at: Any) -> np.ndarray:
        """The lines of the rows a boolean mask, positions or a slice pick (as numpy would)."""
        if isinstance(at, slice):
            return np.arange(*at.indices(self.count), dtype=np.int64) + self.first
        picked = np.asarray(at)
        if picked.dtype == bool:
            if picked.shape != (self.count,):
                raise IndexError(f"a mask of {picked.shape} for {self.count} rows")
            return np.flatnonzero(picked) + self.first
        rows = picked.astype(np.int64)
        if rows.size and (rows.min() < -self.count or rows.max() >= self.count):
            raise IndexError(f"row positions out of range for {self.count} rows")
        return np.where(rows < 0, rows + self.count, rows) + self.first

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.arange(self.first, self.first + self.count, dtype=dtype or np.int64)


Lines = np.ndarray | RowLines


@dataclass(frozen=True)
class Origins:
    """The files a frame's rows came from (`labels`), the position of each file's first row
    (`starts`, ascending) and each row's line in its file (`lines`, one per row)."""

    labels: Sequence[str]
    starts: np.ndarray
    lines: Lines

    @classmethod
    def of_files(cls, labels: Sequence[str], lines: Sequence[Lines]) -> Origins:
        """The origins of the files' rows in order, `lines[i]` those of file `labels[i]`."""
        sizes = np.array([len(part) for part in lines], dtype=np.int64)
        starts = np.cumsum(sizes) - sizes
        if len(lines) == 1:  # one file's lines kept as they are (RowLines stay lazy)
            return cls(list(labels), starts, lines[0])
        return cls(list(labels), starts, np.concatenate([np.empty(0, np.int64), *(np.asarray(p) for p in lines)]))

    def files(self, positions: np.ndarray) -> np.ndarray:
        """The index into `labels` of the file of each row position."""
        found: np.ndarray = np.searchsorted(self.starts, positions, side="right") - 1
        return found

    def where(self, positions: Sequence[int] | np.ndarray) -> list[str]:
        """`name line N` of each row position, the file by its name only."""
        at = np.asarray(positions, dtype=np.int64)
        return [
            f"{Path(self.labels[f]).name} line {line}"
            for f, line in zip(self.files(at).tolist(), self.lines[at].tolist(), strict=True)
        ]

    def take(self, keep: np.ndarray) -> Origins:
        """The origins of the rows a boolean mask keeps."""
        kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        return Origins(self.labels, kept_before[self.starts], self.lines[keep])

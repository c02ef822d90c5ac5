"""Where each row of a source came from (file and line), kept beside its frame rather than
in it: two int64 columns copied through every filter of tens of millions of rows cost more
than the few error messages and rejects that ever read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Origins:
    """The files a frame's rows came from (`labels`), the position of each file's first row
    (`starts`, ascending) and each row's line in its file (`lines`, one per row)."""

    labels: Sequence[str]
    starts: np.ndarray
    lines: np.ndarray

    @classmethod
    def of_files(cls, labels: Sequence[str], lines: Sequence[np.ndarray]) -> Origins:
        """The origins of the files' rows in order, `lines[i]` those of file `labels[i]`."""
        sizes = np.array([len(part) for part in lines], dtype=np.int64)
        starts = np.cumsum(sizes) - sizes
        joined = lines[0] if len(lines) == 1 else np.concatenate(lines) if lines else np.empty(0, dtype=np.int64)
        return cls(list(labels), starts, joined)

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

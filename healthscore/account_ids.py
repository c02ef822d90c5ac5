"""Finding an account by id in a scored table, suggesting close ids when it is not there.

Used by `healthscore explain` (one account) and by the trend of one account over history.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from healthscore.errors import Problem, UsageError

if TYPE_CHECKING:
    from healthscore.config import Config

SUGGESTIONS = 3
SAMPLE = 20_000  # ids difflib looks at for suggestions (the error path; kept bounded)


def find_account(table: pd.DataFrame, config: Config, account_id: str) -> int:
    """The row position of `account_id` in the scored table; UsageError with close ids if absent."""
    ids = table["account_id"].astype("str")
    for candidate in dict.fromkeys((account_id, account_id.strip())):
        hits = np.flatnonzero((ids == candidate).to_numpy())
        if len(hits):
            return int(hits[0])
    source = config.accounts.source
    where = f"{source!r} ({config.resolve(config.sources[source].path)})" if source in config.sources else repr(source)
    close = close_ids(ids, account_id)
    hint = "account ids match exactly, as in the account_id column of the scored table"
    problem = Problem(f"did you mean {', '.join(close)}?" if close else "no similar account id", hint=hint)
    raise UsageError(f"no account {account_id!r} in the accounts source {where}", [problem])


def close_ids(ids: pd.Series, wanted: str, n: int = SUGGESTIONS) -> list[str]:
    """Up to `n` account ids like `wanted`: the same apart from case and spaces, then ids that
    contain it, then difflib's closest among a bounded sample of ids of similar length."""
    folded = ids.str.strip().str.casefold()
    target = wanted.strip().casefold()
    found = list(dict.fromkeys(ids[folded == target]))
    if target and len(found) < n:
        containing = ids[folded.str.contains(target, regex=False)]
        found += sorted(dict.fromkeys(containing), key=lambda s: (len(s), s))[: n * 3]
    if len(found) < n and target:
        length = folded.str.len()
        near = ids[(length - len(target)).abs() <= 2].head(SAMPLE)
        by_folded = dict(zip(near.str.strip().str.casefold(), near, strict=True))
        found += [by_folded[c] for c in difflib.get_close_matches(target, list(by_folded), n=n, cutoff=0.6)]
    return list(dict.fromkeys(found))[:n]

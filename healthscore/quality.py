"""The data-quality gate: `checks:` thresholds and --fail-on-warnings, applied to a finished
run before anything is written, so a run that fails them leaves the previous outputs as
they were (exit 65)."""

from __future__ import annotations

from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.pipeline import RunResult


def check_failures(result: RunResult, config: Config, fail_on_warnings: bool = False) -> list[Problem]:
    """The checks a run breaks: each configured threshold, and with `fail_on_warnings` (or
    `checks.fail_on_warnings`) every data warning."""
    checks = config.checks
    failures: list[Problem] = []
    accounts, scored = result.summary.accounts, result.summary.scored
    if checks.min_accounts is not None and accounts < checks.min_accounts:
        failures.append(
            Problem(
                f"{accounts} account(s), fewer than checks.min_accounts {checks.min_accounts}",
                f"sources.{config.accounts.source}",
                "a truncated CRM export? re-export the accounts",
            )
        )
    unscored = (accounts - scored) / accounts if accounts else 0.0
    if checks.max_unscored_share is not None and unscored > checks.max_unscored_share:
        failures.append(
            Problem(
                f"{unscored:.1%} of accounts are Unscored, more than checks.max_unscored_share "
                f"{checks.max_unscored_share:.1%}",
                "score.min_coverage",
                "a source is missing or empty, or its keys do not match the accounts",
            )
        )
    for name, data in result.sources.items():
        rows = data.rows_read
        join = result.joins.get(name)
        if checks.max_unmatched_share is not None and join is not None and rows:
            share = join.unmatched_rows / rows
            if share > checks.max_unmatched_share:
                failures.append(
                    Problem(
                        f"{share:.1%} of the rows of source {name!r} ({join.unmatched_rows} of {rows}) match no "
                        f"account, more than checks.max_unmatched_share {checks.max_unmatched_share:.1%}",
                        f"sources.{name}.key",
                        "check the key column and key_transform (case, padding, id format)",
                    )
                )
        rejected = sum(data.rejected.values())  # counted, however many rows rejects.csv lists
        if checks.max_rejected_share is not None and rows and rejected / rows > checks.max_rejected_share:
            failures.append(
                Problem(
                    f"{rejected / rows:.1%} of the rows of source {name!r} were rejected, more than "
                    f"checks.max_rejected_share {checks.max_rejected_share:.1%}",
                    f"sources.{name}",
                    "see the reasons in rejects.csv",
                )
            )
    if fail_on_warnings or checks.fail_on_warnings:
        failures += [Problem(f"warning: {w.message}", w.where, w.hint) for w in result.summary.warnings]
    return failures


def enforce_checks(result: RunResult, config: Config, fail_on_warnings: bool = False) -> None:
    """Raise DataError (exit 65) listing every broken check; nothing has been written yet."""
    failures = check_failures(result, config, fail_on_warnings)
    if failures:
        raise DataError(f"{len(failures)} data-quality check(s) failed; no output was written or replaced", failures)

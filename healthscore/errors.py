"""One family of exceptions, each carrying the exit code of PRODUCT.md section 6.

Core code raises these and never exits; the CLI maps them to exit codes in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where it is, what it is, and how to fix it."""

    message: str
    where: str = ""
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} (hint: {self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, str]:
        """The problem as plain data, for JSON output and the manifest."""
        return {"where": self.where, "message": self.message, "hint": self.hint}


class HealthscoreError(Exception):
    """Base of every error healthscore raises on purpose; `exit_code` is the process exit code."""

    exit_code = 1
    title = "error"

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        return "\n".join(lines)


class UsageError(HealthscoreError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2
    title = "usage error"


class DataError(HealthscoreError):
    """Input rows or values that cannot be used (exit 65)."""

    exit_code = 65
    title = "data error"


class InputMissingError(HealthscoreError):
    """An input file is missing or empty (exit 66)."""

    exit_code = 66
    title = "input missing"


class OutputError(HealthscoreError):
    """An output cannot be created (exit 73)."""

    exit_code = 73
    title = "cannot write output"


class LockedError(HealthscoreError):
    """Another run holds the lock on the output directory (exit 75)."""

    exit_code = 75
    title = "locked"


class ConfigError(HealthscoreError):
    """The config file is invalid (exit 78)."""

    exit_code = 78
    title = "config error"

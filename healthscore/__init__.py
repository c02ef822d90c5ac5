"""healthscore: batch scoring of B2B customer health from CS exports.

The library does all the work; the CLI only parses options and renders:

    >>> import healthscore
    >>> config = healthscore.load_config("configs/default.yaml")
    >>> result = healthscore.run(config)            # a RunResult: table, summary, ...
    >>> healthscore.write_outputs(result, config)   # atomically, plus run.json

Attributes are imported lazily so that `import healthscore` (and `healthscore --help`)
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "healthscore.config",
    "parse_config": "healthscore.config",
    "Config": "healthscore.config",
    "run": "healthscore.pipeline",
    "RunResult": "healthscore.pipeline",
    "write_outputs": "healthscore.outputs",
    "Summary": "healthscore.summary",
    "HealthscoreError": "healthscore.errors",
}

__all__ = [
    "Config",
    "HealthscoreError",
    "RunResult",
    "Summary",
    "__version__",
    "load_config",
    "parse_config",
    "run",
    "write_outputs",
]

if TYPE_CHECKING:
    from healthscore.config import Config, load_config, parse_config
    from healthscore.errors import HealthscoreError
    from healthscore.outputs import write_outputs
    from healthscore.pipeline import RunResult, run
    from healthscore.summary import Summary


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'healthscore' has no attribute {name!r}")

"""optbench: benchmark PyTorch optimizers on regression, MLP and CIFAR-10 tasks.

The small public API, imported lazily so that reading records never imports torch:

- ``RunSpec``: what a run is; ``run(spec) -> RunResult``: train and measure one run;
- ``load_records([results_dir])``: the valid records and the files skipped;
- ``records_frame(records)``: one flat pandas row per run.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "RunSpec": "optbench.spec",
    "RunResult": "optbench.spec",
    "run": "optbench.engine.eager",
    "load_records": "optbench.store.records",
    "records_frame": "optbench.store.frame",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'optbench' has no attribute {name!r}")

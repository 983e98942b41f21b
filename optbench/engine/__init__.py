"""Engines turn a group of RunSpecs into RunResults (the contract: ``optbench.engine.base``).

``eager`` trains one run at a time (``optbench.engine.eager``). An engine registers here by name;
it is imported only when asked for, so reading records never imports torch.
"""

from __future__ import annotations

import importlib

from optbench.engine.base import Engine
from optbench.errors import unknown

# name -> "module:Class"; a new engine is one module and one line here.
ENGINES: dict[str, str] = {
    "eager": "optbench.engine.eager:EagerEngine",
    "vectorized": "optbench.engine.vectorized:VectorizedEngine",
}


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise unknown("engine", name, ENGINES)
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)()

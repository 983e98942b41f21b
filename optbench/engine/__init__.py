"""Engines turn a group of RunSpecs into RunResults (the contract: ``optbench.engine.base``).

``eager`` trains one run at a time (``optbench.engine.eager``). An engine registers here by name;
it is imported only when asked for, so reading records never imports torch.
"""

from __future__ import annotations

import importlib

from optbench.engine.base import Engine
from optbench.errors import unknown

# name -> "module:Class"; a new engine is one module, one line here and its name in
# optbench.spec.vocabulary.ENGINES (what specs and records may name; a test checks both agree).
ENGINE_CLASSES: dict[str, str] = {
    "eager": "optbench.engine.eager:EagerEngine",
    "vectorized": "optbench.engine.vectorized:VectorizedEngine",
}


def get_engine(name: str) -> Engine:
    if name not in ENGINE_CLASSES:
        raise unknown("engine", name, ENGINE_CLASSES)
    module, cls = ENGINE_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)()

"""The experiment an invocation's records belong to.

``--name`` (or a suite file's ``name``) names it; a suite file without one is named by its stem.
A plain invocation is named after what it asks for: its tasks and optimizers, and a short digest
of its specs (every field but the code version: a plugin whose code changed is compared within the
same experiment), its protocol and ``--select``. So the same command, resumed after Ctrl-C or
re-run with ``--force``, continues its experiment, and a different command starts another.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from optbench.spec import RunSpec, digest

# Room for the names and the digest within the record's 200-character experiment field.
MAX_NAME_PART = 60


def default_experiment(specs: Sequence[RunSpec], protocol: str | None = None, select: bool = False) -> str:
    """``regression-sgd+adam-3f2a9c``: the tasks, the optimizers (a plugin by its class name) and a
    digest of what was asked for. The same specs give the same name, in any order."""
    tasks = list(dict.fromkeys(s.task for s in specs))
    optimizers = list(dict.fromkeys(_short(s.optimizer) for s in specs))
    asked = sorted(digest({k: v for k, v in s.to_dict().items() if k != "code"}) for s in specs)
    key = digest({"specs": asked, "protocol": protocol, "select": select})[:6]
    words = f"{'+'.join(tasks)}-{'+'.join(optimizers)}"
    if len(words) > MAX_NAME_PART:
        words = words[:MAX_NAME_PART - 1].rstrip("+-") + "…"
    return f"{words}-{key}"


def experiment_name(name: str | None, config: Path | None, specs: Sequence[RunSpec], protocol: str | None = None,
                    select: bool = False) -> str:
    """``name`` where given, else the suite file's stem, else ``default_experiment``."""
    if name:
        return name
    if config is not None:
        return Path(config).stem
    return default_experiment(specs, protocol, select)


def command_line(argv: Sequence[str]) -> str:
    """The invocation as a user would type it again: ``optbench run --opt adam --seeds 4``."""
    return shlex.join(["optbench", *argv])[:2000]


def _short(optimizer: str) -> str:
    """A plugin's class name (``myopt.py:MyAdam`` -> ``MyAdam``); other names as they are."""
    return optimizer.rpartition(":")[2] if ":" in optimizer and not optimizer.startswith("po:") else optimizer

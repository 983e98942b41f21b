"""What ``optbench list`` prints: the tasks, the optimizers, the protocol presets and the third-party zoo.

Reads the catalogs only (``optbench.tasks.catalog``, ``optbench.optim.registry``): no torch unless
an installed entry-point plugin or ``--zoo`` needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from optbench.optim import plugins
from optbench.optim import registry as optimizers
from optbench.spec import format_hparams
from optbench.spec import search
from optbench.spec.vocabulary import IMPLS
from optbench.config.presets import PRESETS
from optbench.tasks import TASKS


def tasks_table() -> Table:
    table = Table(title="tasks", title_justify="left")
    for col in ("task", "kind", "datasets (first is default)", "epochs", "batch"):
        table.add_column(col, overflow="fold")  # wrapped, never cut
    for task in TASKS.values():
        names = [task.default_dataset] + [d for d in task.datasets if d != task.default_dataset]
        datasets = "\n".join(f"[bold]{d}[/]: {task.datasets[d]}" for d in names)
        table.add_row(f"[bold]{task.name}[/]\n{task.description}", task.kind, datasets,
                      str(task.default_epochs), str(task.default_batch_size))
    return table


def optimizers_table() -> Table:
    """Built-in optimizers (torch.optim, then the from-scratch references) and entry-point ones."""
    registered, problems = optimizers.entry_point_optimizers()
    caption = (f"Plugins: --opt {plugins.PLUGIN_SYNTAX}, any torch.optim.Optimizer subclass. "
               f"Implementation: --impl {'|'.join(IMPLS)} (auto: foreach on CUDA, for-loop on CPU).")
    # Every built-in takes weight_decay (tests/test_startup.py holds this sentence to that).
    caption += ("\nWeight decay is a hyperparameter: --opt \"adam:weight_decay=1e-4\" (L2 added to the gradient; "
                "decoupled in adamw); every built-in optimizer takes it (defaults 0 but adamw 0.01)."
                "\nSweeps: --opt \"adam:lr=1e-4|1e-3|1e-2\" runs each value; --select tunes on validation, "
                "then re-runs the best on test.")
    caption += "".join(f"\nnot loaded: {problem}" for problem in problems)
    table = Table(title="optimizers", title_justify="left", caption=Text(caption), caption_justify="left")
    for col in ("optimizer", "class", "default hyperparameters", "what it is"):
        table.add_column(col, overflow="fold")  # wrapped, never cut
    groups = [optimizers.REGISTRY.values(), optimizers.REFERENCE.values(), registered]
    for group in filter(None, (list(g) for g in groups)):
        table.add_section()
        for opt in group:
            fixed = f" + {_spaced(opt.fixed)}" if opt.fixed else ""
            summary = opt.summary if opt.source in ("torch", "reference") else f"{opt.summary} ({opt.source})"
            table.add_row(opt.name, optimizers.class_path(opt.cls), _spaced(opt.defaults) + fixed, summary)
    return table


def _spaced(hparams: Mapping[str, Any]) -> str:
    """``lr=0.01, momentum=0.9``: a narrow column wraps between values, not inside one."""
    return ", ".join(format_hparams({k: v}) for k, v in hparams.items())


def spaces_table() -> Table:
    """Each built-in optimizer's default search space for ``optbench tune`` and where it comes from
    (``optbench.optim.registry.default_space``)."""
    caption = ("Other optimizers (plugins, po:NAME): " + optimizers.AROUND_DEFAULT_LR + ". Replace a space with "
               "--space \"adam:lr=log(1e-4,1e-2),weight_decay=log(5e-3,1)\" or [search.adam] in a suite file; "
               "one_minus_beta1 sets betas[0] (or momentum) to 1 - x.")
    table = Table(title="search spaces (optbench tune)", title_justify="left", caption=Text(caption), caption_justify="left")
    table.add_column("optimizer", overflow="fold")
    table.add_column("default search space", no_wrap=True)  # one dimension a line, whole
    table.add_column("source", overflow="fold")
    for opt in [*optimizers.REGISTRY.values(), *optimizers.REFERENCE.values()]:
        space, source = optimizers.default_space(opt)
        table.add_row(opt.name, Text(search.describe(space, "\n")), Text(source))
    return table


def presets_table() -> Table:
    """The named tuning protocols of ``optbench run --protocol`` (optbench.config.presets)."""
    table = Table(title="protocol presets (optbench run --protocol NAME)", title_justify="left")
    for col in ("preset", "what it runs"):
        table.add_column(col)
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.summary)
    return table


def zoo_status(names_them: bool) -> Text:
    """The third-party optimizers (pytorch_optimizer) as ``po:NAME``, or how to install them.
    Naming them imports the package, and with it torch (seconds): only when asked (``list --zoo``)."""
    version = plugins.zoo_version()
    if version is not None and not names_them:
        return Text(f"Third-party optimizers from {plugins.ZOO_PACKAGE} {version} (lion, adan, lamb, prodigy and over 100 more) "
                    f"run as {plugins.ZOO_PREFIX}NAME; `optbench list --zoo` names them all.")
    names = plugins.zoo_names() if version is not None else None
    if names is None:
        return Text(f"Third-party optimizers (lion, adan, lamb, prodigy and over 100 more from {plugins.ZOO_PACKAGE}, "
                    f"as {plugins.ZOO_PREFIX}NAME) are not installed: {plugins.ZOO_INSTALL}")
    return Text(f"{len(names)} third-party optimizers from {plugins.ZOO_PACKAGE} {plugins.zoo_version()}, "
                f"defaults from each class's signature; Muon and its kin update matrices (weights) their way and the rest "
                f"with AdamW; a few need a closure, the model or second-order gradients, and say so when chosen: "
                + ", ".join(names))

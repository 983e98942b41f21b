"""What each task is, without its code: name, kind, held-out metrics (the main one first), datasets and defaults.

Reading records (``optbench report``, ``check``, ``list``) needs only this, so it never imports
torch; the ``Task`` subclass that loads data and builds the model (named by ``implementation``) is
imported when a run needs it (``optbench.tasks.get_task``). A new task is one module with one
``Task`` subclass plus its entry here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from optbench.errors import UserError, did_you_mean, unknown
from optbench.metrics import is_task_metric
from optbench.spec.dataset import DatasetRef
from optbench.spec.vocabulary import FLOAT32, PRECISIONS

# What a record that names no main metric (``metric_name``) of a task this optbench does not list
# was measured by: the first tasks were regressions.
FALLBACK_METRIC = "rmse"
# Every task's evaluation reports its loss beside its own metrics (``Task.evaluate``).
LOSS = "loss"


@dataclass(frozen=True)
class TaskInfo:
    """One task's description. ``version``: bump when the model, the data or the evaluation changes:
    runs of another version are other runs (another spec hash, so resume never reuses them);
    version 1 is left out of the spec. ``metrics``: the held-out metrics its evaluation reports, as
    bare names registered in ``optbench.metrics.TASK_METRICS`` (each stored as ``test_<m>``, or
    ``val_<m>`` on the validation split); the first is its main one, that cells are ranked by."""

    name: str
    kind: Literal["regression", "classification"]
    description: str
    datasets: Mapping[str, str]  # name -> one-line description; see default_dataset
    default_dataset: str
    default_epochs: int
    implementation: str  # "module:Class" of its Task subclass
    metrics: tuple[str, ...]
    default_batch_size: int = 64
    version: int = 1
    # Per dataset, the options it accepts (``diamonds:rows=20000``; meanings: optbench.spec.dataset).
    dataset_options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The precisions its runs may ask for (``--precision``; optbench.spec.training): bf16 autocast
    # where the model's matrix products and convolutions are the work (not the 1-feature regression).
    precisions: tuple[str, ...] = (FLOAT32,)

    @property
    def metric_name(self) -> str:
        """The task's main held-out metric (bare name): ``rmse`` (lower is better), ``accuracy`` (higher)."""
        return self.metrics[0]


TASKS: dict[str, TaskInfo] = {t.name: t for t in [
    TaskInfo(
        "regression", "regression", "linear model y = m*x + b on one feature (price from carat), MSE loss",
        {"synthetic": "built in: 2,000 rows (or rows=N), price = 7756*carat - 2256 + N(0, 1500^2)",
         "diamonds": "seaborn diamonds, carat -> price (<data-dir>/diamonds.csv, downloaded once); "
                     "rows=N: a seeded sample"},
        default_dataset="synthetic", default_epochs=50, implementation="optbench.tasks.regression:LinearRegression",
        metrics=("rmse", LOSS), dataset_options={"synthetic": ("rows",), "diamonds": ("rows",)}),
    TaskInfo(
        "mlp", "regression", "MLP regressor (in -> 64 -> 64 -> 1, ReLU), MSE loss",
        {"synthetic": "built in: Friedman #1, 5,000 rows, 10 features, noise floor RMSE 1.0",
         "diamonds": "seaborn diamonds, all columns (categoricals one-hot) -> price; rows=N: a seeded sample"},
        default_dataset="synthetic", default_epochs=20, implementation="optbench.tasks.mlp:MLPRegression",
        metrics=("rmse", LOSS), dataset_options={"diamonds": ("rows",)}, precisions=PRECISIONS),
    TaskInfo(
        "cifar10", "classification", "small CNN (2 conv + 2 fc layers) on 32x32 colour images, cross-entropy",
        {"cifar10": "CIFAR-10 (python pickle batches, read without torchvision; 50,000 train / 10,000 test; downloaded once with checksum)",
         "synthetic": "built in: CIFAR-shaped, 5,000 train / 1,000 test, learnable classes"},
        default_dataset="cifar10", default_epochs=10, implementation="optbench.tasks.cifar10:CIFAR10Classification",
        metrics=("accuracy", LOSS), precisions=PRECISIONS),
    TaskInfo(
        "charlm", "classification",
        "character-level language model: decoder-only transformer (2 pre-LayerNorm blocks, width 64, 4 heads, "
        "context 64), next-character cross-entropy; main metric bits per character",
        {"synthetic": "built in: 300,000 characters of seeded Markov text (400 words, 33 characters); "
                      "rows=N: training windows (64 characters) per epoch, default 4,096",
         "tinyshakespeare": "tiny-shakespeare (char-rnn's input.txt, 1.1 MB, public domain; <data-dir>/tinyshakespeare.txt, "
                            "downloaded once with checksum); blocks 90/5/5% train/val/test; rows=N: training windows per epoch"},
        default_dataset="synthetic", default_epochs=6, default_batch_size=32,
        implementation="optbench.tasks.charlm:CharLanguageModel", metrics=("bpc", LOSS, "accuracy"),
        dataset_options={"synthetic": ("rows",), "tinyshakespeare": ("rows",)}, precisions=PRECISIONS),
]}


def task_info(name: str) -> TaskInfo:
    """The catalog entry of ``name``; UserError naming the tasks when there is none."""
    try:
        return TASKS[name]
    except KeyError:
        raise unknown("task", name, TASKS) from None


def main_metric_name(task: str, recorded: Iterable[str | None] = ()) -> str:
    """The bare name of ``task``'s main held-out metric: the catalog's for a task it lists; for
    another (a newer optbench's, read from records) the registered task metric most of its
    ``recorded`` metric names say, else ``FALLBACK_METRIC``."""
    if task in TASKS:
        return TASKS[task].metric_name
    names = Counter(n for n in recorded if isinstance(n, str) and is_task_metric(n))
    return names.most_common(1)[0][0] if names else FALLBACK_METRIC


def reported_metrics(task: str, metric_name: str | None = None) -> tuple[str, ...]:
    """The held-out metrics (bare names) ``task`` reports: the catalog's; for a task it does not list,
    its recorded main metric ``metric_name`` and the loss."""
    if task in TASKS:
        return TASKS[task].metrics
    return tuple(dict.fromkeys((metric_name or FALLBACK_METRIC, LOSS)))


def check_dataset(task: TaskInfo, dataset: str | None) -> str:
    """The dataset to use, as the spec stores it: ``dataset`` if the task has it (with its options
    checked and written canonically, ``diamonds:rows=20000``; see optbench.spec.dataset), the task's
    default when None."""
    if dataset is None:
        return task.default_dataset
    ref = DatasetRef.parse(dataset)
    if ref.name not in task.datasets:
        raise UserError(
            f"unknown dataset '{ref.name}' for task '{task.name}'{did_you_mean(ref.name, task.datasets)}; "
            f"choose from: {', '.join(task.datasets)}"
        )
    return ref.accepting(task.dataset_options.get(ref.name, ()), f"dataset '{ref.name}' of task '{task.name}'").text()

"""The Task contract: load data once, build a model from a seed, a loss, and an evaluation.

A new task is one module with one Task subclass, registered in ``optbench.tasks``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from optbench.tasks.catalog import TaskInfo

# The validation part of the training split (``TaskData.validation_split``): its fraction, and the
# seed of its row permutation. The seed is the data split's, not the run's, so every candidate of a
# sweep, whatever its seed, is tuned on the same validation rows.
VALIDATION_FRACTION = 0.2
VALIDATION_SEED = 0


@dataclass
class TaskData:
    """Preprocessed train/test tensors, all on one device.

    ``target_scale`` converts a loss on standardised targets back to original units (RMSE);
    ``reference`` holds known reference values for the test split, stored with every run's test
    metrics and drawn as lines by the report: ``optimum_rmse`` (the least-squares optimum, lowest on
    the training split; a run can land a hair below it on test), ``noise_floor_rmse`` (the noise σ
    of synthetic data), ``chance_accuracy``. Each name is registered in ``optbench.metrics`` with
    the metric it is a reference for (``reference_of``).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    target_scale: float = 1.0
    reference: dict[str, float] = field(default_factory=dict)

    def to(self, device: torch.device) -> TaskData:
        return TaskData(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)),
            target_scale=self.target_scale,
            reference=dict(self.reference),
        )

    def validation_split(self, fraction: float = VALIDATION_FRACTION, seed: int = VALIDATION_SEED) -> TaskData:
        """The data a validation run sees: ``fraction`` of the training rows (a permutation fixed by
        ``seed``) in place of the test split, the other training rows to train on. The test split is
        not part of the result, and ``reference`` (facts about the test split) is dropped.
        """
        fit, val = split_indices(len(self.x_train), fraction, seed)
        return TaskData(self.x_train[fit], self.y_train[fit], self.x_train[val], self.y_train[val],
                        target_scale=self.target_scale)


class Task(ABC):
    """One benchmark problem's code. What the task is (name, kind, datasets, defaults, version)
    is its ``TaskInfo`` in ``optbench.tasks.catalog``, given at construction (``get_task``)."""

    # Evaluation batch: bounds memory on large test sets without changing results.
    eval_batch_size: ClassVar[int] = 4096

    def __init__(self, info: TaskInfo) -> None:
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def metric_name(self) -> str:
        """The task's main test metric: ``rmse`` (lower is better) or ``accuracy`` (higher)."""
        return self.info.metric_name

    @abstractmethod
    def load(self, dataset: str, data_dir: Path) -> TaskData:
        """Read or generate ``dataset`` into CPU tensors. Deterministic: the split never depends on the run's seed."""

    @abstractmethod
    def build_model(self, data: TaskData) -> nn.Module:
        """A freshly initialised model; the engine seeds torch before calling this."""

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over the batch."""

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: TaskData) -> dict[str, float]:
        """Loss and the main metric over the whole evaluation split ``data.x_test`` (the test split,
        or the validation rows of ``TaskData.validation_split``), as ``test_loss`` and ``test_<metric>``."""
        model.eval()
        n = len(data.x_test)
        loss_sum = torch.zeros((), device=data.x_test.device)
        correct = torch.zeros((), device=data.x_test.device)
        for i in range(0, n, self.eval_batch_size):
            xb, yb = data.x_test[i : i + self.eval_batch_size], data.y_test[i : i + self.eval_batch_size]
            out = model(xb)
            loss_sum += self.loss(out, yb) * len(xb)
            if self.kind == "classification":
                correct += (out.argmax(dim=1) == yb).sum()
        model.train()
        accuracy = correct.item() / n if self.kind == "classification" else math.nan
        return self.held_out_metrics(loss_sum.item() / n, accuracy, data)

    def held_out_metrics(self, test_loss: float, accuracy: float, data: TaskData) -> dict[str, float]:
        """``evaluate``'s dict from the mean loss and the fraction classified right (NaN for
        regression, unused) over the evaluation split; every engine's evaluation ends here."""
        if self.kind == "classification":
            return {"test_loss": test_loss, "test_accuracy": accuracy, **data.reference}
        rmse = math.sqrt(test_loss) * data.target_scale if math.isfinite(test_loss) else math.inf
        metrics = {"test_loss": test_loss, "test_rmse": rmse, **data.reference}
        optimum = data.reference.get("optimum_rmse")
        if optimum:
            metrics["rmse_gap"] = (rmse - optimum) / optimum
        return metrics


class RegressionTask(Task):
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output.squeeze(-1), target)


class ClassificationTask(Task):
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target)


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed train/test split of ``n`` rows (seed 0 by default: the same for every run)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def standardised_regression(x: torch.Tensor, y: torch.Tensor, reference_lstsq: bool = False) -> TaskData:
    """Split, then standardise features and target with training-split statistics.

    With ``reference_lstsq`` the closed-form least-squares optimum (with intercept) is fitted on
    the training split and its test RMSE, in original target units, is stored as ``optimum_rmse``.
    """
    x, y = x.double(), y.double()
    train, test = split_indices(len(x))
    x_mean, x_std = x[train].mean(0), x[train].std(0).clamp_min(1e-12)
    y_mean, y_std = y[train].mean(), y[train].std().clamp_min(1e-12)
    xs, ys = (x - x_mean) / x_std, (y - y_mean) / y_std
    reference = {}
    if reference_lstsq:
        design = torch.cat([xs, torch.ones(len(xs), 1, dtype=xs.dtype)], dim=1)
        coef = torch.linalg.lstsq(design[train], ys[train].unsqueeze(1)).solution
        resid = (design[test] @ coef).squeeze(1) - ys[test]
        reference["optimum_rmse"] = float(resid.pow(2).mean().sqrt() * y_std)
    return TaskData(
        xs[train].float(), ys[train].float(), xs[test].float(), ys[test].float(),
        target_scale=float(y_std), reference=reference,
    )

"""A small MLP regressor on a nonlinear problem with a known noise level."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from optbench.datasets.diamonds import CATEGORICAL, NUMERIC, load_diamonds
from optbench.spec.dataset import DatasetRef
from optbench.tasks.base import RegressionTask, TaskData, standardised_regression

FRIEDMAN_ROWS = 5000
FRIEDMAN_NOISE = 1.0
HIDDEN = 64


def friedman1(n: int = FRIEDMAN_ROWS, noise: float = FRIEDMAN_NOISE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Friedman #1: x ~ U(0,1)^10, y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + N(0, noise^2).

    Features 6-10 are irrelevant. The true function's expected RMSE is the noise level; on the
    fixed test split it scores 1.03 (a model can land a little below that by chance).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 10, generator=g, dtype=torch.float64)
    y = (10 * torch.sin(math.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4])
    return x, y + noise * torch.randn(n, generator=g, dtype=torch.float64)


def diamonds_features(df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    """All columns but price as features (cut, color, clarity one-hot), price as target."""
    numeric = [c for c in NUMERIC if c != "price"]
    onehot = [
        (df[col].astype(str) == level).astype(float).rename(f"{col}={level}")
        for col, levels in CATEGORICAL.items() for level in levels
    ]
    features = pd.concat([df[numeric], *onehot], axis=1)
    return (torch.tensor(features.to_numpy(dtype=float), dtype=torch.float64),
            torch.tensor(df["price"].to_numpy(dtype=float), dtype=torch.float64))


class MLPRegression(RegressionTask):
    """The code of task \'mlp\' (its name, datasets and defaults: ``optbench.tasks.catalog``)."""

    def load(self, dataset: str, data_dir: Path) -> TaskData:
        ref = DatasetRef.parse(dataset)  # diamonds with rows=N where given
        if ref.name == "diamonds":
            data = standardised_regression(*diamonds_features(load_diamonds(data_dir, ref.option("rows"))))
        else:
            data = standardised_regression(*friedman1())
            data.reference["noise_floor_rmse"] = FRIEDMAN_NOISE
        return data

    def build_model(self, data: TaskData) -> nn.Module:
        return nn.Sequential(
            nn.Linear(data.x_train.shape[1], HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, 1),
        )

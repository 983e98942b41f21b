"""Linear regression y = m*x + b on one feature: the classic "diamond price from carat" comparison."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from optbench.datasets.diamonds import load_diamonds
from optbench.spec.dataset import DatasetRef
from optbench.tasks.base import RegressionTask, TaskData, standardised_regression

# The synthetic line mimics diamonds: the least-squares fit of price on carat over the real
# table is price = 7756 * carat - 2256 with residual standard deviation about 1549 dollars.
SYNTHETIC_SLOPE = 7756.0
SYNTHETIC_INTERCEPT = -2256.0
SYNTHETIC_NOISE = 1500.0
SYNTHETIC_ROWS = 2000


def synthetic_line(n: int = SYNTHETIC_ROWS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """carat ~ U(0.2, 3.0); price = 7756 * carat - 2256 + N(0, 1500^2). Deterministic for a seed."""
    g = torch.Generator().manual_seed(seed)
    carat = 0.2 + 2.8 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    noise = SYNTHETIC_NOISE * torch.randn(n, generator=g, dtype=torch.float64)
    return carat, SYNTHETIC_SLOPE * carat[:, 0] + SYNTHETIC_INTERCEPT + noise


class LinearRegression(RegressionTask):
    """The code of task \'regression\' (its name, datasets and defaults: ``optbench.tasks.catalog``)."""

    def load(self, dataset: str, data_dir: Path) -> TaskData:
        ref = DatasetRef.parse(dataset)  # diamonds or synthetic, with rows=N where given
        if ref.name == "diamonds":
            df = load_diamonds(data_dir, ref.option("rows"))
            x = torch.tensor(df[["carat"]].to_numpy(), dtype=torch.float64)
            y = torch.tensor(df["price"].to_numpy(), dtype=torch.float64)
            return standardised_regression(x, y, reference_lstsq=True)
        data = standardised_regression(*synthetic_line(ref.option("rows") or SYNTHETIC_ROWS), reference_lstsq=True)
        data.reference["noise_floor_rmse"] = SYNTHETIC_NOISE  # the expected RMSE of the true line
        return data

    def build_model(self, data: TaskData) -> nn.Module:
        return nn.Linear(data.x_train.shape[1], 1)

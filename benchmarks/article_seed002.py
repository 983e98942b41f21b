"""The from-scratch article's own evaluation, recomputed (docs/articles.md, "What matches").

The article samples 20,000 rows of diamonds (np.random.seed(42); shuffle), trains on the first
16,000 unscaled, and reports "Actual RMSE" on the last 4,000 after multiplying the already raw
prices and predictions by the price's standard deviation and adding its mean again. This prints, in
those units, what the best line (least squares on its training rows) and predicting 0 score, and how
far the article's three printed RMSEs are from the best line.

    python benchmarks/article_seed002.py [path/to/diamonds.csv]   # default ../shared/data/diamonds.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ARTICLE = {"SGD": 1424002054.8658, "SGD with Momentum": 14239929470.0458, "RMSprop": 137715232.4602}


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data" / "diamonds.csv"
    xy = pd.read_csv(path)[["carat", "price"]].to_numpy(dtype=float)
    np.random.seed(42)
    np.random.shuffle(xy)
    xy = xy[:20_000]
    mean, std = xy.mean(axis=0), xy.std(axis=0)
    train, test = xy[:16_000], xy[16_000:]
    m, b = np.linalg.lstsq(np.c_[train[:, 0], np.ones(len(train))], train[:, 1], rcond=None)[0]

    def article_rmse(pred: np.ndarray) -> float:  # its evaluation: raw values "de-normalised" again
        return float(np.sqrt(np.mean(((test[:, 1] * std[1] + mean[1]) - (pred * std[1] + mean[1])) ** 2)))

    best = article_rmse(m * test[:, 0] + b)
    zero = article_rmse(np.zeros(len(test)))
    dollars = float(np.sqrt(np.mean((test[:, 1] - (m * test[:, 0] + b)) ** 2)))
    print(f"price std {std[1]:,.1f}, mean {mean[1]:,.1f}")
    print(f"best line: {best:,.0f} in the article's units ({dollars:,.0f} dollars); predicting 0: {zero:,.0f}")
    for name, value in ARTICLE.items():
        print(f"{name}: {value / best:,.0f}x the best line, {'above' if value > zero else 'below'} predicting 0")


if __name__ == "__main__":
    main()

"""Regression steps/s: optbench's engine against a minimal hand-written eager PyTorch loop.

Both train the linear model y = m*x + b (nn.Linear(1, 1)) on the same standardised synthetic data
(1,600 training rows) with the same optimizer, batch size and epochs, side by side in one process,
interleaved, best of ``--repeats``. Prints steps/s for each and the ratio (target >= 0.9x).

    python benchmarks/bench_regression.py [--opt adam] [--epochs 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from optbench.engine.eager import DEFAULT_DATA_DIR, load_data, run
from optbench.optim.construct import build_optimizer
from optbench.optim.hparams import resolve_hparams
from optbench.spec import RunSpec
from optbench.tasks import get_task


def minimal_loop(x: torch.Tensor, y: torch.Tensor, opt: str, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    optimizer = build_optimizer(opt, model.parameters(), resolve_hparams(opt, {}))
    n, steps = len(x), 0
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])
            loss.backward()
            optimizer.step()
            steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", default="adam")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    data = load_data(get_task("regression"), "synthetic", DEFAULT_DATA_DIR, "cpu")
    spec = RunSpec(task="regression", dataset="synthetic", optimizer=args.opt, hparams=resolve_hparams(args.opt, {}),
                   epochs=args.epochs, batch_size=args.batch_size, seed=0, device="cpu")
    run(spec)  # warm-up
    minimal, ours = [], []
    for _ in range(args.repeats):
        minimal.append(minimal_loop(data.x_train, data.y_train, args.opt, args.epochs, args.batch_size))
        ours.append(run(spec).metrics["steps_per_s"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.opt}, batch {args.batch_size}, "
          f"{args.epochs} epochs of {len(data.x_train)} rows")
    print(f"minimal eager loop: {max(minimal):9.0f} steps/s")
    print(f"optbench          : {max(ours):9.0f} steps/s")
    print(f"optbench / minimal: {max(ours) / max(minimal):6.2f}x   (target >= 0.9x)")


if __name__ == "__main__":
    main()

"""Vectorized engine vs eager engine and vs the from-scratch article's NumPy loop, side by side.

(a) The MLP task with Adam, 32 seeds: wall time of the eager engine for the 32 runs against the
    vectorized engine for the same 32 records (set-up, training and evaluation included):
    ``speedup=<x>`` (target >= 10).
(b) Linear regression on the diamonds-like synthetic data, Adam, batch 64, K=256 replicas:
    replica-steps/s of the vectorized engine's timed training against a NumPy re-implementation
    of the article's mini-batch Adam loop on the same data: ``vs_numpy=<x>`` (target >= 5).
    The two alternate ``--repeats`` times and the best of each counts; the NumPy loop runs for at
    least as long as the engine's timed training did, so on a shared machine both are measured
    over windows of the same length (a loop timed for a millisecond can slip between two
    preemptions, one timed for tens of milliseconds cannot).
(c) MLP, Adam, 36 learning rates against 36 seeds of one rate, the engine's timed training
    (``group_train_seconds``), alternated ``--repeats`` times, best of each:
    ``grid_vs_seeds=<x>`` (target <= 1.3; the grid steps as one stack, optbench.engine.rowwise).
(d) the (b) group at K=1024 and K=4096 against K=256, replica-steps/s of the timed training, best
    of ``--repeats`` rounds: ``k1024_vs_k256=<x>``, ``k4096_vs_k256=<x>`` (targets >= 1; torch's
    thread count from the thread policy, optbench.engine.threads, unless OMP_NUM_THREADS is set).

The load average is printed with the figures: on a busy machine both move.

Usage: python benchmarks/bench_vectorized.py [--epochs-mlp N] [--epochs-reg N] [--repeats N]
       [--only a|b|c|d] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from optbench.engine import vectorized
from optbench.engine.eager import load_data, run
from optbench.engine.vectorized import train_group
from optbench.optim.registry import REGISTRY
from optbench.spec import RunSpec
from optbench.tasks import get_task

DATA = Path("data")


def specs(task: str, k: int, epochs: int, batch: int, device: str) -> list[RunSpec]:
    hparams = dict(REGISTRY["adam"].defaults)
    return [RunSpec(task, "synthetic", "adam", hparams, epochs, batch, seed, device, engine="vectorized")
            for seed in range(k)]


def grid(task: str, k: int, epochs: int, batch: int, device: str) -> list[RunSpec]:
    """``k`` learning rates, log-spaced over two decades around Adam's default, seed 0."""
    hparams = dict(REGISTRY["adam"].defaults)
    return [RunSpec(task, "synthetic", "adam", {**hparams, "lr": hparams["lr"] * 10 ** (-1 + 2 * i / (k - 1))},
                    epochs, batch, 0, device, engine="vectorized") for i in range(k)]


def bench_grid(epochs: int, repeats: int, device: str) -> float:
    load_data(get_task("mlp"), "synthetic", DATA, device)
    train_group(specs("mlp", 2, 1, 64, device), DATA)  # warm-up
    seeds = values = per_value = math.inf

    def seconds(group: list[RunSpec]) -> float:
        return train_group(group, DATA)[0].metrics["group_train_seconds"]

    for _ in range(repeats):
        seeds = min(seeds, seconds(specs("mlp", 36, epochs, 64, device)))
        values = min(values, seconds(grid("mlp", 36, epochs, 64, device)))
        with one_optimizer_per_value():
            per_value = min(per_value, seconds(grid("mlp", 36, epochs, 64, device)))
    print(f"(c) mlp adam x {epochs} epochs, best of {repeats}, timed training: 36 seeds {seeds:.3f}s, 36 learning "
          f"rates {values:.3f}s; the same grid with one optimizer per value (the engine's way before "
          f"optbench.engine.rowwise, and still for other optimizers) {per_value:.3f}s = {per_value / seeds:.2f}x seeds")
    return values / seeds


@contextlib.contextmanager
def one_optimizer_per_value() -> Iterator[None]:
    """The vectorized engine with its per-row step switched off: one leaf and optimizer per value."""
    saved = vectorized.unsupported
    vectorized.unsupported = lambda *args: "switched off"
    try:
        yield
    finally:
        vectorized.unsupported = saved


def bench_scaling(epochs: int, repeats: int, device: str) -> dict[int, float]:
    train_group(specs("regression", 2, 1, 64, device), DATA)  # warm-up
    rates = dict.fromkeys((256, 1024, 4096), 0.0)
    for _ in range(repeats):
        for k in rates:
            m = train_group(specs("regression", k, epochs, 64, device), DATA)[0]
            rates[k] = max(rates[k], m.metrics["steps"] * k / m.metrics["group_train_seconds"])
    policy = f"{m.environment['torch_threads']} thread(s): {m.environment.get('thread_policy', 'torch default')}"
    print(f"(d) regression adam batch 64 x {epochs} epochs, best of {repeats}, replica-steps/s: "
          + ", ".join(f"K={k} {r:,.0f}" for k, r in rates.items()) + f" (K=4096 on {policy})")
    return {k: r / rates[256] for k, r in rates.items()}


def bench_speedup(epochs: int, device: str) -> float:
    group = specs("mlp", 32, epochs, 64, device)
    load_data(get_task("mlp"), "synthetic", DATA, device)  # data prepared once, outside both clocks
    t0 = time.perf_counter()
    for s in group:
        run(dataclasses.replace(s, engine="eager"), DATA)
    eager = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_group(group, DATA)
    vectorized = time.perf_counter() - t0
    print(f"(a) mlp adam 32 seeds x {epochs} epochs: eager {eager:.2f}s, vectorized {vectorized:.2f}s")
    return eager / vectorized


def numpy_adam_steps_per_s(x: np.ndarray, y: np.ndarray, min_seconds: float, batch: int = 64,
                           lr: float = 1e-3) -> float:
    """The article's loop: y = m*x + b, MSE, mini-batch Adam written out in NumPy; whole epochs
    until at least ``min_seconds`` have passed."""
    rng = np.random.default_rng(0)
    m = b = 0.0
    vm = vb = sm = sb = 0.0
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    n = len(x)
    t0 = time.perf_counter()
    while t == 0 or time.perf_counter() - t0 < min_seconds:
        perm = rng.permutation(n)
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            xb, yb = x[idx], y[idx]
            err = m * xb + b - yb
            gm, gb = 2 * np.mean(err * xb), 2 * np.mean(err)
            t += 1
            vm, vb = b1 * vm + (1 - b1) * gm, b1 * vb + (1 - b1) * gb
            sm, sb = b2 * sm + (1 - b2) * gm * gm, b2 * sb + (1 - b2) * gb * gb
            mh, bh = vm / (1 - b1**t), vb / (1 - b1**t)
            smh, sbh = sm / (1 - b2**t), sb / (1 - b2**t)
            m -= lr * mh / (np.sqrt(smh) + eps)
            b -= lr * bh / (np.sqrt(sbh) + eps)
    return t / (time.perf_counter() - t0)


def bench_vs_numpy(epochs: int, repeats: int, device: str) -> float:
    data = load_data(get_task("regression"), "synthetic", DATA, "cpu")
    x, y = data.x_train[:, 0].double().numpy(), data.y_train.reshape(-1).double().numpy()
    group = specs("regression", 256, epochs, 64, device)
    train_group(group[:2], DATA)  # warm-up: first calls into torch's kernels
    rate = numpy_rate = 0.0
    for _ in range(repeats):
        m = train_group(group, DATA)[0].metrics
        rate = max(rate, m["steps"] * m["group_size"] / m["group_train_seconds"])
        numpy_rate = max(numpy_rate, numpy_adam_steps_per_s(x, y, m["group_train_seconds"]))
    print(f"(b) regression adam batch 64, best of {repeats}: numpy {numpy_rate:,.0f} steps/s, "
          f"vectorized K=256 {rate:,.0f} replica-steps/s ({1e6 / rate:.2f} us per replica-step)")
    return rate / numpy_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs-mlp", type=int, default=2)
    parser.add_argument("--epochs-reg", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of (b); the best of each side counts")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], help="run only one of the measurements")
    parser.add_argument("--epochs-grid", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.only in (None, "a"):
        print(f"speedup={bench_speedup(args.epochs_mlp, args.device):.1f} (target >= 10)")
    if args.only in (None, "b"):
        print(f"vs_numpy={bench_vs_numpy(args.epochs_reg, args.repeats, args.device):.1f} (target >= 5)")
    if args.only in (None, "c"):
        print(f"grid_vs_seeds={bench_grid(args.epochs_grid, args.repeats, args.device):.2f} (target <= 1.3)")
    if args.only in (None, "d"):
        ratios = bench_scaling(args.epochs_reg, min(args.repeats, 3), args.device)
        print(f"k1024_vs_k256={ratios[1024]:.2f} (target >= 1), k4096_vs_k256={ratios[4096]:.2f} (target >= 1)")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

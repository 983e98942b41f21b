"""Vectorized engine vs eager engine: how far apart the same runs end up, per task and optimizer.

For each task the vectorized engine trains (regression and mlp, synthetic data) and each built-in
elementwise optimizer, the suite's own specs at the task's default budget (epochs, batch size) and
the optimizer's default hyperparameters, over ``--seeds`` seeds, are trained by the eager engine and
by the vectorized engine (the seeds of one optimizer as one group). Printed per task and optimizer,
the largest relative difference |a - b| / max(|a|, |b|) over the seeds (``0`` when bit-identical) of:

- ``epoch1``: the first curve point's train and test loss;
- ``test_<metric>``: the final test metric (``test_rmse``);
- ``train loss``: the final train loss;
- ``curve``: any curve point's train or test loss;

then per task the maximum over optimizers (the ``max`` row, with the optimizer that reached it
below) and a summary table of those maxima. The optimizer step itself is bit-identical on stacked
replicas (``tests/test_vectorized.py``); what these figures show is the float rounding of the
batched matmuls (a different summation order, not a different algorithm) growing with training.
``tests/test_vectorized.py`` asserts tolerances taken from this script's output.

Torch runs on ``--threads`` threads (default 1), so the figures repeat exactly on one machine and
torch build for the same arguments. They depend on ``--seeds`` too: the group size changes the
batched reduction order, so a seed's figures move (within the same bounds) when others join it.

Usage: python benchmarks/bench_equivalence.py [--tasks regression mlp] [--optimizers NAME ...]
       [--seeds N] [--epochs N] [--threads N] [--device cpu|cuda] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from optbench.config.suite import build_specs, load_suite
from optbench.engine import get_engine
from optbench.engine.base import RunEvents
from optbench.engine.vectorized import TASKS
from optbench.spec import RunResult, RunSpec
from optbench.tasks import get_task

# The built-in elementwise optimizers (docs/fair-comparisons.md, Engines table), in that table's order.
OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "amsgrad",
              "nadam", "radam", "adamax"]
COLUMNS = ("epoch1", "test metric", "train loss", "curve")


def rel(a: float | None, b: float | None) -> float:
    """|a - b| / max(|a|, |b|); 0 when both are equal (None included), inf when only one is None."""
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def differences(eager: RunResult, vec: RunResult) -> dict[str, float]:
    """The four relative differences between one run's eager and vectorized results; a different
    status or curve length is an infinite difference."""
    if eager.status != vec.status or len(eager.curve) != len(vec.curve) or not eager.curve:
        return dict.fromkeys(COLUMNS, math.inf)
    per_point = [max(rel(e.train_loss, v.train_loss), rel(e.test_loss, v.test_loss))
                 for e, v in zip(eager.curve, vec.curve)]
    metric = f"test_{eager.metric_name}"
    return {"epoch1": per_point[0], "test metric": rel(eager.metrics.get(metric), vec.metrics.get(metric)),
            "train loss": rel(eager.metrics.get("final_train_loss"), vec.metrics.get("final_train_loss")),
            "curve": max(per_point)}


def compare(group: Sequence[RunSpec], data_dir: Path) -> tuple[dict[str, float], float, float, set[str]]:
    """Train ``group`` (one optimizer's seeds) both ways: the largest difference per column over the
    seeds, the eager and vectorized wall seconds, and the statuses seen."""
    t0 = time.perf_counter()
    eager = list(get_engine("eager").run_group(group, data_dir, RunEvents()))
    t1 = time.perf_counter()
    vec = list(get_engine("vectorized").run_group([dataclasses.replace(s, engine="vectorized") for s in group],
                                                  data_dir, RunEvents()))
    t2 = time.perf_counter()
    worst = dict.fromkeys(COLUMNS, 0.0)
    for e, v in zip(eager, vec):
        for key, value in differences(e, v).items():
            worst[key] = max(worst[key], value)
    return worst, t1 - t0, t2 - t1, {r.status for r in eager + vec}


def fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def header(first: str, metric: str) -> str:
    return f"{first:<11}{'epoch1':>9}{'test_' + metric:>12}{'train loss':>12}{'curve':>9}"


def row(label: str, worst: dict[str, float]) -> str:
    return (f"{label:<11}{fmt(worst['epoch1']):>9}{fmt(worst['test metric']):>12}{fmt(worst['train loss']):>12}"
            f"{fmt(worst['curve']):>9}")


def bench_task(task: str, optimizers: list[str], seeds: int, epochs: int | None, device: str,
               data_dir: Path) -> dict[str, float]:
    """Print the task's table (one row per optimizer, then the max over optimizers and where it
    was) and return that max per column."""
    suite = load_suite({"tasks": [task], "dataset": "synthetic", "optimizers": optimizers, "seeds": seeds,
                        "device": device}, {"epochs": epochs})
    specs = build_specs(suite)
    first = specs[0]
    print(f"\n{task}: {first.epochs} epochs, batch {first.batch_size}, seeds {first.seed}..{first.seed + seeds - 1}, "
          "default hyperparameters")
    print(header("optimizer", get_task(task).metric_name) + f"{'eager s':>9}{'vec s':>8}  status")
    summary = dict.fromkeys(COLUMNS, 0.0)
    where = dict.fromkeys(COLUMNS, "")
    seconds = [0.0, 0.0]
    for name in optimizers:
        group = [s for s in specs if s.optimizer == name]
        worst, eager_s, vec_s, statuses = compare(group, data_dir)
        print(row(name, worst) + f"{eager_s:>9.1f}{vec_s:>8.1f}  {','.join(sorted(statuses))}", flush=True)
        seconds = [seconds[0] + eager_s, seconds[1] + vec_s]
        for key, value in worst.items():
            if value > summary[key]:  # ties keep the first; all zero (bit-identical) names none
                summary[key], where[key] = value, name
    print(row("max", summary) + f"{seconds[0]:>9.1f}{seconds[1]:>8.1f}")
    print(f"{'(worst)':<11}{where['epoch1']:>9}{where['test metric']:>12}{where['train loss']:>12}"
          f"{where['curve']:>9}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--optimizers", nargs="+", default=OPTIMIZERS, metavar="NAME")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per optimizer (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="default: each task's own")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: reproducible)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}, "
          f"load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    summaries = {task: bench_task(task, args.optimizers, args.seeds, args.epochs, args.device, args.data_dir)
                 for task in args.tasks}
    print("\nper task, the max over optimizers and seeds")
    print(header("task", "metric"))
    for task, summary in summaries.items():
        print(row(task, summary))
    print(f"{time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

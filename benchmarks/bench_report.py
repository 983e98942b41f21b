"""Seconds and peak memory of `optbench report`, end to end, on 100 and 5,000 stored runs.

Writes synthetic but realistic records with the store's own writer (no training): three tasks on
two datasets each, the built-in optimizers at several learning rates, five to ten seeds, 25-epoch
curves, a time-to-target goal, and a share of validation-split sweeps with their final runs, as
`optbench run --select` leaves them. Then times `optbench report` as a real process (start-up and
imports included), in the terminal format: without charts; with charts (PNG, the default) drawn
into an empty folder ("cold"); and again over the same results, where every chart is unchanged
and kept ("warm"). Best of ``--repeats`` each: wall seconds, CPU seconds (user + system, the
chart workers included; a busy machine inflates them far less) and peak RSS of the process tree
(``wait4``), with the load average at the end.

Targets on this project's 2-core machine: under 2 s for 100 records, under 10 s for 5,000.

    python benchmarks/bench_report.py [--repeats 2] [--sizes 100,5000]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optbench.optim.registry import REGISTRY
from optbench.spec.training import TrainingOptions
from optbench.spec import CurvePoint, RunResult, RunSpec
from optbench.store.records import save_result

ROOT = Path(__file__).resolve().parents[1]
TASKS = [("regression", "synthetic", "rmse", 1500.0), ("regression", "diamonds", "rmse", 1550.0),
         ("mlp", "synthetic", "rmse", 1.1), ("mlp", "diamonds", "rmse", 600.0),
         ("cifar10", "synthetic", "accuracy", 0.6), ("cifar10", "cifar10", "accuracy", 0.55)]
EPOCHS = 25
ENVIRONMENT = {"optbench": "0.1.0", "torch": "2.15.0", "python": "3.11.7", "platform": "Linux", "cpu": "AMD EPYC",
               "cpu_count": 2, "torch_threads": 2, "cuda": None, "cudnn": None, "git_commit": None,
               "device": "cpu", "device_name": "cpu"}


def plan(n: int) -> list[tuple]:
    """(task, dataset, metric, scale, optimizer, lr factor, seed, split) for ``n`` runs: cells of
    task x dataset x optimizer x learning rate, each with one sweep candidate (validation split),
    then test runs seed after seed until there are ``n``. 100 runs: 2 problems x 4 optimizers x 2
    learning rates, about 5 seeds; 5,000: 6 problems x 12 optimizers x 7 learning rates, about 9."""
    small = n <= 1000
    tasks = [TASKS[0], TASKS[4]] if small else TASKS
    optimizers = ["sgd", "momentum", "adam", "adamw"] if small else list(REGISTRY)
    factors = [1.0, 0.1] if small else [1.0, 0.1, 10.0, 0.3, 3.0, 0.03, 30.0]
    cells = list(itertools.product(tasks, optimizers, factors))
    runs = [(*task, opt, factor, 0, "validation") for task, opt, factor in cells]
    for seed in itertools.count():
        if len(runs) >= n:
            break
        runs.extend((*task, opt, factor, seed, "test") for task, opt, factor in cells)
    return runs[:n]


def record(task: str, dataset: str, metric: str, scale: float, optimizer: str, factor: float, seed: int,
           split: str, rng: random.Random) -> RunResult:
    defaults = dict(REGISTRY[optimizer].defaults)
    hparams = {**defaults, "lr": defaults["lr"] * factor}
    spec = RunSpec(task=task, dataset=dataset, optimizer=optimizer, hparams=hparams, epochs=EPOCHS, batch_size=64,
                   seed=seed, device="cpu", training=TrainingOptions(split=split))
    quality = 1 + abs(math.log10(factor)) * 0.3 + rng.random() * 0.05
    final = scale * quality if metric == "rmse" else min(0.99, scale / quality)
    seconds = 0.08 * EPOCHS * (1 + rng.random() * 0.2)
    curve = []
    for e in range(1, EPOCHS + 1):
        progress = 1 - math.exp(-e / 5)
        loss = 2.0 * (1 - progress) + 0.3 * quality
        value = final / progress if metric == "rmse" else final * progress
        point = dict(epoch=e, time_s=seconds * e / EPOCHS, train_loss=loss, test_loss=loss * 1.1, test_metric=value,
                     lr=hparams["lr"])
        if split == "validation":
            point.update(test_loss=None, test_metric=None, val_loss=loss * 1.1, val_metric=value)
        curve.append(CurvePoint(**point))
    prefix = "val" if split == "validation" else "test"
    metrics = {"train_seconds": seconds, "epochs_completed": EPOCHS, "steps": 25 * EPOCHS, "steps_per_s": 25 * EPOCHS / seconds,
               "samples_per_s": 1600 * EPOCHS / seconds, "final_train_loss": curve[-1].train_loss,
               f"{prefix}_loss": curve[-1].train_loss * 1.1, f"{prefix}_{metric}": final}
    target = {"metric": "loss", "value": 0.9} if metric == "rmse" else {"metric": "accuracy", "value": 0.4}
    return RunResult(spec, "ok", metrics, curve, ENVIRONMENT, f"2026-11-21T10:{seed:02d}:00+00:00",
                     f"2026-11-21T10:{seed:02d}:30+00:00", f"{rng.getrandbits(48):012x}", metric_name=metric,
                     stage="sweep" if split == "validation" else None, target=target, experiment="bench")


def write_results(n: int, results: Path) -> None:
    rng = random.Random(n)
    for run in plan(n):
        save_result(record(*run, rng=rng), results)


def report(results: Path, out: Path, charts: bool) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system: what the machine's load does not inflate; its
    chart workers included) and peak RSS (MB, the largest of the process and its workers) of one
    `optbench report` process."""
    args = [sys.executable, "-m", "optbench", "report", "--results-dir", str(results), "--out", str(out),
            "--charts" if charts else "--no-charts"]
    env = {**os.environ, "COLUMNS": "120", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=results)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"optbench report failed:\n{stderr}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="100,5000")
    args = parser.parse_args()
    targets = {100: 2.0, 5000: 10.0}
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "results"
            write_results(n, results)
            for charts in ("no", "cold", "warm"):
                runs = []
                for _ in range(args.repeats):
                    out = Path(tmp) / "out"
                    if charts == "cold":
                        shutil.rmtree(out, ignore_errors=True)
                    runs.append(report(results, out, charts != "no"))
                seconds, cpu, _ = min(runs)
                peak = max(m for *_, m in runs)
                goal = targets.get(n)
                verdict = "" if goal is None else f"  target < {goal:g} s: {'met' if seconds < goal else 'NOT met'}"
                print(f"records={n:5d} charts={charts:4s} seconds={seconds:6.2f} cpu_s={cpu:6.2f} "
                      f"peak_rss_mb={peak:5.0f} load={os.getloadavg()[0]:4.1f}{verdict}", flush=True)


if __name__ == "__main__":
    main()

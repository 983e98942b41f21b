"""Does `optbench check` tell a slower optimizer from a busy machine, on every task? Real `optbench` processes, this machine.

A small suite (a plugin optimizer ``slow_adam.py:SlowAdam`` on regression and MLP on built-in data
and on the CIFAR CNN on synthetic images for one epoch; 2 seeds, one thread) is run and saved as the baseline beside three CPU-burning processes (a baseline saved during a load
burst must not hide later slowdowns; ``baseline save`` re-measures with its default repeats). Then,
per scenario, ``--trials`` times: run the suite into a fresh directory and check it against the
baseline with the default tolerances (no ``--config``), as a user would. Half the checks run beside
three CPU-burning processes. The scenarios are code changes the spec cannot see
(``benchmarks/slow_adam.py``):

- ``A/A``: unchanged code; an exit 1 is a false alarm (counted per task: a failing row of that task);
- ``step 2x`` / ``step 1.5x``: SlowAdam's step busy-waits, in CPU time, for its own duration (or half);
- ``lr halved``: SlowAdam's step uses half the learning rate (a quality regression).

Per task: false alarms out of the trials (target 0), catches of the 1.5x step (a failing
``step_cost`` row of SlowAdam; target at least 9 of 10) with the measured ratio's range, catches
of the 2x step and of the halved learning rate (10 of 10 each).

Trials run ``--jobs`` at a time (default 2, one per core), each in its own folder; busy trials run
together, beside one set of three burners, so a check never sees more than three.

    python benchmarks/bench_check.py [--trials 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = "slow_adam.py:SlowAdam"
TASKS = ("regression", "mlp", "cifar10")
SUITE = """tasks = [
    { name = "regression", dataset = "synthetic", epochs = 20 },
    { name = "mlp", dataset = "synthetic", epochs = 3 },
    { name = "cifar10", dataset = "synthetic", epochs = 1, batch_size = 128 },
]
optimizers = ["slow_adam.py:SlowAdam"]
seeds = 2
device = "cpu"
"""
SCENARIOS = {
    "A/A (unchanged)": {},
    "step 2x": {"OPTBENCH_SLOWDOWN": "2"},
    "step 1.5x": {"OPTBENCH_SLOWDOWN": "1.5"},
    "lr halved": {"OPTBENCH_LR_SCALE": "0.5"},
}
BURNERS = 3
RUNTIME = "step_cost"


@contextmanager
def burners(on: bool):
    """``BURNERS`` processes that each burn a core for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BURNERS if on else 0)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def optbench(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbench", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)


def run_suite(work: Path, results: str, env: dict[str, str]) -> None:
    done = optbench(["run", "--config", "suite.toml", "--results-dir", results, "--quiet"], work, env)
    if done.returncode != 0:
        sys.exit(f"optbench run failed:\n{done.stderr}")


def trial(work: Path, name: str, env: dict[str, str], busy: bool) -> dict:
    results = f"r-{name}"
    run_suite(work, results, env)
    check = optbench(["check", "--baseline", "baseline.json", "--results-dir", results, "--json", f"{results}.json"], work, env)
    if check.returncode not in (0, 1):
        sys.exit(f"optbench check failed:\n{check.stderr}")
    rows = json.loads((work / f"{results}.json").read_text())["rows"]
    shutil.rmtree(work / results)
    plugin = [r for r in rows if r["label"].startswith(PLUGIN)]
    return {
        "busy": busy, "load": os.getloadavg()[0],
        "ratio": {r["task"]: r["change"] for r in plugin if r["metric"] == RUNTIME and r["change"] is not None},
        "verdicts": {r["task"]: r["verdict"] for r in plugin if r["metric"] == RUNTIME},
        "runtime_fail": {r["task"] for r in plugin if r["metric"] == RUNTIME and r["verdict"] == "fail"},
        "quality_fail": {r["task"] for r in plugin if r["metric"] not in (RUNTIME, "train_seconds") and r["verdict"] == "fail"},
        "any_fail": {r["task"]: sorted({x["metric"] for x in rows if x["task"] == r["task"] and x["verdict"] == "fail"})
                     for r in rows if r["verdict"] == "fail"},
        "remeasured": {r["task"] for r in rows if r["remeasured"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.setpgrp()  # one process group with its burners and optbench processes
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))  # kill PID stops them all
    base_env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench_check-") as tmp:
        work = Path(tmp)
        shutil.copy(HERE / "slow_adam.py", work)
        (work / "suite.toml").write_text(SUITE)
        with burners(True):
            run_suite(work, "r-baseline", base_env)
            saved = optbench(["baseline", "save", "--results-dir", "r-baseline", "--out", "baseline.json"], work, base_env)
        if saved.returncode != 0:
            sys.exit(saved.stderr)
        saved_note = " ".join(line for line in saved.stderr.splitlines() if line.startswith("warning"))
        jobs = [(scenario, i) for scenario in SCENARIOS for i in range(args.trials)]
        results: dict[tuple[str, int], dict] = {}
        for busy in (True, False):  # busy trials together beside one set of burners, then the quiet ones
            todo = [(s, i) for s, i in jobs if (i % 2 == 0) == busy]
            with burners(busy), ThreadPoolExecutor(args.jobs) as pool:
                futures = {key: pool.submit(trial, work, f"{key[1]}-{list(SCENARIOS).index(key[0])}",
                                            {**base_env, **SCENARIOS[key[0]]}, busy) for key in todo}
                for key, future in futures.items():
                    results[key] = t = future.result()
                    loads.append(t["load"])
                    print(f"{key[0]} #{key[1]}{' (busy)' if busy else ''}: load {t['load']:.1f}, fails "
                          f"{ {task: m for task, m in t['any_fail'].items()} }, ratios "
                          f"{ {task: round(r, 2) for task, r in t['ratio'].items()} }, {RUNTIME} verdicts {t['verdicts']}",
                          file=sys.stderr, flush=True)
            print(f"{'busy' if busy else 'quiet'} trials done, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} cores, {args.trials} checks per scenario, {(args.trials + 1) // 2} of them beside {BURNERS} "
          f"CPU burners, {args.jobs} at a time; baseline saved beside {BURNERS} burners; {time.perf_counter() - start:.0f} s; "
          f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}")
    if saved_note:
        print(f"baseline save: {saved_note}")
    print()
    print(f"| task | A/A false alarms | step 1.5x caught | 1.5x {RUNTIME} ratio | step 2x caught | 2x ratio | lr halved caught |"
          " A/A ratio | A/A re-measured |")
    print("|---|---|---|---|---|---|---|---|---|")
    n = args.trials
    for task in TASKS:
        trials = {s: [results[(s, i)] for i in range(n)] for s in SCENARIOS}

        def span(s: str, task: str = task, trials: dict = trials) -> str:
            v = [t["ratio"][task] for t in trials[s] if task in t["ratio"]]
            return f"{min(v):.2f}-{max(v):.2f}x" if v else "-"

        alarms = [t for t in trials["A/A (unchanged)"] if task in t["any_fail"]]
        why = sorted({m for t in alarms for m in t["any_fail"][task]})
        print(f"| {task} | {len(alarms)} of {n}{' (' + ', '.join(why) + ')' if why else ''} (target 0) | "
              f"{sum(task in t['runtime_fail'] for t in trials['step 1.5x'])} of {n} (target >= 9) | {span('step 1.5x')} | "
              f"{sum(task in t['runtime_fail'] for t in trials['step 2x'])} of {n} (target 10) | {span('step 2x')} | "
              f"{sum(task in t['quality_fail'] for t in trials['lr halved'])} of {n} (target 10) | {span('A/A (unchanged)')} | "
              f"{sum(task in t['remeasured'] for t in trials['A/A (unchanged)'])} |")


if __name__ == "__main__":
    main()

"""Does `optbench check` tell a slower optimizer from a busy machine? Real `optbench` processes, this machine.

A small suite (regression and MLP on built-in data, a plugin optimizer ``slow_adam.py:SlowAdam``
and ``sgd``, 3 seeds, one thread) is run once and saved as the baseline, while a CPU-burning
process runs beside it (a baseline saved on a busy machine must not hide later slowdowns). Then,
per scenario, ``--trials`` times: run the suite into a fresh directory and check it against the
baseline with the default tolerances (no ``--config``), as a user would. Every other trial runs
with a CPU burner beside it. The scenarios are code changes the spec cannot see
(``benchmarks/slow_adam.py``):

- ``A/A``: unchanged code; any exit 1 is a false alarm;
- ``step 2x`` / ``step 1.5x``: SlowAdam's step busy-waits for its own duration (or half of it);
- ``lr halved``: SlowAdam's step uses half the learning rate (a quality regression).

Targets: 0 false alarms; 2x caught every time; 1.5x at least 8 of 10; halved lr every time.

    python benchmarks/bench_check.py [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = "slow_adam.py:SlowAdam"
SUITE = """tasks = [{ name = "regression", dataset = "synthetic", epochs = 20 }, { name = "mlp", dataset = "synthetic", epochs = 3 }]
optimizers = ["slow_adam.py:SlowAdam", "sgd"]
seeds = 3
device = "cpu"
"""
SCENARIOS = {
    "A/A (unchanged)": {},
    "step 2x": {"OPTBENCH_SLOWDOWN": "2"},
    "step 1.5x": {"OPTBENCH_SLOWDOWN": "1.5"},
    "lr halved": {"OPTBENCH_LR_SCALE": "0.5"},
}


@contextmanager
def burner(on: bool):
    """A process that burns one core for as long as the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def optbench(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbench", *args], cwd=cwd, env=env, capture_output=True, text=True)


def run_suite(work: Path, results: str, env: dict[str, str]) -> None:
    done = optbench(["run", "--config", "suite.toml", "--results-dir", results, "--quiet"], work, env)
    if done.returncode != 0:
        sys.exit(f"optbench run failed:\n{done.stderr}")


def trial(work: Path, name: str, env: dict[str, str], busy: bool) -> dict:
    results = f"r-{name}"
    with burner(busy):
        run_suite(work, results, env)
        check = optbench(["check", "--baseline", "baseline.json", "--results-dir", results, "--json", f"{results}.json"], work, env)
    if check.returncode not in (0, 1):
        sys.exit(f"optbench check failed:\n{check.stderr}")
    rows = json.loads((work / f"{results}.json").read_text())["rows"]
    ratios = {r["task"]: r["change"] for r in rows if r["metric"] == "step_cost" and r["label"].startswith(PLUGIN)}
    shutil.rmtree(work / results)
    return {"exit": check.returncode, "busy": busy, "ratios": ratios,
            "fails": sorted({r["metric"] for r in rows if r["verdict"] == "fail"}),
            "warns": sum(r["verdict"] == "warn" for r in rows),
            "warned": sorted({r["metric"] for r in rows if r["verdict"] == "warn"}),
            "remeasured": any(r["remeasured"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    base_env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(HERE / "slow_adam.py", work)
        (work / "suite.toml").write_text(SUITE)
        with burner(True):
            run_suite(work, "r-baseline", base_env)
        saved = optbench(["baseline", "save", "--results-dir", "r-baseline", "--out", "baseline.json"], work, base_env)
        if saved.returncode != 0:
            sys.exit(saved.stderr)
        table = []
        for scenario, extra in SCENARIOS.items():
            trials = [trial(work, f"{i}", {**base_env, **extra}, busy=i % 2 == 0) for i in range(args.trials)]
            table.append((scenario, trials))
            print(f"{scenario}: exits {[t['exit'] for t in trials]}", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} cores, {args.trials} checks per scenario, {(args.trials + 1) // 2} of them beside a CPU burner; "
          f"baseline saved beside a burner; {time.perf_counter() - start:.0f} s")
    print()
    print("| scenario | check exit 1 | target | warnings per check | SlowAdam step_cost ratio: regression | mlp | checks that re-measured |")
    print("|---|---|---|---|---|---|---|")
    targets = {"A/A (unchanged)": "0 (false alarms)", "step 2x": "10 of 10", "step 1.5x": ">= 8 of 10", "lr halved": "10 of 10"}
    for scenario, trials in table:
        alarms = sum(t["exit"] == 1 for t in trials)
        warns = [t["warns"] for t in trials]
        span = {task: [t["ratios"][task] for t in trials if task in t["ratios"]] for task in ("regression", "mlp")}
        spans = [f"{min(v):.2f}-{max(v):.2f}x" if v else "-" for v in span.values()]
        fails = sorted({m for t in trials for m in t["fails"]})
        warned = sorted({m for t in trials for m in t["warned"]})
        print(f"| {scenario} | {alarms} of {len(trials)} ({', '.join(fails) or 'none'}) | {targets[scenario]} | "
              f"{min(warns)}-{max(warns)} ({', '.join(warned) or 'none'}) | {spans[0]} | {spans[1]} | "
              f"{sum(t['remeasured'] for t in trials)} |")


if __name__ == "__main__":
    main()

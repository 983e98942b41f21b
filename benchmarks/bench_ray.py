"""The Ray executor against the local one, side by side in one process.

1. ``overhead``: wall time of the CI suite (configs/ci.toml) through a local Ray cluster, one run at
   a time (each run reserves both CPUs), divided by the local executor's wall time for the same
   records: what Ray costs per run (task dispatch, worker start, result transfer).
2. ``scaling``: a CPU-bound suite (the MLP task, 4 optimizers x 2 seeds, one thread per run) through
   Ray with one run at a time, divided by two runs at a time: the speed-up from a second worker.

Each figure is the best of ``--repeats`` (fresh results folders each time). Prints one line per figure.

    python benchmarks/bench_ray.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a one-machine cluster on 127.0.0.1 only

import torch  # noqa: E402

from optbench.execution.driver import Campaign, run_campaign  # noqa: E402
from optbench.execution.local import LocalExecutor  # noqa: E402
from optbench.execution.ray import RayExecutor  # noqa: E402
from optbench.config.suite import build_specs, load_suite, read_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def wall(specs, executor, data: Path) -> float:
    with tempfile.TemporaryDirectory() as results:
        start = time.perf_counter()
        outcome = run_campaign(Campaign(specs, Path(results), data), executor=executor)
        seconds = time.perf_counter() - start
    assert len(outcome.results) == len(specs), "every run must be recorded"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ci = build_specs(load_suite(read_config(ROOT / "configs" / "ci.toml"), source="ci.toml"))
    mlp = build_specs(load_suite(None, {"tasks": ["mlp"], "seeds": 2, "epochs": 6, "device": "cpu"}, source="bench"))
    data = Path(tempfile.mkdtemp())
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serial, parallel = RayExecutor(cpus=2), RayExecutor(cpus=1)
    wall(ci[:2], serial, data)  # start the workers before timing
    local_ci = min(wall(ci, LocalExecutor(), data) for _ in range(args.repeats))
    ray_ci = min(wall(ci, serial, data) for _ in range(args.repeats))
    one = min(wall(mlp, serial, data) for _ in range(args.repeats))
    two = min(wall(mlp, parallel, data) for _ in range(args.repeats))
    ray.shutdown()
    print(f"CI suite ({len(ci)} runs): local {local_ci:.2f} s, ray {ray_ci:.2f} s  overhead={ray_ci / local_ci:.2f}x "
          f"({(ray_ci - local_ci) / len(ci) * 1000:.0f} ms per run)")
    print(f"MLP suite ({len(mlp)} runs): 1 worker {one:.2f} s, 2 workers {two:.2f} s  scaling={one / two:.2f}x "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

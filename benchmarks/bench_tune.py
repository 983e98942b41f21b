"""Wall-clock seconds of the issue's tuning command, run as a real `optbench` process:

    optbench tune --task regression mlp --opt sgd momentum adam --trials 20

(60 trials per task on the validation split, vectorized by --engine auto: one pass per task x
optimizer; then each winner and each default re-run eagerly on test). Each invocation runs in a
fresh temporary results directory, so nothing is skipped as already finished; the time includes
Python start-up and importing torch. Prints every invocation, their range and the load average
(`uptime`) before and after, as docs/tuning.md quotes them.

    python benchmarks/bench_tune.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

COMMAND = ["tune", "--task", "regression", "mlp", "--opt", "sgd", "momentum", "adam", "--trials", "20"]


def seconds() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optbench", *COMMAND, "--results-dir", tmp, "--quiet"],
                       check=True, capture_output=True, env=dict(os.environ), cwd=tmp)
        return time.perf_counter() - start


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"before: {load()}")
    times = []
    for i in range(args.repeats):
        times.append(seconds())
        print(f"run {i + 1}: {times[-1]:.1f} s")
    print(f"after: {load()}")
    print(f"optbench {' '.join(COMMAND)}: {min(times):.1f}-{max(times):.1f} s over {len(times)} invocations")


if __name__ == "__main__":
    main()

"""Wall-clock seconds of the two suites a user meets first, run as real `optbench` processes.

- the built-in default suite: `optbench run` with no options (what the README's first command runs);
- the CI suite: `optbench run --config configs/ci.toml --quiet` with OMP_NUM_THREADS=1, as .ci/run runs it
  (the target is under 60 s on 2 cores).

Each runs in a fresh temporary results directory, so nothing is skipped as already finished; the
time includes Python start-up and importing torch. Best of ``--repeats``.

    python benchmarks/bench_cli.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ci.toml"


def seconds(args: list[str], env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optbench", "run", *args, "--results-dir", tmp, "--quiet"],
                       check=True, capture_output=True, env=env, cwd=tmp)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    default = min(seconds([], dict(os.environ)) for _ in range(args.repeats))
    ci = min(seconds(["--config", str(CONFIG)], one_thread) for _ in range(args.repeats))
    print(f"{os.cpu_count()} cores")
    print(f"optbench run (default suite, 4 runs)          : {default:6.1f} s")
    print(f"optbench run --config configs/ci.toml (24 runs): {ci:6.1f} s   (target < 60 s)")


if __name__ == "__main__":
    main()

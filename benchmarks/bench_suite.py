"""The test suite's wall time: ``pytest`` (the README's test command) run ``--repeats`` times in a
fresh process each, with the load average before each run and the closing line pytest prints.

    python benchmarks/bench_suite.py --repeats 3

The figure in docs/development.md comes from this script; the suite's own target is "well under
3 minutes on a busy 2-core machine".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    walls = []
    for i in range(args.repeats):
        load = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=ROOT,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        walls.append(wall)
        summary = next((line for line in reversed(proc.stdout.splitlines()) if " passed" in line), "no summary")
        print(f"run {i + 1}: {wall:6.1f} s wall, load average {load:.1f} before; exit {proc.returncode}; {summary.strip()}",
              flush=True)
    print(f"range over {len(walls)} run(s): {min(walls):.1f}-{max(walls):.1f} s (target: well under 180 s)")


if __name__ == "__main__":
    main()

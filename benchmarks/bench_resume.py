"""What a resume costs as the store grows: ``optbench run`` over a results folder whose runs are all
finished already, at 1,000 and 10,000 stored records (the limit on runs per campaign).

Side by side in one process, on the same folders (real records, the regression task, 50 epochs of
curve each, written by the store's own writer for exactly the specs the command builds):

- per spec, the folder-listing lookup resume used before (``finished_record``: a listing of the
  whole folder for every spec, so the total grows with the square of the records) against the
  index (``RecordIndex``: one listing, each file read once): milliseconds per spec at 1,000 and at
  10,000 records; the index's must stay flat (target: the 10,000/1,000 ratio at most 1.5x);
- the wall time of the real command (a fresh process: start-up, spec building, the store read,
  every spec skipped) at 10,000 records (target: under 5 s), and whether it imported torch
  (target: no).

    python benchmarks/bench_resume.py [--sizes 1000 10000] [--keep DIR] [--lookups 30]

``--keep DIR`` keeps the folders there and reuses them on the next invocation (writing 10,000
records takes a while). The load average is printed with the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from optbench.config.suite import build_specs, load_suite
from optbench.engine.eager import run
from optbench.store.index import RecordIndex
from optbench.store.records import RUNS, finished_record, save_record

EPOCHS = 50
TARGET_WALL_S = 5.0
TARGET_FLAT = 1.5


def command(seeds: int) -> list[str]:
    return ["run", "--opt", "sgd", "--seeds", str(seeds), "--epochs", str(EPOCHS), "--device", "cpu", "--quiet"]


def make_folder(folder: Path, count: int) -> list[str]:
    """``count`` finished records, one per spec of ``command(count)``; returns their spec hashes."""
    suite = load_suite(None, {"optimizers": ["sgd"], "seeds": count, "epochs": EPOCHS, "device": "cpu"})
    specs = build_specs(suite)
    if not (folder / RUNS).is_dir():
        base = run(specs[0], data_dir=folder / "data").to_record()
        for spec in specs:
            save_record({**base, "spec": spec.to_dict(), "spec_hash": spec.spec_hash(), "cell_hash": spec.cell_hash(),
                         "run_id": uuid.uuid4().hex[:12]}, folder)
    return [s.spec_hash() for s in specs]


def per_lookup_ms(folder: Path, hashes: list[str], lookups: int) -> tuple[float, float]:
    """Milliseconds per spec: the folder-listing lookup (on a sample), the index (all specs, read included)."""
    sample = random.Random(0).sample(hashes, min(lookups, len(hashes)))
    start = time.perf_counter()
    assert all(finished_record(folder, h) is not None for h in sample)
    listing = (time.perf_counter() - start) / len(sample)
    start = time.perf_counter()
    index = RecordIndex.read(folder)
    assert all(index.finished(h) is not None for h in hashes)
    indexed = (time.perf_counter() - start) / len(hashes)
    return 1e3 * listing, 1e3 * indexed


WRAPPER = ("import atexit, sys; atexit.register(lambda: sys.stderr.write('torch imported: %s\\n' % ('torch' in sys.modules)));"
           "sys.argv = ['optbench', *sys.argv[1:]]; from optbench.cli.app import main; main()")


def resume_wall(folder: Path, count: int) -> tuple[float, float, bool]:
    """Wall and CPU seconds of the real command in a fresh process, and whether it imported torch."""
    args = [*command(count), "--results-dir", str(folder), "--data-dir", str(folder / "data")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr[-2000:]
    last = (done.stdout.strip().splitlines() or [""])[-1]
    assert f"skipped {count} already finished" in last, last
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, "torch imported: True" in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the folders under DIR")
    parser.add_argument("--lookups", type=int, default=30, help="specs looked up the old way per size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        folders = {n: root / f"resume-{n}" for n in args.sizes}
        hashes = {n: make_folder(folders[n], n) for n in args.sizes}
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs; records of {EPOCHS} epochs")
        lookup = {n: per_lookup_ms(folders[n], hashes[n], args.lookups) for n in args.sizes}
        for n in args.sizes:
            listing, indexed = lookup[n]
            print(f"{n:>6} records: per spec {listing:7.3f} ms by folder listing (a resume ~{listing * n / 1e3:6.1f} s), "
                  f"{indexed:.3f} ms by the index ({indexed * n / 1e3:.2f} s)")
        small, large = min(args.sizes), max(args.sizes)
        if small != large:
            flat = lookup[large][1] / lookup[small][1]
            grows = lookup[large][0] / lookup[small][0]
            print(f"per-spec cost at {large} / {small} records: index {flat:.2f}x (target <= {TARGET_FLAT}x: flat, linear "
                  f"in total), folder listing {grows:.1f}x")
        for n in args.sizes:
            wall, cpu, torch = resume_wall(folders[n], n)
            verdict = "" if n != large else f" (target < {TARGET_WALL_S:.0f} s: {'met' if wall < TARGET_WALL_S else 'NOT met'})"
            print(f"optbench run skipping all {n} finished runs: {wall:.2f} s wall{verdict}, {cpu:.2f} s CPU, "
                  f"torch imported: {'yes' if torch else 'no'} (target: no)")
        load = os.getloadavg()
        print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
